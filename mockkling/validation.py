"""The rules a request body must meet beyond its JSON schema, one checker per official action,
and the table of actions that every create goes through.

Types, enums and ranges are checked first, against ``openapi.yaml`` (see ``spec``); these are
the rules a schema cannot say: what the model catalogue allows, rules that tie fields together,
image contents, and references to earlier results (the video to extend or lip-sync). Every
refusal is the official 400 / 1201 naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Final, NamedTuple, Protocol
from urllib.parse import urlsplit

from . import catalogue
from .errors import KlingError, invalid_value
from .media import aspect_size, check_base64_file, check_image, fit, is_url, video_seconds
from .tasks import Task

CAMERA_AXES = ("horizontal", "vertical", "pan", "tilt", "roll", "zoom")
MAX_AUDIO_BYTES = 5 * 1024 * 1024
# Actions whose videos the official API lets a client extend.
EXTENDABLE = frozenset({"text2video", "image2video", "video-extend"})


class Plan(NamedTuple):
    """What a valid request asks for: the task's model, mode and duration ("" where the endpoint
    has none), the text the fail rules read, and endpoint details kept in ``Task.extra``."""

    model: str
    mode: str = ""
    duration: str = ""
    prompt: str = ""
    extra: dict[str, Any] | None = None


class Lookup(Protocol):
    """What a rules function may look up, always within the requesting account. An unknown id,
    an expired or deleted one and another account's all answer None alike, so a client cannot
    probe another account's ids."""

    def video(self, video_id: str) -> Task | None:
        """A finished result video (``task_result.videos[].id``) that may still be used as a
        source (within the official 30-day retention)."""
        ...

    def audio(self, audio_id: str) -> Task | None:
        """A finished result audio clip (``task_result.audios[].id``: speech, sound effects)
        that may still be used as a source."""
        ...

    def record(self, action: str, ident: str) -> Task | None:
        """A resource another endpoint made (a face session, a custom voice or element, a
        speech clip): the record ``Backend.add_record`` stored under ``action``."""
        ...


Check = Callable[[dict[str, Any], Lookup, "Rules"], Plan]


@dataclass(frozen=True, slots=True)
class Action:
    """One official task action: its checker and its operations in ``openapi.yaml``."""

    name: str
    # Operation ids are create{operation}, list{operation}Tasks and get{operation}Task.
    operation: str
    check: Check

    @property
    def endpoint(self) -> catalogue.Endpoint:
        return catalogue.ENDPOINTS[self.name]

    @property
    def create_op(self) -> str:
        return f"create{self.operation}"

    @property
    def list_op(self) -> str:
        return f"list{self.operation}Tasks"

    @property
    def get_op(self) -> str:
        return f"get{self.operation}Task"


# -- shared rules ------------------------------------------------------------------------------


def _model(action: str, value: Any) -> str:
    endpoint = catalogue.ENDPOINTS[action]
    model = value or endpoint.default_model
    if model not in endpoint.models:
        raise invalid_value(f"model_name: {str(model)[:64]} is not supported by {action}")
    return str(model)


def _require(action: str, model: str, feature: str, variant: str) -> None:
    if catalogue.allows(action, model, feature, variant):
        return
    endpoint = catalogue.ENDPOINTS[action]
    where = ""
    # Name the mode, duration or aspect ratio only when the model has the feature elsewhere.
    if feature in endpoint.models.get(model, {}):
        values = variant.split(":", 1) if len(endpoint.axes) > 1 else [variant]
        words = {"mode": "mode {}", "duration": "duration {}s", "aspect_ratio": "aspect_ratio {}"}
        where = " and ".join(
            words[axis].format(value) for axis, value in zip(endpoint.axes, values, strict=True) if value
        )
    raise invalid_value(
        f"{model} does not support {catalogue.FEATURE_NAMES[feature]}"
        f"{' with ' + where if where else ''} on {action}"
    )


def _parent_video(field: str, video_id: str, lookup: Lookup) -> Task:
    """The video a request refers to. Unknown, unfinished, expired and other accounts' videos
    are refused alike, so a client cannot probe another account's ids."""
    parent = lookup.video(video_id)
    if parent is None:
        raise invalid_value(f"{field}: video {video_id[:64]} does not exist or has expired")
    return parent


