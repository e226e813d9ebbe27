"""The rules a request body must meet beyond its JSON schema: what the model catalogue
allows, camera-control and motion-brush rules, and image contents.

Types, enums and ranges are checked first, against ``openapi.yaml`` (see ``spec``); these are
the rules a schema cannot say. Every refusal is the official 400 / 1201 naming the field.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

from . import catalogue
from .errors import invalid_value
from .media import check_image

CAMERA_AXES = ("horizontal", "vertical", "pan", "tilt", "roll", "zoom")


class VideoParams(NamedTuple):
    model: str
    mode: str
    duration: str


class Rules(NamedTuple):
    """Which rules a surface applies beyond its schema. The official surface applies them all;
    a gateway forwards whatever its own schema accepts, so it skips the catalogue's limits."""

    # The catalogue's model x feature x mode x duration limits.
    capabilities: bool = True


OFFICIAL_RULES: Final = Rules()


def check_video_request(action: str, body: dict[str, Any], rules: Rules = OFFICIAL_RULES) -> VideoParams:
    """Check a schema-valid text2video/image2video body; return its model, mode and duration."""
    params = VideoParams(
        model=body.get("model_name") or catalogue.DEFAULT_MODEL,
        mode=body.get("mode") or catalogue.DEFAULT_MODE,
        duration=body.get("duration") or catalogue.DEFAULT_DURATION,
    )
    if params.model not in catalogue.VIDEO_MODELS[action]:
        raise invalid_value(f"model_name: {params.model} is not supported by {action}")
    _require(action, params, "generate", rules)
    if body.get("sound") == "on":
        _require(action, params, "sound", rules)
    if body.get("voice_list"):
        _require(action, params, "voice", rules)
    camera = body.get("camera_control")
    if camera is not None:
        _check_camera(action, params, camera, rules)
    if action == "image2video":
        _check_frames(action, params, body, rules, camera_used=camera is not None)
    return params


def _require(action: str, params: VideoParams, feature: str, rules: Rules) -> None:
    if rules.capabilities and not catalogue.supports(
        action, params.model, feature, params.mode, params.duration
    ):
        raise invalid_value(
            f"{params.model} does not support {catalogue.FEATURE_NAMES[feature]} "
            f"with mode {params.mode} and duration {params.duration}s on {action}"
        )


def _check_camera(action: str, params: VideoParams, camera: dict[str, Any], rules: Rules) -> None:
    kind = camera.get("type")
    if kind == "simple":
        config = camera.get("config")
        if not config:
            raise invalid_value("camera_control.config is required when camera_control.type is simple")
        moving = [axis for axis in CAMERA_AXES if config.get(axis)]
        if len(moving) != 1:
            raise invalid_value(
                "camera_control.config: exactly one of horizontal, vertical, pan, tilt, roll, zoom "
                f"must be non-zero (got {len(moving)})"
            )
    if action == "image2video" and kind == "simple":
        if catalogue.supports(action, params.model, "camera_control", params.mode, params.duration):
            return
        _require(action, params, "camera_control_simple", rules)
    else:
        _require(action, params, "camera_control", rules)


def _check_frames(
    action: str, params: VideoParams, body: dict[str, Any], rules: Rules, *, camera_used: bool
) -> None:
    image, tail = body.get("image"), body.get("image_tail")
    if not image and not tail:
        # The two messages the real service gives, by model generation.
        if params.model == "kling-v1":
            raise invalid_value("image can not be null")
        raise invalid_value("image and image_tail cannot both be empty")
    if image:
        check_image("image", image)
    if tail:
        check_image("image_tail", tail)
        _require(action, params, "start_end_frame" if image else "end_frame", rules)
    brush = bool(body.get("static_mask") or body.get("dynamic_masks"))
    if brush:
        _require(action, params, "motion_brush", rules)
    if sum((bool(tail), brush, camera_used)) > 1:
        raise invalid_value(
            "image_tail, motion brush (static_mask/dynamic_masks) and camera_control cannot be used together"
        )
