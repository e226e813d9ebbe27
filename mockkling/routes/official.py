"""The official Kling API surface: HTTP in, Backend calls, the official envelope out."""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .. import catalogue
from ..backend import Backend
from ..errors import KlingError
from ..jsonio import JSONResponse, read_json_object
from ..tasks import SUCCEED, Task

# action -> (create, list, get) operation ids in openapi.yaml
VIDEO_ENDPOINTS: Final = {
    "text2video": ("createText2Video", "listText2VideoTasks", "getText2VideoTask"),
    "image2video": ("createImage2Video", "listImage2VideoTasks", "getImage2VideoTask"),
}
PREFIXES: Final = ("/v1/",)
SUCCESS_MESSAGE: Final = "SUCCEED"


def envelope(request_id: str, data: Any, message: str = SUCCESS_MESSAGE) -> JSONResponse:
    return JSONResponse({"code": 0, "message": message, "request_id": request_id, "data": data})


def render_error(backend: Backend, error: KlingError) -> Response:
    return JSONResponse(
        error.to_envelope(backend.new_id()), status_code=error.http_status, headers=error.headers
    )


def task_info(task: Task) -> dict[str, str]:
    return {} if task.external_task_id is None else {"external_task_id": task.external_task_id}


def created_view(task: Task) -> dict[str, Any]:
    """``data`` of a create answer."""
    return {
        "task_id": task.task_id,
        "task_status": "submitted",
        "task_info": task_info(task),
        "created_at": task.created_ms,
        "updated_at": task.created_ms,
    }


def video_url(base_url: str, task: Task) -> str:
    return f"{base_url}/media/videos/{task.task_id}.mp4"


def task_view(task: Task, now_ms: int, base_url: str, *, status: str | None = None) -> dict[str, Any]:
    """``data`` of a query answer, and the body of a callback: the task as the API shows it."""
    status = status or task.status(now_ms)
    data: dict[str, Any] = {
        "task_id": task.task_id,
        "task_status": status,
        "task_status_msg": task.status_msg if status == "failed" else "",
        "task_info": task_info(task),
        "created_at": task.created_ms,
        "updated_at": task.updated_ms(now_ms),
    }
    if status == SUCCEED:
        url = video_url(base_url, task)
        video = {"id": f"{task.task_id}-0", "url": url, "duration": task.duration}
        if task.extra and task.extra.get("watermark"):
            video["watermark_url"] = url + "?watermark=1"
        data["task_result"] = {"videos": [video]}
        data["final_unit_deduction"] = catalogue.units(task.model, task.mode, task.duration)
    else:
        data["final_unit_deduction"] = "0"
    return data


def base_url(request: Request) -> str:
    """The mock's own address as this client reached it, for result URLs."""
    return str(request.base_url).rstrip("/")


def routes(backend: Backend) -> list[BaseRoute]:
    spec = backend.spec
    out: list[BaseRoute] = []

    for action, (create_op, list_op, _get_op) in VIDEO_ENDPOINTS.items():

        async def collection(
            request: Request, action: str = action, create_op: str = create_op, list_op: str = list_op
        ) -> Response:
            account = backend.authenticate(request.headers.get("authorization"))
            if request.method == "POST":
                body = await read_json_object(request, backend.config.max_body_bytes)
                spec.validate_body(create_op, body)
                task = backend.create_video_task(account, action, body)
                return envelope(backend.new_id(), created_view(task))
            page_num = spec.query_int(list_op, "pageNum", request.query_params.get("pageNum"))
            page_size = spec.query_int(list_op, "pageSize", request.query_params.get("pageSize"))
            now, base = backend.now_ms(), base_url(request)
            tasks = backend.list_tasks(account, action, page_num, page_size)
            return envelope(backend.new_id(), [task_view(t, now, base) for t in tasks])

        async def one(request: Request) -> Response:
            account = backend.authenticate(request.headers.get("authorization"))
            task = backend.get_task(account, request.path_params["task_id"])
            return envelope(backend.new_id(), task_view(task, backend.now_ms(), base_url(request)))

        out.append(Route(f"/v1/videos/{action}", collection, methods=["GET", "POST"]))
        out.append(Route(f"/v1/videos/{action}/{{task_id}}", one, methods=["GET"]))
    return out
