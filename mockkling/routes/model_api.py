"""The model-in-path design: ``POST /{operation}/{model}`` for every model the catalogue has
(``catalogue.MODEL_ROUTES``), ``GET /tasks`` and ``POST /tasks``; HTTP in, Backend calls out.

API keys only (``Authorization: Bearer <API key>``); errors in the official envelope without
``data``, as this design sends them; an unknown model in a create path is 404 / 1203.
"""

from __future__ import annotations

import re
from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .. import catalogue, contents
from ..backend import Backend
from ..errors import KlingError
from ..jsonio import JSONResponse, off_loop, read_json_object
from ..tasks import Task
from ..views import model_created_view, model_task_view
from .official import SUCCESS_MESSAGE, envelope, result_base

TASKS_PATH: Final = "/tasks"
PREFIXES: Final = (*(f"/{operation}" for operation in catalogue.MODEL_API_OPERATIONS), TASKS_PATH)
_FIRST_SEGMENTS: Final = frozenset((*catalogue.MODEL_API_OPERATIONS, TASKS_PATH.strip("/")))
LIST_OPERATION: Final = "listModelApiTasks"
_CREATE_PATH: Final = re.compile(rf"^/({'|'.join(catalogue.MODEL_API_OPERATIONS)})/([^/]+)$")


def claims(path: str) -> bool:
    """This design owns whole first segments: /tasks and /tasks/..., not /tasksXYZ."""
    return path.split("/", 2)[1] in _FIRST_SEGMENTS


def render_error(backend: Backend, error: KlingError) -> Response:
    """``{code, message, request_id}``: this design's error body has no ``data``."""
    body = {"code": error.code, "message": error.message, "request_id": backend.new_id()}
    return JSONResponse(body, status_code=error.http_status, headers=error.headers)


def not_found(method: str, path: str) -> KlingError | None:
    """The answer to a path no route serves, when it names an operation with a model the
    catalogue does not have (``POST /text-to-video/kling-9``): 404 / 1203 naming the models."""
    match = _CREATE_PATH.match(path)
    if match is None or method != "POST":
        return None
    operation, model = match.groups()
    models = [route.model for route in catalogue.MODEL_ROUTES.values() if route.operation == operation]
    return KlingError(
        1203, f"model {model[:64]} does not exist for {operation}; the models are: {', '.join(models)}"
    )


def routes(backend: Backend) -> list[BaseRoute]:
    spec = backend.spec
    out: list[BaseRoute] = []

    for route in catalogue.MODEL_ROUTES.values():

        async def create(request: Request, route: catalogue.ModelRoute = route) -> Response:
            account = backend.authenticate_api_key(request.headers.get("authorization"))
            body = await read_json_object(request, backend.config.max_body_bytes)

            def create() -> Task:
                spec.validate_body(route.operation_id, body)
                return backend.create_model_task(account, route, body)

            task = await off_loop(request, create)
            return envelope(backend.new_id(), model_created_view(task))

        out.append(Route(route.path, create, methods=["POST"]))

    async def query(request: Request) -> Response:
        account = backend.authenticate_api_key(request.headers.get("authorization"))
        idents, external = contents.task_ids(request.query_params)
        now, base = backend.now_ms(), result_base(backend, request.scope)
        tasks = backend.model_tasks(account, idents, external=external)
        return envelope(backend.new_id(), [model_task_view(task, now, base) for task in tasks])

    async def listing(request: Request) -> Response:
        account = backend.authenticate_api_key(request.headers.get("authorization"))
        body = await read_json_object(request, backend.config.max_body_bytes)
        spec.validate_body(LIST_OPERATION, body)
        now = backend.now_ms()
        wanted = contents.list_query(body, now)
        tasks, cursor = contents.page(backend.all_model_tasks(account), wanted, now)
        data: dict[str, object] = {"count": len(tasks), "has_more": bool(cursor)}
        if tasks or backend.config.model_api.empty_page == "empty":
            base = result_base(backend, request.scope)
            data = {"result": [model_task_view(t, now, base) for t in tasks], **data, "next_cursor": cursor}
        return envelope(backend.new_id(), data, SUCCESS_MESSAGE)

    async def tasks(request: Request) -> Response:
        return await (query if request.method == "GET" else listing)(request)

    out.append(Route(TASKS_PATH, tasks, methods=["GET", "POST"]))
    return out
