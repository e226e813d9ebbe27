"""The gateway surfaces' mappings, as data in one place, and the translation of their requests
into the official request body the Backend takes.

Sources: the seed document (size table, statuses, the failed-task example, virtual try-on) and
the Kling adaptor of the new-api family gateways (model aliases, defaults); see
docs/gateway.md. A gateway task is an ordinary task: its surface details live in
``Task.extra[EXTRA_KEY]``.
"""

from __future__ import annotations

import zlib
from typing import Any, Final, NamedTuple

from . import catalogue
from .config import MODERATION_MESSAGE
from .errors import KlingError, invalid_value
from .tasks import SPELLINGS, Task
from .validation import Rules

# Official status -> the gateway's spelling (``succeeded``, not ``succeed``).
STATUSES: Final = SPELLINGS["gateway"]

# The seed's "size to aspect ratio" table; any other size is 1:1.
SIZE_ASPECT_RATIOS: Final[dict[str, str]] = {
    "1024x1024": "1:1",
    "512x512": "1:1",
    "1280x720": "16:9",
    "1920x1080": "16:9",
    "720x1280": "9:16",
    "1080x1920": "9:16",
}
DEFAULT_ASPECT_RATIO: Final = "1:1"


def _dimensions(size: str) -> tuple[int, int]:
    width, height = size.split("x")
    return int(width), int(height)


# The size reported for a task that named none: the first size the table lists for its ratio
# (reversed, so that the first one is written last).
DEFAULT_SIZES: Final = {ratio: _dimensions(size) for size, ratio in reversed(SIZE_ASPECT_RATIOS.items())}

# Product aliases of the "third-party proxy" channel, mapped as the seed's gateway
# (pipiwei123/ppwapi, relay/channel/task/kling/adaptor.go) maps them before calling Kling.
MODEL_ALIASES: Final[dict[str, str]] = {
    "kling_video": "kling-v1-6",
    "kling_image": "kling-v1-6",
    "kling_extend": "kling-v2-master",
    "kling_effects": "kling-v2-master",
    "kling_lip_sync": "kling-v2-master",
    "kling_virtual_try_on": "kling-v2-master",
    "kling_image_expand": "kling-v2-master",
}

DEFAULT_FPS: Final = 30
VIDEO_FORMAT: Final = "mp4"
# A failed task's ``error.code``: the seed's example (a prompt refused by moderation) uses 4001,
# and moderation is how a mock task fails.
TASK_FAILED_CODE: Final = 4001
FAILURE_PREFIX: Final = "video generation failed: "
# The seed's wording of the official moderation refusal.
MODERATION_REASON: Final = "the prompt contains inappropriate content"

# Official fields a generic request may carry in ``metadata``: merged into the upstream body,
# as new-api merges metadata. Any other metadata key is ignored.
MERGED_METADATA: Final = (
    "negative_prompt",
    "cfg_scale",
    "mode",
    "aspect_ratio",
    "callback_url",
    "external_task_id",
    "camera_control",
    "image_tail",
)
TRY_ON_FIELDS: Final = ("try_on", "style", "quality")

# The gateway checks its own schema and leaves the catalogue's limits to Kling: every example in
# the seed (camera control on kling-v1-6 pro, a 3 s try-on) passes.
RULES: Final = Rules(capabilities=False)

# Gateway error body ``code`` by HTTP status (the status comes from errors.py's table).
ERROR_CODES: Final[dict[int, str]] = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
    504: "timeout",
}
# Business codes the gateway answers differently: it reports an unknown task as 400.
ERROR_OVERRIDES: Final[dict[int, tuple[int, str]]] = {1203: (400, "task_not_exist")}
EXTRA_KEY: Final = "gateway"


def aspect_ratio(size: str | None) -> str:
    """The seed's table: a known ``WxH`` to its ratio, anything else 1:1."""
    return SIZE_ASPECT_RATIOS.get(size or "", DEFAULT_ASPECT_RATIO)


def resolve_model(name: str | None) -> str:
    """A product alias to its model; a model name as it is; none to the default model."""
    if not name:
        return catalogue.DEFAULT_MODEL
    return MODEL_ALIASES.get(name, name)


def error_status_and_body(error: KlingError) -> tuple[int, dict[str, Any]]:
    """A refusal in the gateway's body, ``{"code": "<string>", "message", "data": null}``."""
    status, code = ERROR_OVERRIDES.get(error.code) or (
        error.http_status,
        ERROR_CODES.get(error.http_status, f"http_{error.http_status}"),
    )
    return status, {"code": code, "message": error.message, "data": None}


class Submission(NamedTuple):
    """A gateway request translated: the endpoint, the official body and the surface details."""

    action: str
    body: dict[str, Any]
    extra: dict[str, Any]


