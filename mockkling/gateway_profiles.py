"""The gateway profiles: how the gateways of the new-api family really answer, as data.

``Config.gateway`` picks one. ``seed`` is the seed document's word (mockkling/gateway.py); the
two others are what the gateways' own source does, read from their repositories:

- ``ppwapi``: pipiwei123/ppwapi, the fork the seed document belongs to (its
  ``docs/models/Kling.md``);
- ``new-api``: mainline QuantumNous/new-api, which also serves an OpenAI-compatible video API.

Each function or table below names the file and function it follows. Both gateways are real
clients of the official API: a create is translated into the official body the gateway would
send upstream and submitted to the same Backend the official surface uses, under the official
rules, so whatever Kling refuses comes back as the gateway wraps an upstream refusal. A query
answers from the gateway's own task record, which only its poller updates (every 15 s), so it
lags behind the task as Kling reports it, exactly as on a real gateway.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import zlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

import orjson

from . import gateway as seed
from .gojson import (
    ANY,
    BOOL,
    FLOAT64,
    INT,
    MAP,
    STRING,
    DecodeError,
    Field,
    Slice,
    Struct,
    Syntax,
    marshal,
    roundtrip,
    unmarshal,
)
from .tasks import FAILED, PROCESSING, SUBMITTED, SUCCEED, Task
from .views import created_view, task_view, video_url

SEED: Final = "seed"
PPWAPI: Final = "ppwapi"
NEW_API: Final = "new-api"

# -- the gateway's task record (model/task.go in both repositories) ------------------------------

NOT_START: Final = "NOT_START"
QUEUED: Final = "QUEUED"
IN_PROGRESS: Final = "IN_PROGRESS"
SUCCESS: Final = "SUCCESS"
FAILURE: Final = "FAILURE"
GATEWAY_SUBMITTED: Final = "SUBMITTED"
GATEWAY_STATUSES: Final = (NOT_START, GATEWAY_SUBMITTED, QUEUED, IN_PROGRESS, FAILURE, SUCCESS, "UNKNOWN")

# Kling's task_status -> the gateway's status (relay/channel/task/kling/adaptor.go,
# TaskAdaptor.ParseTaskResult, in both).
KLING_TO_GATEWAY: Final[dict[str, str]] = {
    SUBMITTED: GATEWAY_SUBMITTED,
    PROCESSING: IN_PROGRESS,
    SUCCEED: SUCCESS,
    FAILED: FAILURE,
}
# A task's progress once a poll has seen a status; "0%" before the first poll (model.InitTask).
# ppwapi: controller/task_video.go, updateVideoSingleTask; new-api: service/task_polling.go,
# updateVideoSingleTask, with relay/channel/task/taskcommon's Progress* constants.
PROGRESS: Final[dict[str, str]] = {
    NOT_START: "0%",
    GATEWAY_SUBMITTED: "10%",
    QUEUED: "20%",
    IN_PROGRESS: "30%",
    SUCCESS: "100%",
    FAILURE: "100%",
}
# The OpenAI video status of a gateway status (new-api model/task.go, TaskStatus.ToVideoStatus):
# a task no poll has seen yet is "unknown", the function's fallback.
VIDEO_STATUSES: Final[dict[str, str]] = {
    NOT_START: "unknown",
    GATEWAY_SUBMITTED: "queued",
    QUEUED: "queued",
    IN_PROGRESS: "in_progress",
    SUCCESS: "completed",
    FAILURE: "failed",
}
# Task actions (constant/task.go): "generate" goes upstream to image2video, anything else to
# text2video (adaptor.go, BuildRequestURL and FetchTask).
GENERATE: Final = "generate"
TEXT_GENERATE: Final = "textGenerate"
UPSTREAM_ACTIONS: Final = {GENERATE: "image2video", TEXT_GENERATE: "text2video"}

# The official answer's "message" on success: what the fork reads as a failed task's reason.
KLING_SUCCESS_MESSAGE: Final = "SUCCEED"
TASK_SUCCESS_CODE: Final = "success"  # dto.TaskSuccessCode

# -- the structs the gateways decode requests into -----------------------------------------------

# ppwapi middleware/distributor.go, ModelRequest: decoded before anything else.
PPWAPI_MODEL_REQUEST: Final = Struct(
    "middleware.ModelRequest", (Field("model", STRING, omitempty=False), Field("group", STRING))
)
# ppwapi relay/channel/task/kling/adaptor.go, SubmitReq: what the generic create reads. No
# width, height, fps, seed or n: those are dropped. duration is an int: 5.0 is refused.
PPWAPI_SUBMIT_REQ: Final = Struct(
    "kling.SubmitReq",
    (
        Field("prompt", STRING, omitempty=False),
        Field("model", STRING),
        Field("mode", STRING),
        Field("image", STRING),
        Field("size", STRING),
        Field("duration", INT),
        Field("metadata", MAP),
    ),
)
# ppwapi adaptor.go, requestPayload: the upstream body (every field omitempty).
PPWAPI_PAYLOAD: Final = Struct(
    "kling.requestPayload",
    (
        Field("prompt", STRING),
        Field("image", STRING),
        Field("mode", STRING),
        Field("duration", STRING),
        Field("aspect_ratio", STRING),
        Field("model_name", STRING),
        Field("cfg_scale", FLOAT64),
    ),
)
# new-api relay/common/relay_info.go, TaskSubmitReq.UnmarshalJSON: an anonymous struct whose
# duration and metadata are read apart (an int or a numeric string; an object or a JSON string).
NEW_API_SUBMIT_REQ: Final = Struct(
    "",
    (
        Field("prompt", STRING, omitempty=False),
        Field("model", STRING),
        Field("mode", STRING),
        Field("image", STRING),
        Field("images", Slice(STRING)),
        Field("size", STRING),
        Field("duration", ANY),
        Field("seconds", STRING),
        Field("input_reference", STRING),
        Field("metadata", ANY),
    ),
)
_CAMERA_CONFIG: Final = Struct(
    "kling.CameraConfig",
    tuple(Field(name, FLOAT64) for name in ("horizontal", "vertical", "pan", "tilt", "roll", "zoom")),
    pointer=True,
)
_TRAJECTORY: Final = Struct(
    "kling.TrajectoryPoint", (Field("x", INT, omitempty=False), Field("y", INT, omitempty=False))
)
# new-api relay/channel/task/kling/adaptor.go, requestPayload: the upstream body, which the
# request's metadata is decoded over (convertToRequestPayload); keys it has no field for vanish.
NEW_API_PAYLOAD: Final = Struct(
    "kling.requestPayload",
    (
        Field("prompt", STRING),
        Field("image", STRING),
        Field("image_tail", STRING),
        Field("negative_prompt", STRING),
        Field("sound", STRING),
        Field("mode", STRING),
        Field("duration", STRING),
        Field("aspect_ratio", STRING),
        Field("model_name", STRING),
        Field("model", STRING),
        Field("cfg_scale", FLOAT64),
        Field("static_mask", STRING),
        Field(
            "dynamic_masks",
            Slice(
                Struct(
                    "kling.DynamicMask", (Field("mask", STRING), Field("trajectories", Slice(_TRAJECTORY)))
                )
            ),
        ),
        Field(
            "camera_control",
            Struct(
                "kling.CameraControl", (Field("type", STRING), Field("config", _CAMERA_CONFIG)), pointer=True
            ),
        ),
        Field(
            "watermark_info",
            Struct("kling.WatermarkInfo", (Field("enabled", BOOL, omitempty=False),), pointer=True),
        ),
        Field("callback_url", STRING),
        Field("external_task_id", STRING),
    ),
)
# new-api relay/common/relay_utils.go, isKnownTaskField: multipart fields that are not copied
# into metadata (every other form value is, as an int, a float or a string).
NEW_API_KNOWN_FORM_FIELDS: Final = frozenset(
    {"prompt", "model", "mode", "image", "images", "size", "duration", "input_reference"}
)


class Profile(NamedTuple):
    """One gateway, as data: what it serves, which models its Kling channel takes, how it polls,
    and the words of its refusals."""

    name: str
    repo: str  # the repository read for it
    operations: frozenset[str]  # the operationIds of openapi.yaml it serves
    channel_models: tuple[str, ...]  # models a request may name (else no channel is found)
    model_aliases: Mapping[str, str]  # mapped to a Kling model before the upstream call
    passthrough_default_model: str  # the model a /kling passthrough names when it names none
    poll_seconds: int  # the poller's period: what a query shows lags behind by up to this (0: none)
    timeout_seconds: int | None  # an IN_PROGRESS task older than this is failed by the poller
    timeout_reason: str
    messages: Mapping[str, str]  # middleware refusals, str.format templates
    middleware_code: bool  # whether a middleware refusal's error object carries "code"
    masks_upstream_urls: bool  # whether an upstream error naming post/dial/http is replaced
    # Its answers, as the functions below make them (the routes only call these):
    translate: Callable[..., Upstream]  # a create's body -> the official call made upstream
    created: Callable[[Task, Upstream, int], dict[str, Any]]  # the answer to a create
    task_view: Callable[[Task, int, str, Profile], dict[str, Any]]  # the answer to a task query
    kling_id: Callable[[str], str | None]  # the Kling task behind an id it handed out


SEED_OPERATIONS: Final = frozenset(
    {
        "createVideoGeneration",
        "getVideoGeneration",
        "createGatewayText2Video",
        "getGatewayText2VideoTask",
        "createGatewayImage2Video",
        "getGatewayImage2VideoTask",
    }
)

GROUP: Final = "default"  # the token's group when none is configured
# new-api relay/relay_adaptor.go, GetTaskPlatform: a task's platform is its channel type (50: Kling).
NEW_API_PLATFORM: Final = "50"
# What the mock's gateway record holds where a real one holds its own database rows.
USER_ID: Final = 1
CHANNEL_ID: Final = 1
# ppwapi relay_task.go via service/error.go TaskErrorWrapper: text with these is replaced.
UPSTREAM_MASK_WORDS: Final = ("post", "dial", "http")
UPSTREAM_MASKED: Final = "请求上游地址失败"
# controller/relay.go, RelayTask (both): a 429 from upstream is answered with this instead.
SATURATED: Final = "当前分组上游负载已饱和\uff0c请稍后再试"  # a full-width comma


def profile(name: str) -> Profile | None:
    """The profile of a family gateway; None for the seed's documented gateway."""
    return PROFILES.get(name)