def check_voice(field: str, voice_id: Any, lookup: Lookup) -> str:
    """A voice_id from the official library or one of the account's custom voices; 400 / 1201
    naming the field otherwise (unknown, deleted and another account's alike). A number is read
    as its digits: the official examples send one."""
    ident = str(voice_id) if isinstance(voice_id, str | int) and not isinstance(voice_id, bool) else ""
    if ident and (ident in catalogue.PRESET_VOICE_IDS or lookup.record(catalogue.CUSTOM_VOICES, ident)):
        return ident
    raise invalid_value(f"{field}: voice {ident[:64] if ident else repr(voice_id)[:64]} does not exist")


def check_element(field: str, element_id: Any, lookup: Lookup) -> str:
    """An element_id from the official library or one of the account's custom elements, sent
    as an integer (legacy bodies) or a string of digits (the model-in-path design); 400 / 1201
    naming the field otherwise."""
    ident = str(element_id) if isinstance(element_id, str | int) and not isinstance(element_id, bool) else ""
    if ident and (ident in catalogue.PRESET_ELEMENT_IDS or lookup.record(catalogue.CUSTOM_ELEMENTS, ident)):
        return ident
    raise invalid_value(f"{field}: element {ident[:64] if ident else repr(element_id)[:64]} does not exist")


def _parent_extra(parent: Task) -> dict[str, Any]:
    return {"parent_video": {"task_id": parent.task_id, "duration": parent.duration}}


def _two_images(field: str, images: Any) -> None:
    if not isinstance(images, list) or len(images) != 2:
        raise invalid_value(f"{field} must hold exactly 2 images")
    for i, image in enumerate(images):
        check_image(f"{field}[{i}]", image)


# -- text2video and image2video ----------------------------------------------------------------


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
        model=_model(action, body.get("model_name")),
        mode=body.get("mode") or catalogue.DEFAULT_MODE,
        duration=body.get("duration") or catalogue.DEFAULT_DURATION,
    )
    _require_video(action, params, "generate", rules)
    if body.get("sound") == "on":
        _require_video(action, params, "sound", rules)
    if body.get("voice_list"):
        _require_video(action, params, "voice", rules)
    check_sound(params, body, rules)
    camera = body.get("camera_control")
    if camera is not None:
        _check_camera(action, params, camera, rules)
    if action == "image2video":
        _check_frames(action, params, body, rules, camera_used=camera is not None)
    return params


def _require_video(action: str, params: VideoParams, feature: str, rules: Rules) -> None:
    if not rules.capabilities:
        return
    _require(action, params.model, feature, f"{params.mode}:{params.duration}")


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
        _require_video(action, params, "camera_control_simple", rules)
    else:
        _require_video(action, params, "camera_control", rules)


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
        _require_video(action, params, "start_end_frame" if image else "end_frame", rules)
    brush = bool(body.get("static_mask") or body.get("dynamic_masks"))
    if brush:
        _require_video(action, params, "motion_brush", rules)
    if sum((bool(tail), brush, camera_used)) > 1:
        raise invalid_value(
            "image_tail, motion brush (static_mask/dynamic_masks) and camera_control cannot be used together"
        )


def _text2video(body: dict[str, Any], lookup: Lookup, rules: Rules) -> Plan:
    params = check_video_request("text2video", body, rules)
    return Plan(*params, prompt=body.get("prompt") or "", extra=sound_extra(body))


def _image2video(body: dict[str, Any], lookup: Lookup, rules: Rules) -> Plan:
    params = check_video_request("image2video", body, rules)
    check_voice_list(body, lookup)
    return Plan(*params, prompt=body.get("prompt") or "", extra=sound_extra(body))


# -- sound and voices on text2video and image2video (issue 16) ----------------------------------


def check_sound(params: VideoParams, body: dict[str, Any], rules: Rules) -> None:
    """What sound allows beyond the catalogue's model x mode limits (kling-v2-6 sound is pro
    only there): a voice speaks only with sound "on", and start and end frames are silent only
    on some models (the capability map: kling-v2-6 start and end frames, silent videos only)."""
    sound_on = body.get("sound") == "on"
    if body.get("voice_list") and not sound_on:
        raise invalid_value('voice_list: voices need sound "on"')
    if (
        rules.capabilities
        and sound_on
        and body.get("image")
        and body.get("image_tail")
        and params.model in catalogue.SILENT_START_END_FRAMES
    ):
        raise invalid_value(
            f"sound: {params.model} makes start and end frame videos (image + image_tail) without "
            'sound; send sound "off"'
        )