def from_generic(request: dict[str, Any]) -> Submission:
    """Translate a schema-valid ``POST /v1/video/generations`` body.

    An image (or an end frame) makes it image-to-video; the size (``size``, or ``width`` x
    ``height``) gives the aspect ratio unless ``metadata.aspect_ratio`` names one.
    """
    if not request["prompt"].strip():
        raise invalid_value("prompt is required")
    metadata: dict[str, Any] = request.get("metadata") or {}
    width, height = request.get("width"), request.get("height")
    size = request.get("size")
    if size:
        width, height = _dimensions(size)
    elif width and height:
        size = f"{width}x{height}"
    body: dict[str, Any] = {
        "model_name": resolve_model(request.get("model")),
        "prompt": request["prompt"],
        "mode": catalogue.DEFAULT_MODE,
        "duration": str(int(request["duration"])),
        "aspect_ratio": aspect_ratio(size),
    }
    if request.get("image"):
        body["image"] = request["image"]
    body.update((k, metadata[k]) for k in MERGED_METADATA if k in metadata)
    try_on = {k: metadata[k] for k in TRY_ON_FIELDS if k in metadata}
    if try_on:
        body["metadata"] = try_on
    action = "image2video" if body.get("image") or body.get("image_tail") else "text2video"
    if try_on.get("try_on"):
        action = "image2video"  # try-on is an image2video task; refused below without a person image
    if body["model_name"] not in catalogue.VIDEO_MODELS[action]:
        raise invalid_value(f"model: {request.get('model')} makes videos from an image only: send an image")
    shown = {
        "duration": request["duration"],
        "fps": request.get("fps"),
        "width": width,
        "height": height,
        "seed": request.get("seed"),
    }
    return Submission(action, body, _extra(action, body, shown))


def from_passthrough(action: str, request: dict[str, Any]) -> Submission:
    """Translate a schema-valid ``POST /kling/v1/videos/{action}`` body: aliases resolved."""
    body = dict(request)
    body["model_name"] = resolve_model(request.get("model_name"))
    duration = body.get("duration") or catalogue.DEFAULT_DURATION
    shown = {"duration": float(duration), "fps": None, "width": None, "height": None, "seed": None}
    return Submission(action, body, _extra(action, body, shown))


def _extra(action: str, body: dict[str, Any], shown: dict[str, Any]) -> dict[str, Any]:
    details: dict[str, Any] = {
        "aspect_ratio": body.get("aspect_ratio") or DEFAULT_ASPECT_RATIO,
        "shown": shown,
    }
    try_on = body.get("metadata") or {}
    if try_on.get("try_on"):
        if action != "image2video":
            raise invalid_value("virtual try-on goes through image2video: send the person image in image")
        if not body.get("image"):
            raise invalid_value("virtual try-on needs a person image: send it in image (a URL or Base64)")
        details["try_on"] = {"style": try_on.get("style"), "quality": try_on.get("quality")}
    return {EXTRA_KEY: details}


def details(task: Task) -> dict[str, Any] | None:
    """The gateway details of a task created on a gateway surface; None for any other task."""
    if task.extra is None:
        return None
    found: dict[str, Any] | None = task.extra.get(EXTRA_KEY)
    return found


def metadata_view(task: Task) -> dict[str, Any]:
    """``metadata`` of a finished generation: what the request said, defaults for the rest."""
    info = details(task) or {}
    shown: dict[str, Any] = info.get("shown", {})
    ratio = info.get("aspect_ratio", DEFAULT_ASPECT_RATIO)
    width, height = DEFAULT_SIZES.get(ratio, DEFAULT_SIZES[DEFAULT_ASPECT_RATIO])
    duration = shown.get("duration")
    return {
        "duration": float(task.duration) if duration is None else duration,
        "fps": shown.get("fps") or DEFAULT_FPS,
        "width": shown.get("width") or width,
        "height": shown.get("height") or height,
        "seed": _seed(task) if shown.get("seed") is None else shown["seed"],
    }


def _seed(task: Task) -> int:
    """The seed the mock reports when the request named none: fixed per task id."""
    return zlib.crc32(task.task_id.encode()) & 0x7FFFFFFF


def failure(task: Task) -> dict[str, Any]:
    """``error`` of a failed generation, worded as the seed words a moderation refusal."""
    reason = MODERATION_REASON if task.status_msg == MODERATION_MESSAGE else task.status_msg
    # A fate may set the code (Backend.set_fate(..., error_code=...)).
    code = (task.extra or {}).get("error_code", TASK_FAILED_CODE)
    return {"code": code, "message": FAILURE_PREFIX + reason}