# -- refusals ------------------------------------------------------------------------------------


class Refusal(Exception):
    """A gateway's refusal: the HTTP status and the exact body it answers."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.status = status
        self.body = body


def task_error(status: int, code: str, message: str) -> Refusal:
    """dto.TaskError as the relay answers it (``c.JSON(taskErr.StatusCode, taskErr)``)."""
    if status == 429:
        message = SATURATED
    return Refusal(status, {"code": code, "message": message, "data": None})


def middleware_error(prof: Profile, status: int, message: str, request_id: str, code: str = "") -> Refusal:
    """middleware/utils.go, abortWithOpenAiMessage: an OpenAI-style error with the request id."""
    error: dict[str, Any] = {
        "message": f"{message} (request id: {request_id})",  # common.MessageWithRequestId
        "type": "new_api_error",
    }
    if prof.middleware_code:
        error["code"] = code
    return Refusal(status, {"error": error})


def not_found(method: str, path: str) -> Refusal:
    """controller/relay.go, RelayNotFound: gin answers an unknown route (or method) 404 so."""
    message = f"Invalid URL ({method} {path[:200]})"
    return Refusal(
        404, {"error": {"message": message, "type": "invalid_request_error", "param": "", "code": ""}}
    )


def video_proxy_error(status: int, error_type: str, message: str) -> Refusal:
    """new-api controller/video_proxy.go, videoProxyError."""
    return Refusal(status, {"error": {"message": message, "type": error_type}})


def request_id(now_ms: int, suffix: str) -> str:
    """common.GetTimeString() + 8 random characters (middleware/request-id.go)."""
    stamp = datetime.fromtimestamp(now_ms / 1000, UTC)
    return f"{stamp:%Y%m%d%H%M%S}{(now_ms % 1000) * 1_000_000}{suffix[:8]}"


def token_refusal(prof: Profile, authorization: str | None, request_id: str) -> Refusal:
    """middleware/auth.go TokenAuth: no key, or a key the gateway does not know."""
    present = bool((authorization or "").strip().removeprefix("Bearer").strip())
    message = prof.messages["token_invalid" if present else "token_missing"]
    return middleware_error(prof, 401, message, request_id)


def upstream_refusal(prof: Profile, status: int, body: dict[str, Any]) -> Refusal:
    """An upstream answer other than 200 (relay/relay_task.go, RelayTaskSubmit): the gateway
    answers with Kling's status and Kling's body as the message."""
    text = orjson.dumps(body).decode()
    if prof.masks_upstream_urls and any(word in text.lower() for word in UPSTREAM_MASK_WORDS):
        text = UPSTREAM_MASKED
    return task_error(status, "fail_to_fetch_task", text)


TASK_NOT_EXIST: Final = ("task_not_exist", "task_not_exist")  # relay_task.go, videoFetchByIDRespBodyBuilder


# -- what a create becomes upstream --------------------------------------------------------------


class Upstream(NamedTuple):
    """A gateway create translated: the official action and body it sends, and its record."""

    action: str  # the official endpoint: "text2video" or "image2video"
    body: dict[str, Any]
    task_action: str  # GENERATE or TEXT_GENERATE, as the gateway records it
    model: str  # the model the client named (the gateway's OriginModelName)

    def extra(self, prof: Profile) -> dict[str, Any]:
        """What the task keeps of the gateway's record (``Task.extra[seed.EXTRA_KEY]``)."""
        return {seed.EXTRA_KEY: {"profile": prof.name, "action": self.task_action, "model": self.model}}