def check_voice_list(body: dict[str, Any], lookup: Lookup) -> None:
    """Each ``voice_list`` voice is an official one or one of the account's custom voices."""
    for i, item in enumerate(body.get("voice_list") or []):
        check_voice(f"voice_list[{i}].voice_id", item.get("voice_id"), lookup)


def sound_extra(body: dict[str, Any]) -> dict[str, Any] | None:
    """Kept on a video made with sound: custom voices may be cloned from it."""
    return {"sound": True} if body.get("sound") == "on" else None


# -- the other video actions -------------------------------------------------------------------


def _multi_image2video(body: dict[str, Any], lookup: Lookup, rules: Rules) -> Plan:
    action = "multi-image2video"
    model = _model(action, body.get("model_name"))
    mode = body.get("mode") or catalogue.DEFAULT_MODE
    duration = body.get("duration") or catalogue.DEFAULT_DURATION
    _require(action, model, "generate", f"{mode}:{duration}")
    for i, item in enumerate(body["image_list"]):
        check_image(f"image_list[{i}].image", item["image"])
    return Plan(model, mode, duration, prompt=body["prompt"])


def _video_extend(body: dict[str, Any], lookup: Lookup, rules: Rules) -> Plan:
    """The extension uses the model and mode of the video it extends, as the real service does;
    a ``model_name`` or ``mode`` in the body does not change them."""
    action = "video-extend"
    parent = _parent_video("video_id", body["video_id"], lookup)
    if parent.action not in EXTENDABLE:
        raise invalid_value(
            "video_id: only videos made by text2video, image2video or video-extend can be extended"
        )
    _require(action, parent.model, "generate", parent.mode)
    total = video_seconds(parent.duration) + catalogue.EXTEND_SECONDS
    if total > catalogue.MAX_VIDEO_SECONDS:
        raise invalid_value(
            f"video_id: an extended video may last at most {catalogue.MAX_VIDEO_SECONDS}s "
            f"(this one would last {total}s)"
        )
    return Plan(parent.model, parent.mode, str(total), body.get("prompt") or "", _parent_extra(parent))


def _lip_sync(body: dict[str, Any], lookup: Lookup, rules: Rules) -> Plan:
    source = body["input"]
    video_id, video_url = source.get("video_id"), source.get("video_url")
    extra: dict[str, Any] | None = None
    if video_id:
        parent = _parent_video("input.video_id", video_id, lookup)
        if video_seconds(parent.duration) > catalogue.LIP_SYNC_MAX_SECONDS:
            raise invalid_value(
                f"input.video_id: lip sync takes videos of at most {catalogue.LIP_SYNC_MAX_SECONDS}s "
                f"(this one lasts {parent.duration}s)"
            )
        duration, extra = parent.duration, _parent_extra(parent)
    elif video_url:
        if not is_url(video_url):
            raise invalid_value("input.video_url must be an http(s) URL")
        duration = catalogue.DEFAULT_DURATION  # the mock does not fetch the video to measure it
    else:
        raise invalid_value("input.video_id and input.video_url cannot both be empty")
    if source["mode"] == "text2video":
        for field in ("text", "voice_id"):
            if not source.get(field):
                raise invalid_value(f"input.{field} is required when input.mode is text2video")
    else:
        audio_type = source.get("audio_type")
        if not audio_type:
            raise invalid_value("input.audio_type is required when input.mode is audio2video")
        if audio_type == "file":
            if not source.get("audio_file"):
                raise invalid_value("input.audio_file is required when input.audio_type is file")
            check_base64_file("input.audio_file", source["audio_file"], MAX_AUDIO_BYTES, "an audio file")
        else:
            if not source.get("audio_url"):
                raise invalid_value("input.audio_url is required when input.audio_type is url")
            if not is_url(source["audio_url"]):
                raise invalid_value("input.audio_url must be an http(s) URL")
    return Plan("", "", duration, prompt=source.get("text") or "", extra=extra)


