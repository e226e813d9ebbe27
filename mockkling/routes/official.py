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
from starlette.types import Scope

from .. import library, sessions
from ..backend import Backend
from ..errors import KlingError, crashed
from ..jsonio import (
    CHECK_OFF_LOOP_BYTES,
    JSONResponse,
    check_content_type,
    json_answer,
    json_object,
    off_loop,
    read_json_object,
    too_large,
)
from ..request_layer import Answered, Finish, Shortcut
from ..validation import ACTIONS, Action
from ..views import created_view, task_view

PREFIXES: Final = ("/v1/", "/account/")
SUCCESS_MESSAGE: Final = "SUCCEED"
COSTS_OPERATION: Final = "getAccountCosts"
# The largest create body the shortcut answers: one the route checks on the event loop too.
SHORTCUT_BODY_BYTES: Final = CHECK_OFF_LOOP_BYTES


def _envelope(request_id: str, data: Any, message: str = SUCCESS_MESSAGE) -> dict[str, Any]:
    return {"code": 0, "message": message, "request_id": request_id, "data": data}


def envelope(request_id: str, data: Any, message: str = SUCCESS_MESSAGE) -> JSONResponse:
    return JSONResponse(_envelope(request_id, data, message))


def render_error(backend: Backend, error: KlingError) -> Response:
    return JSONResponse(
        error.to_envelope(backend.new_id()), status_code=error.http_status, headers=error.headers
    )


# Scope fields a base URL depends on -> the base URL. Bounded, in entries and in size: clients
# choose their Host, and no real one is longer than a DNS name and a port.
_base_urls: dict[tuple[Any, ...], str] = {}
_BASE_URLS_SIZE: Final = 1024
_LONGEST_HOST: Final = 262


def base_url(scope: Scope) -> str:
    """The mock's own address as the client of request ``scope`` reached it, for result URLs.

    Starlette builds ``request.base_url`` anew on every request, which costs more than 3% of a
    query (docs/benchmarks.md has the figure); it depends only on the fields of the key below,
    so it is built once for each."""
    host = None
    for name, value in scope["headers"]:
        if name == b"host":
            host = value
            break
    root = scope.get("app_root_path", scope.get("root_path", ""))
    server = scope.get("server")
    if server is not None and type(server) is not tuple:  # a list from some servers and test clients
        server = tuple(server)
    key = (scope.get("scheme"), host, server, root)
    url = _base_urls.get(key)
    if url is None:
        url = str(Request(scope).base_url).rstrip("/")
        if host is not None and len(host) > _LONGEST_HOST:
            return url
        if len(_base_urls) >= _BASE_URLS_SIZE:
            _base_urls.clear()
        _base_urls[key] = url
    return url


def result_base(backend: Backend, scope: Scope) -> str:
    """Where result URLs point: the backend's media URL if set, else the mock as the client of
    request ``scope`` reached it."""
    return backend.media_url or base_url(scope)


def _query(backend: Backend, account: str, task_id: str, scope: Scope) -> dict[str, Any]:
    """The answer to a task query, as JSON (the query route's, and :func:`shortcut`'s)."""
    task = backend.get_task(account, task_id)
    return _envelope(backend.new_id(), task_view(task, backend.now_ms(), result_base(backend, scope)))


def _create(backend: Backend, action: Action, account: str, body: dict[str, Any]) -> dict[str, Any]:
    """A new task's ``data`` from a request body (the create route's, and :func:`shortcut`'s)."""
    backend.spec.validate_body(action.create_op, body)
    return created_view(backend.create_task(account, action.name, body))


def _task_routes(backend: Backend, action: Action) -> list[BaseRoute]:
    spec = backend.spec

    async def collection(request: Request) -> Response:
        account = backend.authenticate(request.headers.get("authorization"))
        if request.method == "POST":
            body = await read_json_object(request, backend.config.max_body_bytes)
            data = await off_loop(request, lambda: _create(backend, action, account, body))
            return envelope(backend.new_id(), data)
        page_num = spec.query_int(action.list_op, "pageNum", request.query_params.get("pageNum"))
        page_size = spec.query_int(action.list_op, "pageSize", request.query_params.get("pageSize"))
        now, base = backend.now_ms(), result_base(backend, request.scope)
        tasks = backend.list_tasks(account, action.name, page_num, page_size)
        return envelope(backend.new_id(), [task_view(t, now, base) for t in tasks])

    async def one(request: Request) -> Response:
        account = backend.authenticate(request.headers.get("authorization"))
        return JSONResponse(_query(backend, account, request.path_params["task_id"], request.scope))

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

# -- 2026 video endpoints that answer at once (mockkling/sessions.py) --
_SELECTION: Final = "/v1/videos/multi-elements"
CALLS.extend(
    [
        Call("POST", "/v1/videos/identify-face", "identifyFace", sessions.identify_face, True),
        Call("POST", f"{_SELECTION}/init-selection", "initSelection", sessions.init_selection, True),
        Call("POST", f"{_SELECTION}/add-selection", "addSelection", sessions.add_selection, True),
        Call("POST", f"{_SELECTION}/delete-selection", "deleteSelection", sessions.delete_selection, True),
        Call("POST", f"{_SELECTION}/clear-selection", "clearSelection", sessions.clear_selection, True),
        Call("POST", f"{_SELECTION}/preview-selection", "previewSelection", sessions.preview_selection, True),
        Call("POST", "/v1/videos/image-recognize", "imageRecognize", sessions.image_recognize, True),
    ]
)

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
        # A call whose answer links to files it made is told where they are served.
        links = (result_base(backend, request.scope),) if call.links else ()
        if call.method == "POST":
            params = await read_json_object(request, backend.config.max_body_bytes)

            def run() -> Any:
                backend.spec.validate_body(call.operation, params)
                return call.run(backend, account, params, *links)

            return envelope(backend.new_id(), await off_loop(request, run))
        return envelope(backend.new_id(), call.run(backend, account, dict(request.query_params), *links))

    return Route(call.path, endpoint, methods=[call.method])