class Body(NamedTuple):
    """A request body as a Go gateway sees it: a parsed JSON value (or its syntax error), the
    values of a multipart form, or nothing it reads (another content type)."""

    json: Any | Syntax | None = None
    form: Mapping[str, list[str]] | None = None

    @property
    def is_json(self) -> bool:
        return self.form is None and self.json is not None


def _select_channel(prof: Profile, model: str, rid: str) -> None:
    """middleware/distributor.go, Distribute: a model no channel serves has no channel."""
    if prof.name == NEW_API and not model:
        raise middleware_error(prof, 400, prof.messages["model_required"], rid)
    if model not in prof.channel_models:
        message = prof.messages["no_channel"].format(group=GROUP, model=model)
        raise middleware_error(prof, 503, message, rid, code="model_not_found")


def distribute(prof: Profile, body: Body, rid: str) -> str:
    """The model a create names, as the Distribute middleware reads it, with its refusals."""
    model: Any = ""
    if prof.name == PPWAPI:
        # getModelRequest: common.UnmarshalBodyReusable reads a JSON content type only.
        if isinstance(body.json, Syntax):
            raise middleware_error(prof, 400, _invalid(prof, body.json.message), rid)
        if body.is_json:
            try:
                model = unmarshal(body.json, PPWAPI_MODEL_REQUEST).get("model", "")
            except DecodeError as exc:
                raise middleware_error(prof, 400, _invalid(prof, str(exc)), rid) from None
    else:
        # getModelFromJSONBody (gjson), or the multipart form's value.
        if isinstance(body.json, Syntax):
            raise middleware_error(prof, 400, _invalid(prof, "invalid JSON request body"), rid)
        if body.form is not None:
            model = (body.form.get("model") or [""])[0]
        elif isinstance(body.json, dict):
            for name in ("model", "group"):
                if body.json.get(name) is not None and not isinstance(body.json[name], str):
                    raise middleware_error(prof, 400, _invalid(prof, f"field {name} must be a string"), rid)
            model = body.json.get("model") or ""
    _select_channel(prof, model, rid)
    return str(model)