def _effects(body: dict[str, Any], lookup: Lookup, rules: Rules) -> Plan:
    action = "effects"
    scene, source = body["effect_scene"], body["input"]
    duration = source.get("duration")
    if scene in catalogue.TWO_PERSON_EFFECTS:
        _two_images("input.images", source.get("images"))
        if duration != "5":
            raise invalid_value(f'input.duration: {scene} lasts 5 seconds; send "5"')
        return Plan("", "", "5", prompt=scene)
    if scene in catalogue.SINGLE_IMAGE_EFFECTS:
        if not source.get("image"):
            raise invalid_value(f"input.image is required for {scene}")
        check_image("input.image", source["image"])
        if duration is None:
            raise invalid_value("input.duration is required")
        return Plan("", "", duration, prompt=scene)
    model_scenes = {feature for caps in catalogue.ENDPOINTS[action].models.values() for feature in caps}
    if scene not in model_scenes:
        raise invalid_value(f"effect_scene: {scene[:64]} is not a supported effect")
    model = _model(action, source.get("model_name"))
    mode = source.get("mode") or catalogue.DEFAULT_MODE
    duration = duration or catalogue.DEFAULT_DURATION
    _require(action, model, scene, f"{mode}:{duration}")
    _two_images("input.images", source.get("images"))
    return Plan(model, mode, duration, prompt=scene)


# -- image actions -----------------------------------------------------------------------------


def _image_generation(body: dict[str, Any], lookup: Lookup, rules: Rules) -> Plan:
    action = "image-generation"
    model = _model(action, body.get("model_name"))
    ratio = body.get("aspect_ratio") or "16:9"
    size = aspect_size(ratio)
    image, reference = body.get("image"), body.get("image_reference")
    two_k = body.get("resolution") == "2k"
    if image:
        dims = check_image("image", image)
        if body.get("negative_prompt"):
            raise invalid_value("negative_prompt is not supported with an image (image to image)")
        if two_k and not catalogue.allows(action, model, "2k_image2image", ratio):
            raise invalid_value("resolution: 2k is for text to image only; image to image is 1k")
        capabilities = catalogue.ENDPOINTS[action].models[model]
        if reference:
            feature = reference
        elif "image2image" in capabilities or "restyle" in capabilities:
            feature = "image2image" if "image2image" in capabilities else "restyle"
        elif "subject" in capabilities:
            raise invalid_value(f"image_reference is required when {model} is given an image")
        else:
            feature = "image2image"
        if feature == "restyle" and dims:
            size = fit(*dims)  # a restyled image keeps the input's shape
    else:
        if reference:
            raise invalid_value("image_reference needs an image")
        feature = "text2image"
        if two_k:
            _require(action, model, "2k", ratio)
    _require(action, model, feature, ratio)
    elements = body.get("element_list") or []
    if elements:
        _require(action, model, "element", ratio)
        _check_elements(elements, 1 if image else 0, lookup)
    # JSON Schema counts 2.0 as an integer; the count is stored as one (null: the default, 1).
    return Plan(model, prompt=body["prompt"], extra={"n": int(body.get("n") or 1), "size": size})


def _virtual_try_on(body: dict[str, Any], lookup: Lookup, rules: Rules) -> Plan:
    action = "virtual-try-on"
    model = _model(action, body.get("model_name"))
    _require(action, model, "generate", "")
    dims = check_image("human_image", body["human_image"])
    check_image("cloth_image", body["cloth_image"])
    return Plan(model, extra={"n": 1, "size": fit(*dims) if dims else fit(3, 4)})


def _image_expand(body: dict[str, Any], lookup: Lookup, rules: Rules) -> Plan:
    dims = check_image("image", body["image"]) or (1, 1)  # a URL is not fetched: assume a square
    up, down = body["up_expansion_ratio"], body["down_expansion_ratio"]
    left, right = body["left_expansion_ratio"], body["right_expansion_ratio"]
    wide, tall = 1 + left + right, 1 + up + down
    if wide * tall > 3 + 1e-9:
        raise invalid_value(
            f"expansion ratios: the new image would be {wide * tall:.2f} times the original's area; "
            "at most 3 times is allowed"
        )
    size = fit(max(1, round(dims[0] * wide * 100)), max(1, round(dims[1] * tall * 100)))
    return Plan("", prompt=body.get("prompt") or "", extra={"n": int(body.get("n", 1)), "size": size})


# -- the table ---------------------------------------------------------------------------------

ACTIONS: dict[str, Action] = {
    action.name: action
    for action in (
        Action("text2video", "Text2Video", _text2video),
        Action("image2video", "Image2Video", _image2video),
        Action("multi-image2video", "MultiImage2Video", _multi_image2video),
        Action("video-extend", "VideoExtend", _video_extend),
        Action("lip-sync", "LipSync", _lip_sync),
        Action("effects", "VideoEffects", _effects),
        Action("image-generation", "ImageGeneration", _image_generation),
        Action("virtual-try-on", "VirtualTryOn", _virtual_try_on),
        Action("image-expand", "ImageExpand", _image_expand),
    )
}


