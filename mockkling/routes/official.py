"""The official Kling API surface: HTTP in, Backend calls, the official envelope out.

The task routes are generated from the action table (``validation.ACTIONS``): each action gets
its create, list and query-one routes at the path the catalogue gives it.
"""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .. import catalogue
from ..backend import Backend
from ..errors import KlingError
from ..jsonio import JSONResponse, read_json_object
from ..media import video_id_for
from ..tasks import SUCCEED, Task
from ..validation import ACTIONS, Action

PREFIXES: Final = ("/v1/", "/account/")
SUCCESS_MESSAGE: Final = "SUCCEED"
COSTS_OPERATION: Final = "getAccountCosts"


def envelope(request_id: str, data: Any, message: str = SUCCESS_MESSAGE) -> JSONResponse:
    return JSONResponse({"code": 0, "message": message, "request_id": request_id, "data": data})


def render_error(backend: Backend, error: KlingError) -> Response:
    return JSONResponse(
        error.to_envelope(backend.new_id()), status_code=error.http_status, headers=error.headers
    )


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


def result_view(task: Task, base_url: str) -> dict[str, Any]:
    """``task_result`` of a finished task: ``videos`` or ``images``, as its endpoint returns."""
    extra = task.extra or {}
    watermark = bool(extra.get("watermark"))
    endpoint = catalogue.ENDPOINTS.get(task.action)
    if endpoint is not None and endpoint.result == catalogue.IMAGES:
        images = []
        for index in range(extra.get("n", 1)):
            url = image_url(base_url, task, index)
            image: dict[str, Any] = {"index": index, "url": url}
            if watermark:
                image["watermark_url"] = url + "?watermark=1"
            images.append(image)
        return {"images": images}
    url = video_url(base_url, task)
    video = {"id": video_id_for(task.task_id), "url": url, "duration": task.duration}
    if watermark:
        video["watermark_url"] = url + "?watermark=1"
    return {"videos": [video]}


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


# Scope fields a base URL depends on -> the base URL. Bounded, in entries and in size: clients
# choose their Host, and no real one is longer than a DNS name and a port.
_base_urls: dict[tuple[Any, ...], str] = {}
_BASE_URLS_SIZE: Final = 1024
_LONGEST_HOST: Final = 262


def base_url(request: Request) -> str:
    """The mock's own address as this client reached it, for result URLs.

    Starlette builds ``request.base_url`` anew on every request (about 12 us, a fifth of a
    query's cost); it depends only on the fields of the key below, so it is built once each."""
    scope = request.scope
    host = next((value for name, value in scope["headers"] if name == b"host"), None)
    root = scope.get("app_root_path", scope.get("root_path", ""))
    server = scope.get("server")  # a list from some servers and test clients: keyed as a tuple
    key = (scope.get("scheme"), host, None if server is None else tuple(server), root)
    url = _base_urls.get(key)
    if url is None:
        url = str(request.base_url).rstrip("/")
        if host is not None and len(host) > _LONGEST_HOST:
            return url
        if len(_base_urls) >= _BASE_URLS_SIZE:
            _base_urls.clear()
        _base_urls[key] = url
    return url


def _task_routes(backend: Backend, action: Action) -> list[BaseRoute]:
    spec = backend.spec

    async def collection(request: Request) -> Response:
        account = backend.authenticate(request.headers.get("authorization"))
        if request.method == "POST":
            body = await read_json_object(request, backend.config.max_body_bytes)
            spec.validate_body(action.create_op, body)
            task = backend.create_task(account, action.name, body)
            return envelope(backend.new_id(), created_view(task))
        page_num = spec.query_int(action.list_op, "pageNum", request.query_params.get("pageNum"))
        page_size = spec.query_int(action.list_op, "pageSize", request.query_params.get("pageSize"))
        now, base = backend.now_ms(), base_url(request)
        tasks = backend.list_tasks(account, action.name, page_num, page_size)
        return envelope(backend.new_id(), [task_view(t, now, base) for t in tasks])

    async def one(request: Request) -> Response:
        account = backend.authenticate(request.headers.get("authorization"))
        task = backend.get_task(account, request.path_params["task_id"])
        return envelope(backend.new_id(), task_view(task, backend.now_ms(), base_url(request)))

    path = action.endpoint.path
    return [
        Route(path, collection, methods=["GET", "POST"]),
        Route(f"{path}/{{task_id}}", one, methods=["GET"]),
    ]


def routes(backend: Backend) -> list[BaseRoute]:
    spec = backend.spec
    out: list[BaseRoute] = []
    for action in ACTIONS.values():
        out.extend(_task_routes(backend, action))

    async def costs(request: Request) -> Response:
        account = backend.authenticate(request.headers.get("authorization"))
        query = request.query_params
        for name in ("start_time", "end_time"):
            if not query.get(name):
                raise KlingError(1201, f"{name} is required")
        start = spec.query_int(COSTS_OPERATION, "start_time", query["start_time"])
        end = spec.query_int(COSTS_OPERATION, "end_time", query["end_time"])
        if end < start:
            raise KlingError(1201, "end_time must not be earlier than start_time")
        infos = backend.account_costs(account, start, end, query.get("resource_pack_name") or None)
        data = {"code": 0, "msg": "success", "resource_pack_subscribe_infos": infos}
        return envelope(backend.new_id(), data)

    out.append(Route("/account/costs", costs, methods=["GET"]))
    return out
