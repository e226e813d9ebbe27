"""The official Kling API surface: HTTP in, Backend calls, the official envelope out.

The task routes are generated from the action table (``validation.ACTIONS``): each action gets
its create, list and query-one routes at the path the catalogue gives it. Endpoints that answer
at once, with no task to poll, are rows of :data:`CALLS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, NamedTuple

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .. import library
from ..backend import Backend
from ..errors import KlingError
from ..jsonio import JSONResponse, read_json_object
from ..validation import ACTIONS, Action
from ..views import created_view, task_view

PREFIXES: Final = ("/v1/", "/account/")
SUCCESS_MESSAGE: Final = "SUCCEED"
COSTS_OPERATION: Final = "getAccountCosts"


def envelope(request_id: str, data: Any, message: str = SUCCESS_MESSAGE) -> JSONResponse:
    return JSONResponse({"code": 0, "message": message, "request_id": request_id, "data": data})


def render_error(backend: Backend, error: KlingError) -> Response:
    return JSONResponse(
        error.to_envelope(backend.new_id()), status_code=error.http_status, headers=error.headers
    )


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


class Call(NamedTuple):
    """An official endpoint that answers at once, with no task to poll (face identification,
    image segmentation, a selection session's steps, custom elements, the preset libraries)."""

    method: str  # "POST": a JSON body, checked against the operation's schema; "GET": the query
    path: str
    operation: str  # its operationId in openapi.yaml
    # (backend, account, body or query parameters) -> the answer's ``data``; with ``links``,
    # (backend, account, body or query parameters, base_url) -> ``data``
    run: Callable[..., Any]
    # The answer links to files the mock serves: ``run`` also gets the mock's address as this
    # client reached it, as task queries build their result URLs.
    links: bool = False


CALLS: Final[list[Call]] = []

# -- images, audio and the general library (issue 16): speech, voices, elements -------------------
CALLS.extend(
    Call(method, path, operation, run, links=True)
    for method, path, operation, run in (
        ("POST", "/v1/audio/tts", "createSpeech", library.speech),
        ("GET", "/v1/general/presets-voices", "listPresetVoices", library.preset_voices),
        ("POST", "/v1/general/delete-voices", "deleteCustomVoice", library.delete_voice),
        ("POST", "/v1/general/custom-elements", "createCustomElement", library.create_element),
        ("GET", "/v1/general/custom-elements", "listCustomElements", library.custom_elements),
        ("GET", "/v1/general/presets-elements", "listPresetElements", library.preset_elements),
        ("POST", "/v1/general/delete-elements", "deleteCustomElement", library.delete_element),
    )
)


def _call_route(backend: Backend, call: Call) -> Route:
    async def endpoint(request: Request) -> Response:
        account = backend.authenticate(request.headers.get("authorization"))
        if call.method == "POST":
            params = await read_json_object(request, backend.config.max_body_bytes)
            backend.spec.validate_body(call.operation, params)
        else:
            params = dict(request.query_params)
        if call.links:
            return envelope(backend.new_id(), call.run(backend, account, params, base_url(request)))
        return envelope(backend.new_id(), call.run(backend, account, params))

    return Route(call.path, endpoint, methods=[call.method])


def routes(backend: Backend) -> list[BaseRoute]:
    spec = backend.spec
    out: list[BaseRoute] = []
    for action in ACTIONS.values():
        out.extend(_task_routes(backend, action))
    out.extend(_call_route(backend, call) for call in CALLS)

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