def action(name: str) -> Action:
    """The table entry for ``name``; 404 / 1202 for an action the mock does not serve."""
    try:
        return ACTIONS[name]
    except KeyError:
        raise KlingError(1202, f"No such action: {name[:64]}") from None


# -- images, audio and the general library (issue 16) --------------------------------------------

# References to the request's lists in an omni prompt: <<<image_1>>> is image_list's first item;
# <<<element_1>>> (or <<<object_1>>>, as the official example writes it) is element_list's first.
_REFERENCE: Final = re.compile(r"<<<(image|element|object)_([0-9]+)>>>")


def _check_elements(items: list[dict[str, Any]], images: int, lookup: Lookup) -> list[str]:
    """element_list's ids, each an official or the account's own element; with ``images``
    reference images, at most OMNI_MAX_REFERENCES in all."""
    if len(items) + images > catalogue.OMNI_MAX_REFERENCES:
        raise invalid_value(
            f"element_list: reference elements and images may number {catalogue.OMNI_MAX_REFERENCES} "
            f"in all (got {len(items)} elements and {images} images)"
        )
    return [
        check_element(f"element_list[{i}].element_id", item["element_id"], lookup)
        for i, item in enumerate(items)
    ]


def _check_references(prompt: str, images: int, elements: int) -> None:
    for kind, number in _REFERENCE.findall(prompt):
        count, listed = (images, "image_list") if kind == "image" else (elements, "element_list")
        if not 1 <= int(number) <= count:  # a prompt is at most 2500 characters: int() copes
            raise invalid_value(
                f"prompt: <<<{kind}_{number[:6]}>>> refers to item {number[:6]} of {listed}, "
                f"which has {count}"
            )


def _suffix_ok(field: str, url: str, suffixes: tuple[str, ...]) -> None:
    """A URL that names a file must name one of ``suffixes`` (one that names none is taken)."""
    try:
        suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
    except ValueError:  # "http://[", say: an http(s) URL that does not parse
        raise invalid_value(f"{field} is not a valid URL") from None
    if suffix and suffix not in suffixes:
        raise invalid_value(f"{field}: {suffix[:16]} files are not supported; use {', '.join(suffixes)}")


def _url(field: str, value: str, suffixes: tuple[str, ...]) -> str:
    if not is_url(value):
        raise invalid_value(f"{field} must be an http(s) URL")
    _suffix_ok(field, value, suffixes)
    return value


def _one_of(body: dict[str, Any], first: str, second: str) -> tuple[str, str]:
    """Exactly one of two fields (empty or null counts as absent), as the pages require."""
    a, b = body.get(first) or "", body.get(second) or ""
    if bool(a) == bool(b):
        raise invalid_value(f"{first} and {second}: give exactly one of them (not both, not neither)")
    return a, b


def _seconds_between(field: str, parent: Task, low: float, high: float) -> float:
    try:
        seconds = float(parent.duration)
    except ValueError:
        seconds = float(video_seconds(parent.duration))
    if not low <= seconds <= high:
        raise invalid_value(
            f"{field}: the video must last {low:g} to {high:g} seconds (this one lasts {seconds:g}s)"
        )
    return seconds