def _invalid(prof: Profile, error: str) -> str:
    return prof.messages["invalid_request"].format(error=error)


def aspect_ratio(size: str) -> str:
    """adaptor.go getAspectRatio (both gateways): the seed's size table."""
    return seed.aspect_ratio(size)


def _default(value: Any, fallback: str) -> str:
    """adaptor.go defaultString: blank means the default."""
    return value if isinstance(value, str) and value.strip() else fallback


def ppwapi_create(prof: Profile, body: Body, *, passthrough: bool, rid: str) -> Upstream:
    """ppwapi: POST /v1/video/generations, or the /kling/v1/videos/* passthrough.

    The passthrough (middleware/kling_adapter.go, KlingRequestConvert) first wraps the official
    body as ``{"model": model_name or model or "kling_video", "prompt", "metadata": body}``; the
    adaptor then reads only prompt, model, mode, image, size, duration and metadata's
    cfg_scale, mode and aspect_ratio (adaptor.go, convertToRequestPayload). So the passthrough
    loses its image, duration and every other official field."""
    task_action = GENERATE
    if passthrough:
        original = body.json if isinstance(body.json, dict) else {}
        if isinstance(body.json, dict) or body.json is None:
            name = original.get("model_name") if isinstance(original.get("model_name"), str) else ""
            if not name:
                name = original.get("model") if isinstance(original.get("model"), str) else ""
            prompt = original.get("prompt") if isinstance(original.get("prompt"), str) else ""
            wrapped = {
                "model": name or prof.passthrough_default_model,
                "prompt": prompt,
                "metadata": original,
            }
            body = Body(json=wrapped) if body.is_json else body
            if original.get("image") in (None, ""):
                task_action = TEXT_GENERATE
    model = distribute(prof, body, rid)
    # adaptor.go, ValidateRequestAndSetAction
    try:
        request = unmarshal(body.json if body.is_json else {}, PPWAPI_SUBMIT_REQ)
    except DecodeError as exc:
        raise task_error(400, "invalid_request", str(exc)) from None
    if not request.get("prompt", "").strip():
        raise task_error(400, "invalid_request", "prompt is required")
    name = request.get("model") or "kling-v1"
    payload: dict[str, Any] = {
        "prompt": request.get("prompt", ""),
        "image": request.get("image", ""),
        "mode": _default(request.get("mode"), "std"),
        "duration": str(request.get("duration") or 5),
        "aspect_ratio": aspect_ratio(request.get("size", "")),
        "model_name": prof.model_aliases.get(name, name),
        "cfg_scale": 0.5,
    }
    metadata = request.get("metadata") or {}
    scale = metadata.get("cfg_scale")
    if isinstance(scale, int | float) and not isinstance(scale, bool):
        payload["cfg_scale"] = float(scale)
    for key in ("mode", "aspect_ratio"):
        if isinstance(metadata.get(key), str):
            payload[key] = metadata[key]
    return Upstream(UPSTREAM_ACTIONS[task_action], marshal(payload, PPWAPI_PAYLOAD), task_action, model)


