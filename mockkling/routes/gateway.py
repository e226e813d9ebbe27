"""The gateway surfaces: the generic ``/v1/video/generations``, the ``/kling/v1/videos/*``
passthrough and (new-api) the OpenAI-compatible ``/v1/videos`` API, on the same Backend as the
official surface, authenticated with ``sk-`` keys.

``Config.gateway`` picks whose answers they give: the seed document's (``seed``, below), or a
real gateway's (``ppwapi``, ``new-api``: mockkling/gateway_profiles.py holds their shapes).

A gateway sees only the tasks it created (its own task table): a task created on the official
surface is ``task_not_exist`` here, while a gateway task is an ordinary Kling task upstream, so
the official surface finds it.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Final

from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from .. import catalogue, gateway, gateway_profiles
from ..backend import Backend
from ..errors import KlingError
from ..gateway_profiles import Body, Profile, Refusal
from ..gojson import parse
from ..jsonio import JSONResponse, off_loop, read_body, read_json_object, too_deep
from ..media import video_file
from ..tasks import Task
from ..validation import ACTIONS
from ..views import generation_view, passthrough_created, task_view
from .official import CALLS, envelope, result_base

PREFIXES: Final = ("/v1/video/", "/kling/")
# The seed's passthrough envelope says "success" where Kling says "SUCCEED".
SUCCESS_MESSAGE: Final = "success"
GENERIC_CREATE: Final = "createVideoGeneration"
# action -> create operation id in openapi.yaml
PASSTHROUGH_CREATE: Final = {
    "text2video": "createGatewayText2Video",
    "image2video": "createGatewayImage2Video",
}


# The paths of new-api's OpenAI-style video API, beside the official /v1/videos/<action> paths:
# the surface's prefixes with them, ``claims`` says which of these paths are the gateway's.
OPENAI_VIDEOS: Final = "/v1/videos"
SURFACE_PREFIXES: Final = (*PREFIXES, OPENAI_VIDEOS)


def claims(backend: Backend) -> Callable[[str], bool]:
    """Which paths under SURFACE_PREFIXES are this gateway's, for the app's error envelopes: new-api's
    /v1/videos API owns /v1/videos and /v1/videos/<id>..., but not the official endpoints that
    share the prefix (/v1/videos/text2video, ...), which stay official."""
    prof = gateway_profiles.profile(backend.config.gateway)
    openai = prof is not None and "createOpenAIVideo" in prof.operations
    official = {
        path.split("/")[3]
        for path in (*(action.endpoint.path for action in ACTIONS.values()), *(call.path for call in CALLS))
        if path.startswith(OPENAI_VIDEOS + "/") and not path.split("/")[3].startswith("{")
    }

    def owns(path: str) -> bool:
        if not path.startswith(OPENAI_VIDEOS):
            return True  # /v1/video/ and /kling/
        if not openai:
            return False
        rest = path[len(OPENAI_VIDEOS) :]
        return rest == "" or (rest.startswith("/") and rest.split("/")[1] not in official)

    return owns


PROFILE_TAG: Final = "gateway-"  # openapi.yaml tags a gateway operation by the profiles serving it
GATEWAY_MARK: Final = "x-gateway"  # and marks the parts of one that only some profiles answer


def served_document(backend: Backend) -> bytes:
    """openapi.yaml as this server documents itself: every operation but the gateway operations
    of other profiles (an operation tagged ``gateway-<profile>`` is served under that profile)."""
    import yaml  # only when the document is asked for: start-up does not pay for the dump

    document: dict[str, Any] = _for_profile(backend.spec.document, backend.config.gateway)
    mine = PROFILE_TAG + backend.config.gateway
    paths: dict[str, Any] = {}
    for path, item in document.get("paths", {}).items():
        kept = {
            key: op
            for key, op in item.items()
            if not isinstance(op, dict)
            or not any(str(tag).startswith(PROFILE_TAG) for tag in op.get("tags", []))
            or mine in op.get("tags", [])
        }
        if any(isinstance(op, dict) and "responses" in op for op in kept.values()):
            paths[path] = kept
    document["paths"] = _without_dangling_links(paths)
    base = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    dumper = type("Dumper", (base,), {"ignore_aliases": lambda self, data: True})  # no &anchors
    text: str = yaml.dump(document, Dumper=dumper, sort_keys=False, allow_unicode=True, width=110)
    return text.encode()


def _for_profile(node: Any, name: str) -> Any:
    """``node`` as the profile ``name`` answers: a part marked ``x-gateway: [profiles]`` (a
    response shape, a request media type) is kept only under those profiles, and an ``anyOf``
    left with one shape becomes that shape."""

    def answered(part: Any) -> bool:
        return not isinstance(part, dict) or name in part.get(GATEWAY_MARK, (name,))

    if isinstance(node, list):
        return [_for_profile(item, name) for item in node if answered(item)]
    if not isinstance(node, dict):
        return node
    kept = {
        key: _for_profile(value, name)
        for key, value in node.items()
        if key != GATEWAY_MARK and answered(value)
    }
    if list(kept) == ["anyOf"] and len(kept["anyOf"]) == 1:
        return kept["anyOf"][0]
    return kept


def _without_dangling_links(paths: dict[str, Any]) -> dict[str, Any]:
    """The paths with every response link to an operation they no longer hold taken out: tools
    that follow links (schemathesis's stateful tests) refuse a document whose links dangle."""
    served = {
        op["operationId"]
        for item in paths.values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    }
    kept_paths: dict[str, Any] = {}
    for path, item in paths.items():
        kept_item: dict[str, Any] = {}
        for key, op in item.items():
            if isinstance(op, dict) and "responses" in op:
                responses = {}
                for status, response in op["responses"].items():
                    links = response.get("links") if isinstance(response, dict) else None
                    if links:
                        live = {n: link for n, link in links.items() if link.get("operationId") in served}
                        response = {k: v for k, v in response.items() if k != "links"}
                        if live:
                            response["links"] = live
                    responses[status] = response
                op = {**op, "responses": responses}
            kept_item[key] = op
        kept_paths[path] = kept_item
    return kept_paths


def render_error(backend: Backend, error: KlingError) -> Response:
    prof = gateway_profiles.profile(backend.config.gateway)
    if prof is None:
        status, body = gateway.error_status_and_body(error)
        return JSONResponse(body, status_code=status, headers=error.headers)
    rid = _request_id(backend)
    if error.code == 1202:  # no such route, or method: gin answers both 404 (RelayNotFound)
        method, _, path = error.message.partition(": ")[2].partition(" ")
        refusal = gateway_profiles.not_found(method or "GET", path or "/")
    elif error.http_status == 401:
        refusal = gateway_profiles.token_refusal(prof, "?", rid)
    else:
        code = gateway.ERROR_CODES.get(error.http_status, f"http_{error.http_status}")
        refusal = gateway_profiles.task_error(error.http_status, code, error.message)
    return _answer(refusal.status, refusal.body, rid, error.headers)


def routes(backend: Backend) -> list[BaseRoute]:
    prof = gateway_profiles.profile(backend.config.gateway)
    if prof is None:
        return _seed_routes(backend)
    if backend.config.polls_per_status:
        # Tasks progress by queries, not the clock: no poller tick to wait for, the gateway's
        # record shows Kling's status as each query moves it.
        prof = prof._replace(poll_seconds=0)
    return _family_routes(backend, prof)


# -- the seed document's gateway -----------------------------------------------------------------


def _seed_routes(backend: Backend) -> list[BaseRoute]:
    spec = backend.spec

    def own_task(account: str, task_id: str) -> Task:
        """The account's gateway task with this id; task_not_exist for anything else."""
        task = backend.get_task(account, task_id)
        info = gateway.details(task)
        if task.task_id != task_id or info is None or info.get("profile"):
            raise KlingError(1203, f"task {task_id[:64]} does not exist")
        return task

    async def submit(request: Request, operation: str) -> tuple[str, dict[str, Any]]:
        account = backend.authenticate_key(request.headers.get("authorization"))
        body = await read_json_object(request, backend.config.max_body_bytes)
        spec.validate_body(operation, body)
        return account, body

    def create(account: str, submission: gateway.Submission) -> Task:
        # A translated generic body meets the passthrough's schema by construction (its metadata
        # fields use the same schemas; tests/test_gateway.py holds that), so it is not re-checked.
        return backend.create_task(
            account, submission.action, submission.body, extra=submission.extra, rules=gateway.RULES
        )

    async def create_generation(request: Request) -> Response:
        account, body = await submit(request, GENERIC_CREATE)
        task = await off_loop(request, lambda: create(account, gateway.from_generic(body)))
        return JSONResponse({"task_id": task.task_id})

    async def get_generation(request: Request) -> Response:
        account = backend.authenticate_key(request.headers.get("authorization"))
        task = own_task(account, request.path_params["task_id"])
        return JSONResponse(generation_view(task, backend.now_ms(), result_base(backend, request.scope)))

    out: list[BaseRoute] = [
        Route("/v1/video/generations", create_generation, methods=["POST"]),
        Route("/v1/video/generations/{task_id}", get_generation, methods=["GET"]),
    ]

    for action, operation in PASSTHROUGH_CREATE.items():

        async def create_passthrough(
            request: Request, action: str = action, operation: str = operation
        ) -> Response:
            account, body = await submit(request, operation)
            task = await off_loop(request, lambda: create(account, gateway.from_passthrough(action, body)))
            return envelope(backend.new_id(), passthrough_created(task), SUCCESS_MESSAGE)

        async def get_passthrough(request: Request) -> Response:
            account = backend.authenticate_key(request.headers.get("authorization"))
            task = own_task(account, request.path_params["task_id"])
            data = task_view(task, backend.now_ms(), result_base(backend, request.scope))
            return envelope(backend.new_id(), data, SUCCESS_MESSAGE)

        out.append(Route(f"/kling/v1/videos/{action}", create_passthrough, methods=["POST"]))
        out.append(Route(f"/kling/v1/videos/{action}/{{task_id}}", get_passthrough, methods=["GET"]))
    return out


# -- the real gateways: ppwapi and new-api ---------------------------------------------------------

# gin's c.JSON writes this Content-Type.
GIN_JSON: Final = "application/json; charset=utf-8"
REQUEST_ID_HEADER: Final = "X-Oneapi-Request-Id"  # middleware/request-id.go, on every answer
# new-api controller/video_proxy.go: the proxied video's caching.
VIDEO_CACHE_CONTROL: Final = "public, max-age=86400"


def _request_id(backend: Backend) -> str:
    return gateway_profiles.request_id(backend.now_ms(), secrets.token_hex(4))


def _answer(status: int, body: Any, rid: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        body, status_code=status, headers={**(headers or {}), REQUEST_ID_HEADER: rid}, media_type=GIN_JSON
    )


async def _body(request: Request, max_bytes: int) -> Body:
    """The body as a Go gateway reads it: JSON for a JSON Content-Type, the form values of a
    multipart one, nothing for any other."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    raw = await read_body(request, max_bytes)
    if media == "multipart/form-data":

        async def stream() -> Any:
            yield raw

        try:
            form = await MultiPartParser(request.headers, stream(), max_part_size=max_bytes).parse()
        except MultiPartException as exc:
            raise gateway_profiles.task_error(400, "invalid_multipart_form", str(exc)) from None
        values: dict[str, list[str]] = {}
        for key, item in form.multi_items():
            if isinstance(item, str):  # files are not form values (c.Request.PostForm)
                values.setdefault(key, []).append(item)
        await form.close()
        return Body(form=values)
    if media != "application/json":
        return Body()
    value = parse(raw)
    if isinstance(value, dict | list) and too_deep(value if isinstance(value, dict) else {"": value}):
        raise gateway_profiles.task_error(400, "invalid_request", "exceeded max depth")
    return Body(json=value)


Handler = Callable[[Request, str], Awaitable[Response]]


def _family_routes(backend: Backend, prof: Profile) -> list[BaseRoute]:
    """The routes the profile's gateway serves (Profile.operations), each answering as it does."""
    max_bytes = backend.config.max_body_bytes

    def account_of(request: Request, rid: str) -> str:
        header = request.headers.get("authorization")
        try:
            return backend.authenticate_key(header)
        except KlingError:
            raise gateway_profiles.token_refusal(prof, header, rid) from None

    def find(account: str, ident: str) -> Task | None:
        task_id = prof.kling_id(ident)
        task = backend.tasks.get(task_id) if task_id else None
        if task is None or task.account != account or gateway_profiles.details(task, prof) is None:
            return None
        return task

    def own(account: str, ident: str) -> Task:
        task = find(account, ident)
        if task is None:
            raise gateway_profiles.task_error(400, *gateway_profiles.TASK_NOT_EXIST)
        return task

    def submit(account: str, upstream: gateway_profiles.Upstream) -> Task:
        """The gateway's upstream call: the official endpoint's schema and rules decide."""
        try:
            backend.spec.validate_body(ACTIONS[upstream.action].create_op, upstream.body)
            return backend.create_task(account, upstream.action, upstream.body, extra=upstream.extra(prof))
        except KlingError as error:
            answer = error.to_envelope(backend.new_id())
            raise gateway_profiles.upstream_refusal(prof, error.http_status, answer) from None

    def creating(passthrough: bool) -> Handler:
        async def create(request: Request, rid: str) -> Response:
            body = await _body(request, max_bytes)
            account = account_of(request, rid)
            upstream = prof.translate(prof, body, passthrough=passthrough, rid=rid)
            task = await off_loop(request, lambda: submit(account, upstream))
            return _answer(200, prof.created(task, upstream, backend.now_ms()), rid)

        return create

    async def query(request: Request, rid: str) -> Response:
        task = backend.polled(own(account_of(request, rid), request.path_params["task_id"]))
        base = result_base(backend, request.scope)
        return _answer(200, prof.task_view(task, backend.now_ms(), base, prof), rid)

    async def video(request: Request, rid: str) -> Response:
        task = backend.polled(own(account_of(request, rid), request.path_params["task_id"]))
        return _answer(
            200,
            gateway_profiles.new_api_video(task, backend.now_ms(), result_base(backend, request.scope), prof),
            rid,
        )

    async def content(request: Request, rid: str) -> Response:
        """controller/video_proxy.go, VideoProxy: the finished video, fetched from Kling's URL."""
        task = find(account_of(request, rid), request.path_params["task_id"])
        if task is None:
            raise gateway_profiles.video_proxy_error(404, "invalid_request_error", "Task not found")
        seen = gateway_profiles.sighting(task, backend.now_ms(), prof)
        if seen.status != gateway_profiles.SUCCESS:
            message = f"Task is not completed yet, current status: {seen.status}"
            raise gateway_profiles.video_proxy_error(400, "invalid_request_error", message)
        if backend.media_expired(task):  # Kling's URL answers 404 by now
            raise gateway_profiles.video_proxy_error(
                502, "server_error", "Upstream service returned status 404"
            )
        headers = {"Cache-Control": VIDEO_CACHE_CONTROL, REQUEST_ID_HEADER: rid}
        path = video_file(task.duration, *catalogue.video_shape(task))
        return FileResponse(path, media_type="video/mp4", headers=headers)

    def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def answer(request: Request) -> Response:
            rid = _request_id(backend)
            try:
                return await handler(request, rid)
            except Refusal as refusal:
                return _answer(refusal.status, refusal.body, rid)

        return answer

    table: list[tuple[str, str, str, Handler]] = [
        ("createVideoGeneration", "POST", "/v1/video/generations", creating(False)),
        ("getVideoGeneration", "GET", "/v1/video/generations/{task_id}", query),
        ("createGatewayText2Video", "POST", "/kling/v1/videos/text2video", creating(True)),
        ("getGatewayText2VideoTask", "GET", "/kling/v1/videos/text2video/{task_id}", query),
        ("createGatewayImage2Video", "POST", "/kling/v1/videos/image2video", creating(True)),
        ("getGatewayImage2VideoTask", "GET", "/kling/v1/videos/image2video/{task_id}", query),
        ("createOpenAIVideo", "POST", OPENAI_VIDEOS, creating(False)),
        ("getOpenAIVideo", "GET", OPENAI_VIDEOS + "/{task_id}", video),
        ("getOpenAIVideoContent", "GET", OPENAI_VIDEOS + "/{task_id}/content", content),
    ]
    return [
        Route(path, endpoint(handler), methods=[method])
        for operation, method, path, handler in table
        if operation in prof.operations
    ]
