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
from .tasks import FAILED, SUCCEED, Task


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