def _new_api_request(body: Body) -> dict[str, Any]:
    """relay/common/relay_utils.go ValidateBasicTaskRequest: the TaskSubmitReq of a JSON or a
    multipart body, with its refusals."""
    if body.form is not None:
        # validateMultipartTaskRequest: "seconds" is the duration; other values go to metadata.
        form = body.form
        first = {key: values[0] for key, values in form.items() if values}
        request: dict[str, Any] = {
            key: first.get(key, "") for key in ("prompt", "model", "mode", "image", "size")
        }
        seconds = first.get("seconds", "")
        request["duration"] = int(seconds) if _is_go_int(seconds) else 0
        if form.get("images"):
            request["images"] = list(form["images"])
        metadata: dict[str, Any] = {}
        for key, value in first.items():
            if key not in NEW_API_KNOWN_FORM_FIELDS:
                metadata[key] = _form_value(value)
        request["metadata"] = metadata
        return request
    try:
        request = unmarshal(body.json if body.is_json else {}, NEW_API_SUBMIT_REQ)
    except DecodeError as exc:
        raise task_error(400, "invalid_request", str(exc)) from None
    # duration: an int, else a string of one; anything else leaves it 0.
    duration = request.get("duration")
    if isinstance(duration, bool) or not isinstance(duration, int | str):
        duration = 0
    elif isinstance(duration, str):
        duration = int(duration) if _is_go_int(duration) else 0
    request["duration"] = duration
    # metadata: a JSON string holding an object, else an object; anything else is dropped.
    metadata_value = request.get("metadata")
    if isinstance(metadata_value, str) and metadata_value:
        try:
            parsed = orjson.loads(metadata_value)
        except orjson.JSONDecodeError:
            parsed = None
        metadata_value = parsed
    request["metadata"] = metadata_value if isinstance(metadata_value, dict) else None
    return request


def _is_go_int(text: str) -> bool:
    """strconv.Atoi: an optional sign, ASCII digits, within int64."""
    digits = text[1:] if text[:1] in "+-" else text
    return bool(digits) and digits.isascii() and digits.isdigit() and -(2**63) <= int(text) < 2**63


# strconv.ParseFloat takes these (any case) without an error, as NaN and infinities.
_GO_FLOAT_WORDS: Final = frozenset({"nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"})


def _form_value(value: str) -> Any:
    """relay_utils.go: a multipart value goes into metadata as an int, a float or a string
    (a number out of float64's range fails ParseFloat and stays a string)."""
    if _is_go_int(value):
        return int(value)
    try:
        number = float(value)
    except ValueError:
        return value
    if math.isfinite(number) or value.strip().lower() in _GO_FLOAT_WORDS:
        return number
    return value


def _unsupported(metadata: Mapping[str, Any]) -> str | None:
    """What json.Marshal refuses in metadata: a NaN or an infinity (from a form value)."""
    for value in metadata.values():
        if isinstance(value, float) and not math.isfinite(value):
            return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
    return None


def new_api_create(prof: Profile, body: Body, *, passthrough: bool, rid: str) -> Upstream:
    """new-api: POST /v1/video/generations, POST /v1/videos (JSON or multipart) or the
    /kling/v1/videos/* passthrough, whose whole body becomes metadata.

    relay/channel/task/kling/adaptor.go, convertToRequestPayload: defaults (mode std, duration
    5, cfg_scale 0.5, aspect ratio from size, model_name and model from model), then the
    request's metadata decoded over them as the upstream struct: any official field it has a
    field for passes, typed (a metadata duration must be a string), and the rest vanish."""
    flagged_text = False
    if passthrough and (isinstance(body.json, dict) or body.json is None):
        original = body.json if isinstance(body.json, dict) else {}
        name = original.get("model_name") if isinstance(original.get("model_name"), str) else ""
        if not name:
            name = original.get("model") if isinstance(original.get("model"), str) else ""
        prompt = original.get("prompt") if isinstance(original.get("prompt"), str) else ""
        if body.is_json:
            body = Body(json={"model": name, "prompt": prompt, "metadata": original})
        flagged_text = original.get("image") in (None, "")  # KlingRequestConvert
    model = distribute(prof, body, rid)
    request = _new_api_request(body)
    if not str(request.get("prompt", "")).strip():
        raise task_error(400, "invalid_request", "prompt is required")
    name = request.get("model", "") or model
    payload: dict[str, Any] = {
        "prompt": request.get("prompt", ""),
        "image": request.get("image", ""),
        "mode": _default(request.get("mode"), "std"),
        "duration": str(request.get("duration") or 5),
        "aspect_ratio": aspect_ratio(request.get("size", "")),
        "model_name": name or "kling-v1",
        "model": name,
        "cfg_scale": 0.5,
    }
    metadata = request.get("metadata")
    unsupported = _unsupported(metadata or {})
    if unsupported is not None:
        message = f"metadata marshal metadata failed: json: unsupported value: {unsupported}"
        raise task_error(500, "build_request_failed", message)
    if metadata:
        try:
            payload = unmarshal(roundtrip(metadata), NEW_API_PAYLOAD, into=payload)
        except DecodeError as exc:
            message = f"unmarshal metadata failed: {exc}"
            raise task_error(500, "build_request_failed", message) from None
    upstream = marshal(payload, NEW_API_PAYLOAD)
    # adaptor.go BuildRequestBody: no image and no end frame makes it a text task.
    text = flagged_text or not (upstream.get("image") or upstream.get("image_tail"))
    task_action = TEXT_GENERATE if text else GENERATE
    return Upstream(UPSTREAM_ACTIONS[task_action], upstream, task_action, model)


