"""Tasks as each surface shows them: the official ``data`` of a query (which is also the body of
a callback), the create answers, result URLs, and the gateway's own shapes.

Pure functions of a task, the clock and the mock's base URL: the routes answer with them and the
callback sender posts them, so a query and a callback can never disagree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import quote

from . import catalogue, gateway
from .media import audio_id_for, mp3_seconds, seconds_text, video_id_for, wav_seconds
from .tasks import FAILED, SPELLINGS, SUBMITTED, SUCCEED, Task


def task_info(task: Task, base_url: str | None = None) -> dict[str, Any]:
    """``task_info``; with ``base_url``, also the ``parent_video`` a query shows for tasks made
    from another video (video extension, lip sync)."""
    info: dict[str, Any] = {}
    parent = (task.extra or {}).get("parent_video") if base_url is not None else None
    if parent is not None:
        info["parent_video"] = {
            "id": video_id_for(parent["task_id"]),
            "url": video_url(str(base_url), parent["task_id"]),
            "duration": parent["duration"],
        }
    if task.external_task_id is not None:
        info["external_task_id"] = task.external_task_id
    return info


def created_view(task: Task) -> dict[str, Any]:
    """``data`` of a create answer."""
    return {
        "task_id": task.task_id,
        "task_status": "submitted",
        "task_info": task_info(task),
        "created_at": task.created_ms,
        "updated_at": task.created_ms,
    }


def video_url(base_url: str, task: Task | str) -> str:
    task_id = task if isinstance(task, str) else task.task_id
    return f"{base_url}/media/videos/{task_id}.mp4"


def image_url(base_url: str, task: Task, index: int) -> str:
    return f"{base_url}/media/images/{task.task_id}/{index}.png"


def _videos(task: Task, base_url: str, watermark: bool) -> list[dict[str, Any]]:
    url = video_url(base_url, task)
    video = {"id": video_id_for(task.task_id), "url": url, "duration": task.duration}
    if task.extra and "session_id" in task.extra:  # multi-element editing names its session
        video["session_id"] = task.extra["session_id"]
    if watermark:
        video["watermark_url"] = url + "?watermark=1"
    return [video]


def _images(task: Task, base_url: str, watermark: bool) -> list[dict[str, Any]]:
    if task.action == catalogue.AI_MULTI_SHOT:
        return _shot_set(task, base_url)
    images = []
    for index in range((task.extra or {}).get("n", 1)):
        url = image_url(base_url, task, index)
        image: dict[str, Any] = {"index": index, "url": url}
        if watermark:
            image["watermark_url"] = url + "?watermark=1"
        images.append(image)
    return images


# Result kind (catalogue.VIDEOS, ...) -> its items in ``task_result``. A new kind of result is
# one function here (and its files in media.py and routes/media.py).
ResultView = Callable[[Task, str, bool], list[dict[str, Any]]]
RESULT_VIEWS: Final[dict[str, ResultView]] = {
    catalogue.VIDEOS: _videos,
    catalogue.IMAGES: _images,
}


def result_view(task: Task, base_url: str) -> dict[str, Any]:
    """``task_result`` of a finished task: one list per result kind its endpoint makes."""
    watermark = bool((task.extra or {}).get("watermark"))
    endpoint = catalogue.ENDPOINTS.get(task.action)
    kinds = endpoint.results if endpoint is not None else (catalogue.VIDEOS,)
    return {kind: RESULT_VIEWS[kind](task, base_url, watermark) for kind in kinds}


def task_view(task: Task, now_ms: int, base_url: str, *, status: str | None = None) -> dict[str, Any]:
    """``data`` of a query answer, and the body of a callback: the task as the API shows it."""
    status = status or task.status(now_ms)
    data: dict[str, Any] = {
        "task_id": task.task_id,
        "task_status": status,
        "task_status_msg": task.status_msg if status == "failed" else "",
        "task_info": task_info(task, base_url),
        "created_at": task.created_ms,
        "updated_at": task.updated_ms(now_ms),
    }
    if task.action not in catalogue.NO_WATERMARK_INFO:
        data["watermark_info"] = {"enabled": bool((task.extra or {}).get("watermark"))}
    if status == SUCCEED:
        data["task_result"] = result_view(task, base_url)
        data["final_unit_deduction"] = catalogue.task_units(task)
    else:
        data["final_unit_deduction"] = "0"
    return data


def generation_view(task: Task, now_ms: int, base: str) -> dict[str, Any]:
    """The seed's ``GET /v1/video/generations/{task_id}`` answer."""
    status = task.status(now_ms)
    out: dict[str, Any] = {"task_id": task.task_id, "status": gateway.STATUSES[status]}
    if status == SUCCEED:
        out["url"] = video_url(base, task)
        out["format"] = gateway.VIDEO_FORMAT
        out["metadata"] = gateway.metadata_view(task)
    elif status == FAILED:
        out["error"] = gateway.failure(task)
    return out


def passthrough_created(task: Task) -> dict[str, Any]:
    """``data`` of a passthrough create answer, with the seed's fields."""
    return {
        "task_id": task.task_id,
        "task_status": "submitted",
        "created_at": task.created_ms,
        "updated_at": task.created_ms,
    }


# -- images, audio and the general library (issue 16) --------------------------------------------


def audio_url(base_url: str, task_id: str, index: int, extension: str) -> str:
    return f"{base_url}/media/audios/{task_id}/{index}.{extension}"


def trial_url(base_url: str, voice_id: str) -> str:
    """A voice's trial clip (``trial_url``): official and custom voices alike."""
    return f"{base_url}/media/voices/{quote(voice_id, safe='')}.mp3"


