"""Tasks as each surface shows them: the official ``data`` of a query (which is also the body of
a callback), the create answers, result URLs, and the gateway's own shapes.

Pure functions of a task, the clock and the mock's base URL: the routes answer with them and the
callback sender posts them, so a query and a callback can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from . import catalogue, gateway
from .media import video_id_for
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
    if watermark:
        video["watermark_url"] = url + "?watermark=1"
    return [video]


def _images(task: Task, base_url: str, watermark: bool) -> list[dict[str, Any]]:
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