# -- the gateway's record of a task, as its poller keeps it --------------------------------------


class Sighting(NamedTuple):
    """The gateway's task record at some moment: what its last poll saw."""

    status: str
    progress: str
    start_s: int
    finish_s: int
    updated_ms: int  # when the poller last wrote the record
    fetched_ms: int | None  # when the upstream answer it keeps was fetched (None: the submit answer)
    timed_out: bool


def _polls_before(offset_ms: int, period_ms: int) -> int:
    """The first poll (1, 2, ...) at or after ``offset_ms`` from the submission."""
    return max(1, -(-offset_ms // period_ms))


def sighting(task: Task, now_ms: int, prof: Profile) -> Sighting:
    """The record at ``now_ms``. The poller first runs ``poll_seconds`` after the submission,
    then every ``poll_seconds``: before its first run the task is NOT_START at 0%; each run
    copies Kling's status (KLING_TO_GATEWAY) and sets the progress (PROGRESS), start_time when
    it first sees processing and finish_time when it sees the end. A fork task still
    IN_PROGRESS ``timeout_seconds`` after its submission is failed by the poller instead. With
    ``poll_seconds`` 0 (tasks that progress by queries) there is no poller: the record is
    Kling's status at ``now_ms``."""
    period = prof.poll_seconds * 1000
    created = task.created_ms
    if period == 0:  # no poller: the record is Kling's status as it is now
        status = KLING_TO_GATEWAY[task.status(now_ms)]
        start_s = task.processing_ms // 1000 if task.processing_ms <= now_ms else 0
        finish_s = task.done_ms // 1000 if task.done_ms <= now_ms else 0
        return Sighting(status, PROGRESS[status], start_s, finish_s, now_ms, now_ms, False)
    done_polls = (now_ms - created) // period if now_ms > created else 0
    if done_polls < 1:
        return Sighting(NOT_START, PROGRESS[NOT_START], 0, 0, created, None, False)

    def at(k: int) -> int:
        return created + k * period

    k_processing = _polls_before(task.processing_ms - created, period)
    k_done = _polls_before(task.done_ms - created, period)
    saw_processing = k_processing < k_done
    k_end, timed_out = k_done, False
    if prof.timeout_seconds is not None and saw_processing:
        k_timeout = max(k_processing + 1, prof.timeout_seconds * 1000 // period + 1)
        if k_timeout <= k_done:  # the timeout sweep runs before that poll fetches
            k_end, timed_out = k_timeout, True
    start_s = at(k_processing) // 1000 if saw_processing and done_polls >= k_processing else 0
    if done_polls >= k_end:
        if timed_out:
            return Sighting(
                FAILURE, PROGRESS[FAILURE], start_s, at(k_end) // 1000, at(k_end), at(k_end - 1), True
            )
        status = KLING_TO_GATEWAY[task.outcome]
        return Sighting(status, PROGRESS[status], start_s, at(k_end) // 1000, at(k_end), at(k_end), False)
    status = KLING_TO_GATEWAY[task.status(at(done_polls))]
    return Sighting(status, PROGRESS[status], start_s, 0, at(done_polls), at(done_polls), False)


def _upstream_request_id(task: Task, fetched_ms: int | None) -> str:
    """A stable request_id for each upstream answer the record keeps."""
    digest = hashlib.sha256(f"{task.task_id}/{fetched_ms}".encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def kept_answer(task: Task, seen: Sighting, base: str) -> dict[str, Any]:
    """The upstream answer the record keeps as ``data``: the submit answer until the first
    poll, then the last query answer (json.RawMessage, passed through as it came)."""
    rid = _upstream_request_id(task, seen.fetched_ms)
    data = created_view(task) if seen.fetched_ms is None else task_view(task, seen.fetched_ms, base)
    return {"code": 0, "message": KLING_SUCCESS_MESSAGE, "request_id": rid, "data": data}


def details(task: Task, prof: Profile) -> dict[str, Any] | None:
    """The gateway record of a task this profile's gateway created; None for any other task."""
    info = seed.details(task)
    return info if info is not None and info.get("profile") == prof.name else None


def _fail_reason(task: Task, seen: Sighting, prof: Profile, base: str) -> str:
    if seen.timed_out:
        return prof.timeout_reason
    if prof.name == PPWAPI:
        # controller/task_video.go: SUCCESS stores the video URL in fail_reason; FAILURE the
        # upstream top-level message, which Kling keeps "SUCCEED" for a failed task.
        if seen.status == SUCCESS:
            return video_url(base, task)
        return KLING_SUCCESS_MESSAGE if seen.status == FAILURE else ""
    # new-api adaptor.go ParseTaskResult: the reason is data.task_status_msg.
    return task.status_msg if seen.status == FAILURE else ""


def ppwapi_task(task: Task, now_ms: int, base: str, prof: Profile) -> dict[str, Any]:
    """ppwapi GET /v1/video/generations/{task_id} (relay/relay_task.go,
    videoFetchByIDRespBodyBuilder and TaskModel2Dto; dto/suno.go TaskDto)."""
    seen = sighting(task, now_ms, prof)
    info = details(task, prof) or {}
    dto = {
        "task_id": task.task_id,
        "action": info.get("action", GENERATE),
        "status": seen.status,
        "fail_reason": _fail_reason(task, seen, prof, base),
        "submit_time": task.created_ms // 1000,
        "start_time": seen.start_s,
        "finish_time": seen.finish_s,
        "progress": seen.progress,
        "data": kept_answer(task, seen, base),
    }
    return {"code": TASK_SUCCESS_CODE, "message": "", "data": dto}


def public_id(task_id: str) -> str:
    """new-api's public task id, ``task_`` and 32 characters (model/task.go GenerateTaskID),
    made from the Kling task id so that each leads back to the other without a lookup."""
    try:
        raw = base64.urlsafe_b64decode(task_id + "=" * (-len(task_id) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == 16 and base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == task_id:
        return "task_" + raw.hex()
    return "task_" + task_id


def kling_id(public: str) -> str | None:
    """The Kling task id behind a public id; None if it is not one."""
    rest = public.removeprefix("task_")
    if rest == public or not rest:
        return None
    if len(rest) == 32:
        try:
            return base64.urlsafe_b64encode(bytes.fromhex(rest)).rstrip(b"=").decode()
        except ValueError:
            pass
    return rest


def ppwapi_created(task: Task, upstream: Upstream, now_ms: int) -> dict[str, Any]:
    """The answer to a create (adaptor.go, DoResponse: gin.H{"task_id"})."""
    return {"task_id": task.task_id}


def new_api_created(task: Task, upstream: Upstream, now_ms: int) -> dict[str, Any]:
    """The answer to a create (adaptor.go DoResponse; dto/openai_video.go NewOpenAIVideo)."""
    pid = public_id(task.task_id)
    return {
        "id": pid,
        "task_id": pid,
        "object": "video",
        "model": upstream.model,
        "status": "queued",
        "progress": 0,
        "created_at": now_ms // 1000,
    }


def new_api_task(task: Task, now_ms: int, base: str, prof: Profile) -> dict[str, Any]:
    """new-api GET /v1/video/generations/{task_id} and GET /kling/v1/videos/*/{task_id}
    (relay/relay_task.go, videoFetchByIDRespBodyBuilder and TaskModel2Dto; dto/task.go)."""
    seen = sighting(task, now_ms, prof)
    info = details(task, prof) or {}
    fail_reason = _fail_reason(task, seen, prof, base)
    dto: dict[str, Any] = {
        "id": zlib.crc32(task.task_id.encode()) & 0x7FFFFFFF,
        "created_at": task.created_ms // 1000,
        "updated_at": seen.updated_ms // 1000,
        "task_id": public_id(task.task_id),
        "platform": NEW_API_PLATFORM,
        "user_id": USER_ID,
        "group": GROUP,
        "channel_id": CHANNEL_ID,
        "quota": 0,
        "action": info.get("action", GENERATE),
        "status": seen.status,
        "fail_reason": fail_reason,
    }
    # Task.GetResultURL: the stored result URL, else (old records' place for it) fail_reason.
    result_url = video_url(base, task) if seen.status == SUCCESS else fail_reason
    if result_url:
        dto["result_url"] = result_url
    model = info.get("model", "")
    properties: dict[str, Any] = {"input": ""}
    if model:
        properties.update(upstream_model_name=model, origin_model_name=model)
    dto.update(
        submit_time=task.created_ms // 1000,
        start_time=seen.start_s,
        finish_time=seen.finish_s,
        progress=seen.progress,
        properties=properties,
        data=kept_answer(task, seen, base),
    )
    return {"code": TASK_SUCCESS_CODE, "message": "", "data": dto}


def new_api_video(task: Task, now_ms: int, base: str, prof: Profile) -> dict[str, Any]:
    """new-api GET /v1/videos/{task_id}: adaptor.go ConvertToOpenAIVideo. Its created_at and
    completed_at are the kept Kling answer's (milliseconds), completed_at is there whenever
    Kling gave an updated_at, and the model is left empty."""
    seen = sighting(task, now_ms, prof)
    data = kept_answer(task, seen, base)["data"]
    video: dict[str, Any] = {
        "id": public_id(task.task_id),
        "object": "video",
        "model": "",
        "status": VIDEO_STATUSES.get(seen.status, "unknown"),
        "progress": int(seen.progress.rstrip("%")),
        "created_at": data["created_at"],
    }
    if data.get("updated_at"):
        video["completed_at"] = data["updated_at"]
    videos = (data.get("task_result") or {}).get("videos") or []
    if videos:
        if videos[0].get("duration"):
            video["seconds"] = str(videos[0]["duration"])
        if videos[0].get("url"):
            video["metadata"] = {"url": videos[0]["url"]}
    return video


# Last in the module: each profile names the functions above that make its answers.
PROFILES: Final[dict[str, Profile]] = {
    PPWAPI: Profile(
        name=PPWAPI,
        repo="pipiwei123/ppwapi",
        # router/video-router.go, SetVideoRouter: no passthrough query route.
        operations=frozenset(
            {
                "createVideoGeneration",
                "getVideoGeneration",
                "createGatewayText2Video",
                "createGatewayImage2Video",
            }
        ),
        # adaptor.go GetModelList, and the seed's third-party aliases (its Kling.md channel setup).
        channel_models=("kling-v1", "kling-v1-6", "kling-v2-master", *seed.MODEL_ALIASES),
        model_aliases=seed.MODEL_ALIASES,  # adaptor.go, convertToRequestPayload
        passthrough_default_model="kling_video",  # middleware/kling_adapter.go, KlingRequestConvert
        poll_seconds=15,  # controller/task.go, UpdateTaskBulk
        timeout_seconds=20 * 60,  # common/constants.go TaskTimeoutDuration; controller/task.go
        timeout_reason="任务执行超时",
        messages={
            # model/token.go ValidateUserToken; middleware/distributor.go Distribute, getModelRequest
            "token_missing": "未提供令牌",
            "token_invalid": "无效的令牌",
            "invalid_request": "Invalid request, 无效的请求, {error}",
            "no_channel": "当前分组 {group} 下对于模型 {model} 无可用渠道",
        },
        middleware_code=False,  # middleware/utils.go, abortWithOpenAiMessage
        masks_upstream_urls=True,  # service/error.go, TaskErrorWrapper
        translate=ppwapi_create,
        created=ppwapi_created,
        task_view=ppwapi_task,
        kling_id=str,  # it hands out Kling's own task id
    ),
    NEW_API: Profile(
        name=NEW_API,
        repo="QuantumNous/new-api",
        # router/video-router.go, SetVideoRouter (the remix route is not served: Kling has none).
        operations=SEED_OPERATIONS | {"createOpenAIVideo", "getOpenAIVideo", "getOpenAIVideoContent"},
        # relay/channel/task/kling/adaptor.go, GetModelList; no aliases in mainline.
        channel_models=(
            "kling-v1",
            "kling-v1-6",
            "kling-v2-master",
            "kling-v2-1-master",
            "kling-v2-5-turbo",
            "kling-v2-6",
        ),
        model_aliases={},
        passthrough_default_model="",  # middleware/kling_adapter.go: model_name, else model
        poll_seconds=15,  # service/task_polling.go, TaskPollingLoop
        timeout_seconds=None,  # TASK_TIMEOUT_MINUTES: its default is deployment configuration
        timeout_reason="",
        messages={
            # i18n/locales/en.yaml: token.*, distributor.*
            "token_missing": "Token not provided",
            "token_invalid": "Invalid token",
            "invalid_request": "Invalid request: {error}",
            "model_required": "Model name not specified, model name cannot be empty",
            "no_channel": "No available channel for model {model} under group {group} (distributor)",
        },
        middleware_code=True,  # middleware/utils.go, abortWithOpenAiMessage
        masks_upstream_urls=False,  # service/error.go masks URLs in place, keeping the text
        translate=new_api_create,
        created=new_api_created,
        task_view=new_api_task,
        kling_id=kling_id,
    ),
}