def element_image_url(base_url: str, element_id: str, index: int) -> str:
    """An image of an element the mock keeps itself (0: frontal, then the others)."""
    return f"{base_url}/media/elements/{element_id}/{index}.png"


def creator_id(account: str) -> str:
    """``owned_by`` of an account's own voices and elements: a stable number, never the key."""
    digest = hashlib.sha256(account.encode()).hexdigest()
    return str(10**9 + int(digest[:12], 16) % (9 * 10**9))


def _audios(task: Task, base_url: str, watermark: bool) -> list[dict[str, Any]]:
    """``task_result.audios``: one clip, as MP3 and as WAV, each with its own length."""
    seconds = float((task.extra or {}).get("audio_seconds", 5.0))
    return [
        {
            "id": audio_id_for(task.task_id, 0),
            "url_mp3": audio_url(base_url, task.task_id, 0, "mp3"),
            "url_wav": audio_url(base_url, task.task_id, 0, "wav"),
            "duration_mp3": seconds_text(mp3_seconds(seconds)),
            "duration_wav": seconds_text(wav_seconds(seconds)),
        }
    ]


def voice_item(voice_id: str, name: str, base_url: str, owned_by: str) -> dict[str, Any]:
    return {
        "voice_id": voice_id,
        "voice_name": name,
        "trial_url": trial_url(base_url, voice_id),
        "owned_by": owned_by,
    }


def _voices(task: Task, base_url: str, watermark: bool) -> list[dict[str, Any]]:
    """``task_result.voices`` of a custom voice: the voice_id is the task's id."""
    name = str((task.extra or {}).get("voice_name", ""))
    return [voice_item(task.task_id, name, base_url, creator_id(task.account))]


def _shot_set(task: Task, base_url: str) -> list[dict[str, Any]]:
    """AI multi-shot's images. The page shows ``images[{index, url}]`` for a query and
    ``images[{index, url_1, url_2, url_3}]`` for a list; the mock answers both shapes in one item
    (``url`` is the first view), so a client reading either finds its images."""
    urls = [image_url(base_url, task, index) for index in range((task.extra or {}).get("n", 1))]
    item: dict[str, Any] = {"index": 0, "url": urls[0]}
    item.update({f"url_{number}": url for number, url in enumerate(urls, 1)})
    return [item]


RESULT_VIEWS.update({catalogue.AUDIOS: _audios, catalogue.VOICES: _voices})


def speech_view(task: Task, now_ms: int, base_url: str) -> dict[str, Any]:
    """``data`` of a text-to-speech answer: the task at once, its clip in ``task_result`` (one
    ``url``, an MP3), no ``task_info`` (tts.md)."""
    status = task.status(now_ms)
    data: dict[str, Any] = {
        "task_id": task.task_id,
        "task_status": status,
        "task_status_msg": task.status_msg if status == FAILED else "",
        "final_unit_deduction": catalogue.task_units(task) if status == SUCCEED else "0",
        "created_at": task.created_ms,
        "updated_at": task.updated_ms(now_ms),
    }
    if status == SUCCEED:
        seconds = float((task.extra or {}).get("audio_seconds", 1.0))
        clip = {
            "id": audio_id_for(task.task_id, 0),
            "url": audio_url(base_url, task.task_id, 0, "mp3"),
            "duration": seconds_text(mp3_seconds(seconds)),
        }
        data["task_result"] = {"audios": [clip]}
    return data


# -- the model-in-path design ------------------------------------------------------------------
# Its task object, shared by GET /tasks, POST /tasks and its callbacks: ``id``, ``status`` (success
# spelled ``succeeded``), ``message``, ``create_time``/``update_time`` (ms), ``external_id`` (when
# one was given), ``outputs[]`` (a typed union; a video task has one ``video`` item) and
# ``billing[]`` (units drawn from the video resource pack). Both lists are empty until the task
# succeeds; a failed task bills nothing, as the legacy design's ``final_unit_deduction`` says.

MODEL_API_STATUSES: Final = SPELLINGS["model_api"]


def model_created_view(task: Task) -> dict[str, Any]:
    """``data`` of a model-in-path create answer."""
    data: dict[str, Any] = {
        "id": task.task_id,
        "status": MODEL_API_STATUSES[SUBMITTED],
        "create_time": task.created_ms,
        "update_time": task.created_ms,
    }
    if task.external_task_id is not None:
        data["external_id"] = task.external_task_id
    return data


def model_task_view(task: Task, now_ms: int, base_url: str, *, status: str | None = None) -> dict[str, Any]:
    """A model-in-path task as /tasks shows it, and the body of its callbacks."""
    status = status or task.status(now_ms)
    data: dict[str, Any] = {
        "id": task.task_id,
        "status": MODEL_API_STATUSES[status],
        "message": task.status_msg if status == FAILED else "",
        "create_time": task.created_ms,
        "update_time": task.updated_ms(now_ms),
    }
    if task.external_task_id is not None:
        data["external_id"] = task.external_task_id
    outputs: list[dict[str, Any]] = []
    billing: list[dict[str, Any]] = []
    if status == SUCCEED:
        url = video_url(base_url, task)
        video = {"type": "video", "id": video_id_for(task.task_id), "url": url, "duration": task.duration}
        if (task.extra or {}).get("watermark"):
            video["watermark_url"] = url + "?watermark=1"
        outputs.append(video)
        billing.append({"charge_type": "unit", "amount": catalogue.task_units(task), "package_type": "video"})
    data["outputs"] = outputs
    data["billing"] = billing
    return data