def _decimal_seconds(field: str, value: Any, low: float, high: float) -> float:
    """Seconds sent as a number or a numeric string, in [low, high], one decimal at most."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise invalid_value(f"{field} must be a number of seconds") from None
    if not low <= seconds <= high:  # NaN and infinities ("nan" is a float to Python) included
        raise invalid_value(f"{field}: {seconds:g} is outside {low:.1f} to {high:.1f} seconds")
    if abs(seconds * 10 - round(seconds * 10)) > 1e-6:
        raise invalid_value(f"{field}: at most one decimal place ({seconds:g})")
    return round(seconds, 1)


def _omni_image(body: dict[str, Any], lookup: Lookup, rules: Rules) -> Plan:
    action = "omni-image"
    model = _model(action, body.get("model_name"))
    images, elements = body.get("image_list") or [], body.get("element_list") or []
    dims = [check_image(f"image_list[{i}].image", item["image"]) for i, item in enumerate(images)]
    _check_elements(elements, len(images), lookup)
    _check_references(body["prompt"], len(images), len(elements))
    ratio = body.get("aspect_ratio") or "auto"
    referenced = bool(images or elements)
    _require(action, model, "image2image" if referenced else "text2image", ratio)
    resolution = body.get("resolution") or "1k"
    if resolution != "1k":
        _require(action, model, resolution, ratio)
    if body.get("result_type") == "series":
        _require(action, model, "series", ratio)
        if not referenced:
            raise invalid_value("result_type: series needs reference images (image_list or element_list)")
        amount = body.get("series_amount")
        count = catalogue.SERIES_AUTO_IMAGES if amount in (None, "auto") else int(amount)
    else:
        count = int(body.get("n") or 1)
    # auto: the shape of the first reference image the mock can see, else square.
    shape = next((d for d in dims if d), None)
    size = (fit(*shape) if shape else fit(1, 1)) if ratio == "auto" else aspect_size(ratio)
    return Plan(model, prompt=body["prompt"], extra={"n": count, "size": size})


def _multi_image2image(body: dict[str, Any], lookup: Lookup, rules: Rules) -> Plan:
    action = "multi-image2image"
    model = _model(action, body.get("model_name"))
    ratio = body.get("aspect_ratio") or "16:9"
    _require(action, model, "generate", ratio)
    for i, item in enumerate(body["subject_image_list"]):
        check_image(f"subject_image_list[{i}].subject_image", item["subject_image"])
    for field in ("scene_image", "style_image"):
        if body.get(field):
            check_image(field, body[field])
    size = aspect_size(ratio)
    return Plan(model, prompt=body.get("prompt") or "", extra={"n": int(body.get("n") or 1), "size": size})


def _text_to_audio(body: dict[str, Any], lookup: Lookup, rules: Rules) -> Plan:
    seconds = _decimal_seconds("duration", body["duration"], 3.0, 10.0)
    return Plan("", duration=f"{seconds:.1f}", prompt=body["prompt"], extra={"audio_seconds": seconds})


def _video_to_audio(body: dict[str, Any], lookup: Lookup, rules: Rules) -> Plan:
    video_id, video_url = _one_of(body, "video_id", "video_url")
    extra: dict[str, Any] = {}
    if video_id:
        parent = _parent_video("video_id", video_id, lookup)
        seconds = _seconds_between("video_id", parent, *catalogue.VIDEO_TO_AUDIO_SECONDS)
        duration = parent.duration
        extra.update(_parent_extra(parent))
    else:
        _url("video_url", video_url, catalogue.VIDEO_SUFFIXES)
        duration, seconds = catalogue.DEFAULT_DURATION, float(catalogue.DEFAULT_DURATION)  # not fetched
    prompts = (body.get("sound_effect_prompt"), body.get("bgm_prompt"))
    extra["audio_seconds"] = seconds
    return Plan("", duration=duration, prompt=" ".join(p for p in prompts if p), extra=extra)


def _custom_voice(body: dict[str, Any], lookup: Lookup, rules: Rules) -> Plan:
    voice_url, video_id = _one_of(body, "voice_url", "video_id")
    if video_id:
        parent = _parent_video("video_id", video_id, lookup)
        sounded = parent.model == catalogue.VOICE_SOURCE_MODEL and (parent.extra or {}).get("sound")
        if not (sounded or parent.action in catalogue.VOICE_SOURCE_ACTIONS):
            raise invalid_value(
                f"video_id: voices are cloned only from videos made by {catalogue.VOICE_SOURCE_MODEL} "
                'with sound "on", by the avatar API or by lip sync'
            )
        _seconds_between("video_id", parent, *catalogue.VOICE_SECONDS)
    else:
        _url("voice_url", voice_url, catalogue.VOICE_FILE_SUFFIXES)
    return Plan("", prompt=body["voice_name"], extra={"voice_name": body["voice_name"]})


def _ai_multi_shot(body: dict[str, Any], lookup: Lookup, rules: Rules) -> Plan:
    dims = check_image("element_frontal_image", body["element_frontal_image"])
    size = fit(*dims) if dims else fit(1, 1)
    return Plan("", extra={"n": catalogue.MULTI_SHOT_IMAGES, "size": size})


ACTIONS.update(
    {
        action.name: action
        for action in (
            Action("omni-image", "OmniImage", _omni_image),
            Action("multi-image2image", "MultiImage2Image", _multi_image2image),
            Action("text-to-audio", "TextToAudio", _text_to_audio),
            Action("video-to-audio", "VideoToAudio", _video_to_audio),
            Action(catalogue.CUSTOM_VOICES, "CustomVoice", _custom_voice),
            Action("ai-multi-shot", "AiMultiShot", _ai_multi_shot),
        )
    }
)