def routes(backend: Backend) -> list[BaseRoute]:
    spec = backend.spec
    # The calls first: a path such as /v1/videos/multi-elements/init-selection is also a task
    # query path (/v1/videos/multi-elements/{task_id}), and the first route a path matches
    # names the methods a 405 allows.
    out: list[BaseRoute] = [_call_route(backend, call) for call in CALLS]
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


def shortcut(backend: Backend) -> Shortcut:
    """Task queries (``GET /v1/.../{task_id}``) and creates with a small body (``POST`` to a
    task endpoint), answered without the router: what their routes answer, refusals and crashes
    included, for the request layer to send and journal; None for the router to answer anything
    else.

    A create is answered as its route reads it: what the route checks before it reads the body
    (the credentials, the Content-Type, the declared length) is answered at once; if that
    passes, the layer gets a function to call with the body once it has come.

    Queries and creates are nearly all a Kling client sends (it creates a task and polls it
    until it ends), and the router, Starlette's Request and Response and the endpoint's own call
    cost each a fifth or more of its server CPU over HTTP: the figures are in docs/benchmarks.md.
    Each answer comes from the code its route runs (``_query``, ``_create``, ``render_error``);
    only what the router checks before it is repeated here, by taking no request it would treat
    otherwise: an untidy path, a root path, several or no ``Authorization`` headers, a method
    the route does not serve, a body not declared or declared empty, a body declared or sent
    over ``SHORTCUT_BODY_BYTES`` (which the route checks off the event loop)."""
    queried = frozenset(action.endpoint.path for action in ACTIONS.values())
    calls = {call.path for call in CALLS}  # declared first: the router serves them, not a task route
    # Paths the router serves otherwise, though they look like queries.
    others = queried | calls
    created = {
        action.endpoint.path: action for action in ACTIONS.values() if action.endpoint.path not in calls
    }

    def answer(scope: Scope, authorization: bytes | None) -> Answered | Finish | None:
        path: str = scope["path"]
        if not authorization or scope.get("root_path"):  # none, empty, or several (b"")
            return None
        action, ident, declared = None, "", 0
        if scope["method"] == "POST":
            action = created.get(path)
            length = _first(scope["headers"], b"content-length")
            if action is None or length is None or not length.isdigit():
                return None
            declared = int(length)
            if not 0 < declared <= SHORTCUT_BODY_BYTES:  # 0: the route reads whatever comes
                return None
        else:
            prefix, _, ident = path.rpartition("/")
            if (
                prefix not in queried  # also every untidy path: "//", a trailing "/" (no ident)
                or not ident
                or path in others
                or scope["method"] != "GET"
            ):
                return None
        account = None
        try:
            account = backend.authenticate(authorization.decode("latin-1"))
            if action is not None:
                return _create_head(backend, action, account, scope, declared)
            return _json(_query(backend, account, ident, scope), account)
        except Exception as error:
            return _refusal(backend, scope, error, account)

    return answer


def _first(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of header ``name``, the one Starlette's ``request.headers.get`` reads."""
    for key, value in headers:
        if key == name:
            return value
    return None


def _create_head(backend: Backend, action: Action, account: str, scope: Scope, declared: int) -> Finish:
    """What the create route checks of an authenticated request before it reads the body
    (``read_json_object``: its Content-Type, then ``read_body``: its ``declared`` length), and a
    function for the rest of its steps, to call with the body: its size, its JSON, the task."""
    content_type = _first(scope["headers"], b"content-type")
    check_content_type(None if content_type is None else content_type.decode("latin-1"))
    limit = backend.config.max_body_bytes
    if declared > limit:
        raise too_large(limit)

    def finish(raw: bytes) -> Answered | None:
        if len(raw) > SHORTCUT_BODY_BYTES:  # more than it declared
            return None
        try:
            if len(raw) > limit:
                raise too_large(limit)
            data = _create(backend, action, account, json_object(raw))
            return _json(_envelope(backend.new_id(), data), account)
        except Exception as error:
            return _refusal(backend, scope, error, account)

    return finish


def _json(content: dict[str, Any], account: str) -> Answered:
    body, headers = json_answer(content)
    return 200, headers, body, account


def _refusal(backend: Backend, scope: Scope, error: Exception, account: str | None) -> Answered:
    """The answer the router gives to what a route raised, a refusal or a crash (a bug, logged:
    call this while handling it). ``account`` is None if the credentials were refused."""
    if not isinstance(error, KlingError):
        error = crashed(scope["method"], Request(scope).url.path)
    response = render_error(backend, error)
    return response.status_code, response.raw_headers, bytes(response.body), account
