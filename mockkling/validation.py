"""The rules a request body must meet beyond its JSON schema, one checker per official action,
and the table of actions that every create goes through.

Types, enums and ranges are checked first, against ``openapi.yaml`` (see ``spec``); these are
the rules a schema cannot say: what the model catalogue allows, rules that tie fields together,
image contents, and references to earlier results (the video to extend or lip-sync). Every
refusal is the official 400 / 1201 naming the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, Protocol

from . import catalogue
from .errors import KlingError, invalid_value
from .media import (
    aspect_size,
    audio_seconds,
    check_base64_file,
    check_image,
    check_suffix,
    fit,
    is_url,
    task_id_of_media_url,
    video_id_for,
    video_seconds,
)
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


def external_id(field: str, value: Any) -> str | None:
    """A create's ``external_task_id``: None for none ("" is none: the official examples send it).
    One that could never be asked for again is refused: a "/" cannot sit in a query path's last
    segment, a "," splits a ``GET /tasks?external_task_ids=`` list, surrounding spaces are trimmed
    from that list."""
    if not value:
        return None
    text = str(value)
    if "/" in text or "," in text or text != text.strip():
        raise invalid_value(
            f"{field} must not hold '/' or ',' or start or end with a space: "
            "the task could never be queried by it"
        )
    return text


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
    """What a task made from another video keeps of it: its id and length for ``parent_video``,
    and its shape, which the new video keeps."""
    aspect_ratio, resolution = catalogue.video_shape(parent)
    return {
        "parent_video": {"task_id": parent.task_id, "duration": parent.duration},
        "aspect_ratio": aspect_ratio,
        "resolution": resolution,
    }


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
    # The result's aspect ratio: the body's, or the start frame's shape ("W:H") on image2video.
    aspect_ratio: str = "16:9"


class Rules(NamedTuple):
    """Which rules a surface applies beyond its schema. The official surface applies them all;
    a gateway forwards whatever its own schema accepts, so it skips the catalogue's limits."""

    # The catalogue's model x feature x mode x duration limits.
    capabilities: bool = True


OFFICIAL_RULES: Final = Rules()


def check_video_request(
    action: str, body: dict[str, Any], rules: Rules = OFFICIAL_RULES, lookup: Lookup | None = None
) -> VideoParams:
    """Check a schema-valid text2video/image2video body; return its model, mode, duration and
    the result's aspect ratio. ``lookup`` finds the voices and elements a body names."""
    params = VideoParams(
        model=_model(action, body.get("model_name")),
        mode=body.get("mode") or catalogue.DEFAULT_MODE,
        duration=body.get("duration") or catalogue.DEFAULT_DURATION,
    )
    _require_video(action, params, "generate", rules)
    _check_prompt_and_shots(action, params, body, rules)
    if body.get("sound") == "on":
        _require_video(action, params, "sound", rules)
    if body.get("voice_list"):
        _require_video(action, params, "voice", rules)
    check_sound(params, body, rules)
    check_voice_list(body, lookup)
    _check_voices_and_elements(action, params, body, lookup, rules)
    camera = body.get("camera_control")
    if camera is not None:
        _check_camera(action, params, camera, rules)
    if action == "image2video":
        frame = _check_frames(action, params, body, rules, camera_used=camera is not None)
        return params._replace(aspect_ratio=f"{frame[0]}:{frame[1]}" if frame else params.aspect_ratio)
    return params._replace(aspect_ratio=body.get("aspect_ratio") or params.aspect_ratio)


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
) -> tuple[int, int] | None:
    """Check the frames; return the start (else end) frame's size when it was sent as Base64."""
    image, tail = body.get("image"), body.get("image_tail")
    if not image and not tail:
        # The two messages the real service gives, by model generation.
        if params.model == "kling-v1":
            raise invalid_value("image can not be null")
        raise invalid_value("image and image_tail cannot both be empty")
    start = check_image("image", image) if image else None
    end = check_image("image_tail", tail) if tail else None
    if tail:
        _require_video(action, params, "start_end_frame" if image else "end_frame", rules)
    brush = bool(body.get("static_mask") or body.get("dynamic_masks"))
    if brush:
        _require_video(action, params, "motion_brush", rules)
        _check_masks(body, start)
    if sum((bool(tail), brush, camera_used)) > 1:
        raise invalid_value(
            "image_tail, motion brush (static_mask/dynamic_masks) and camera_control cannot be used together"
        )
    return start or end


def _check_masks(body: dict[str, Any], image: tuple[int, int] | None) -> None:
    """Motion-brush masks are images too, with the start frame's aspect ratio."""
    masks = [("static_mask", body["static_mask"])] if body.get("static_mask") else []
    masks += [(f"dynamic_masks[{i}].mask", m["mask"]) for i, m in enumerate(body.get("dynamic_masks") or [])]
    for field, mask in masks:
        size = check_image(field, mask)
        if size and image and abs(size[0] / size[1] - image[0] / image[1]) > 0.01:
            raise invalid_value(
                f"{field}: the mask is {size[0]}x{size[1]}; it must have the image's aspect ratio "
                f"({image[0]}x{image[1]})"
            )


def _video_plan(params: VideoParams, body: dict[str, Any]) -> Plan:
    return Plan(
        params.model,
        params.mode,
        params.duration,
        prompt=_prompt_text(body),
        extra={"aspect_ratio": params.aspect_ratio, **(sound_extra(body) or {})},
    )


def _text2video(body: dict[str, Any], lookup: Lookup, rules: Rules) -> Plan:
    return _video_plan(check_video_request("text2video", body, rules, lookup), body)


def _image2video(body: dict[str, Any], lookup: Lookup, rules: Rules) -> Plan:
    return _video_plan(check_video_request("image2video", body, rules, lookup), body)


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


def check_voice_list(body: dict[str, Any], lookup: Lookup | None) -> None:
    """Each ``voice_list`` voice is an official one or one of the account's custom voices."""
    if lookup is None:
        return
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
    if not (video_id or video_url):
        raise invalid_value("input.video_id and input.video_url cannot both be empty")
    field = "input.video_id" if video_id else "input.video_url"
    video = source_video(field, str(video_id or video_url), lookup, by_id=bool(video_id))
    if video.seconds > catalogue.LIP_SYNC_MAX_SECONDS:
        raise invalid_value(
            f"{field}: lip sync takes videos of at most {catalogue.LIP_SYNC_MAX_SECONDS}s "
            f"(this one lasts {video.duration}s)"
        )
    duration, extra = video.duration, video.extra()
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
            check_suffix("input.audio_url", source["audio_url"], LIP_SYNC_AUDIO_SUFFIXES)
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


# -- 2026 video endpoints: kling-v3, omni video, motion control, avatar, advanced lip sync and
# multi-element editing (docs/endpoints-video.md says what each checks and why) ----------------

# ``<<<image_1>>>``, ``<<<element_2>>>``, ``<<<video_1>>>``, ``<<<voice_1>>>`` in a prompt;
# ``<<<object_N>>>`` (as the official omni-image example writes it) names an element.
_REFERENCE: Final = re.compile(r"<<<(image|element|object|video|voice)_(\d+)>>>")
_REFERENCE_KINDS: Final = {"object": "element"}
MAX_SHOTS = 6
SHOT_PROMPT_CHARS = 512
MAX_V3_ELEMENTS = 3
# Seconds an audio clip may last, and the formats taken, per endpoint.
AVATAR_AUDIO_SECONDS = (2.0, 300.0)
LIP_SYNC_AUDIO_SECONDS = (2.0, 60.0)
AVATAR_AUDIO_FORMATS = frozenset({"mp3", "wav", "m4a", "aac"})
LIP_SYNC_AUDIO_FORMATS = frozenset({"mp3", "wav", "m4a"})
LIP_SYNC_AUDIO_SUFFIXES = (".mp3", ".wav", ".m4a", ".aac")  # the lip-sync page: mp3, wav, m4a, aac
OMNI_VIDEO_SECONDS = {"kling-video-o1": (3.0, 10.0), "kling-v3-omni": (3.0, 15.5)}
# Motion control: the reference video's length by character_orientation.
MOTION_VIDEO_SECONDS = {"image": (3.0, 10.0), "video": (3.0, 30.0)}
# Multi-element editing: the input video's length for each output duration.
EDIT_VIDEO_SECONDS = {"5": (2.0, 5.0), "10": (7.0, 10.0)}
EDIT_IMAGES = {"addition": (1, 2), "swap": (1, 1), "removal": (0, 0)}
MIN_LIP_SYNC_MS = 2000
# What a session keeps of its video for the tasks made from it.
_SOURCE_KEYS = ("parent_video", "aspect_ratio", "resolution")


def flag(value: Any) -> bool:
    """A boolean field as clients send it: ``true``, or the string "true" (the Kling 3.0 page's
    own image2video example sends ``"multi_shot": "true"``)."""
    return value is True or value == "true"


def tenths_text(seconds: float) -> str:
    """A video's length as ``duration`` strings show it: "5", "7.3" (to a tenth of a second, at
    least 1 s; audio clips show milliseconds: media.seconds_text)."""
    return f"{max(1.0, round(seconds, 1)):g}"


def _prompt_text(body: dict[str, Any]) -> str:
    """All the text a request asks for (its prompt and any shot prompts): what fail rules read."""
    shots = body.get("multi_prompt") if flag(body.get("multi_shot")) else None
    texts = [body.get("prompt") or ""]
    if isinstance(shots, list):
        texts += [str(shot.get("prompt") or "") for shot in shots if isinstance(shot, dict)]
    return "\n".join(text for text in texts if text)


def _texts(body: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, text) of every prompt in a body that may name references."""
    if body.get("prompt"):
        yield "prompt", str(body["prompt"])
    if flag(body.get("multi_shot")):
        for i, shot in enumerate(body.get("multi_prompt") or []):
            if isinstance(shot, dict) and shot.get("prompt"):
                yield f"multi_prompt[{i}].prompt", str(shot["prompt"])


def _check_references(body: dict[str, Any], counts: dict[str, int]) -> None:
    """Every ``<<<kind_N>>>`` a prompt names, for the kinds in ``counts``, is the Nth item of its
    list (``image_list``, ``element_list``, ``video_list``, ``voice_list``)."""
    for field, text in _texts(body):
        for match in _REFERENCE.finditer(text):
            kind = _REFERENCE_KINDS.get(match.group(1), match.group(1))
            number = int(match.group(2)[:6])  # a prompt is short, but a number need not be
            if kind in counts and not 1 <= number <= counts[kind]:
                given = counts[kind]
                raise invalid_value(
                    f"{field}: {match.group(0)} names {kind}_list item {number}, but "
                    f"{kind}_list has {given} item{'' if given == 1 else 's'}"
                )


def _whole_seconds(field: str, value: Any) -> int:
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if not (text.isascii() and text.isdigit()):
        raise invalid_value(f'{field} must be a whole number of seconds, such as "5"')
    return int(text)


def _check_prompt_and_shots(action: str, params: VideoParams, body: dict[str, Any], rules: Rules) -> None:
    """The prompt, and kling-v3's multi-shot fields (the official Kling 3.0 page): with
    ``multi_shot`` true, ``shot_type`` is required; ``customize`` takes 1 to 6 shots in
    ``multi_prompt`` whose durations (each 1 s to the total) add up to ``duration``, and then
    ``prompt`` may be empty; otherwise the prompt is required (text2video, and kling-v3)."""
    multi = flag(body.get("multi_shot")) and rules.capabilities
    if multi:
        _require_video(action, params, "multi_shot", rules)
        if body.get("image_tail"):  # the page: then "first/end frame generation is not supported"
            raise invalid_value("image_tail is not supported when multi_shot is true")
        shot_type = body.get("shot_type")
        if not shot_type:
            raise invalid_value("shot_type is required when multi_shot is true")
        if shot_type == "customize":
            _check_shots(body.get("multi_prompt"), _whole_seconds("duration", params.duration))
            return
    if not body.get("prompt") and (action == "text2video" or params.model == "kling-v3"):
        when = " (unless multi_shot is true and shot_type is customize)" if params.model == "kling-v3" else ""
        raise invalid_value(f"prompt is required{when}")


def _check_shots(shots: Any, total: int) -> None:
    if not shots:
        raise invalid_value("multi_prompt is required when multi_shot is true and shot_type is customize")
    if len(shots) > MAX_SHOTS:
        raise invalid_value(f"multi_prompt: at most {MAX_SHOTS} shots (got {len(shots)})")
    indexes: set[int] = set()
    added = 0
    for i, shot in enumerate(shots):
        field = f"multi_prompt[{i}]"
        prompt = shot.get("prompt") or ""
        if not prompt:
            raise invalid_value(f"{field}.prompt is required")
        if len(prompt) > SHOT_PROMPT_CHARS:
            raise invalid_value(f"{field}.prompt must be at most {SHOT_PROMPT_CHARS} characters")
        seconds = _whole_seconds(f"{field}.duration", shot.get("duration"))
        if not 1 <= seconds <= total:
            raise invalid_value(f"{field}.duration: {seconds}s; a shot lasts 1s to the video's {total}s")
        if shot["index"] in indexes:
            raise invalid_value(f"{field}.index: index {shot['index']} is used by an earlier shot")
        indexes.add(shot["index"])
        added += seconds
    if added != total:
        raise invalid_value(
            f"multi_prompt: the shots last {added}s in all; "
            f"their durations must add up to duration ({total}s)"
        )


def _check_voices_and_elements(
    action: str, params: VideoParams, body: dict[str, Any], lookup: Lookup | None, rules: Rules
) -> None:
    """kling-v3's ``element_list`` (image2video: at most 3, never with ``voice_list``) and
    ``voice_list`` (voices that exist, sound "on"), and the ``<<<element_N>>>`` and
    ``<<<voice_N>>>`` a prompt names."""
    if not rules.capabilities:
        return
    voices = body.get("voice_list") or []
    elements = (body.get("element_list") or []) if action == "image2video" else []
    if elements:
        _require_video(action, params, "element", rules)
    if params.model != "kling-v3":
        return
    if len(elements) > MAX_V3_ELEMENTS:
        raise invalid_value(f"element_list: at most {MAX_V3_ELEMENTS} elements (got {len(elements)})")
    if elements and voices:
        raise invalid_value("element_list and voice_list cannot be used together")
    if lookup is not None:
        for i, item in enumerate(elements):
            check_element(f"element_list[{i}].element_id", item.get("element_id"), lookup)
    counts = {"voice": len(voices)}
    if action == "image2video":
        counts["element"] = len(elements)
    _check_references(body, counts)


class SourceVideo(NamedTuple):
    """A video a request names: how long it lasts and its shape, and the mock's own task behind
    it when it is one (a ``video_id``, or a URL of one of the mock's result files)."""

    duration: str
    aspect_ratio: str
    resolution: str
    parent: Task | None = None

    @property
    def seconds(self) -> float:
        return _seconds(self.duration)

    def extra(self) -> dict[str, Any]:
        """What a task made from this video keeps of it (``_parent_extra``), or just its shape."""
        if self.parent is not None:
            return _parent_extra(self.parent)
        return {"aspect_ratio": self.aspect_ratio, "resolution": self.resolution}


def source_video(field: str, value: str, lookup: Lookup, *, by_id: bool) -> SourceVideo:
    """The video a ``video_id`` (one of the account's finished results) or a ``video_url`` names.
    A URL is never fetched: one of the mock's own result files is known; any other is taken to
    last ``catalogue.UNKNOWN_MEDIA_SECONDS`` at 16:9 720p."""
    if by_id:
        parent: Task | None = _parent_video(field, value, lookup)
    else:
        if not is_url(value):
            raise invalid_value(f"{field} must be an http(s) URL")
        check_suffix(field, value, catalogue.VIDEO_SUFFIXES)
        task_id = task_id_of_media_url(value)
        parent = lookup.video(video_id_for(task_id)) if task_id else None
    if parent is None:
        return SourceVideo(str(catalogue.UNKNOWN_MEDIA_SECONDS), "16:9", "720p")
    aspect_ratio, resolution = catalogue.video_shape(parent)
    return SourceVideo(parent.duration or catalogue.DEFAULT_DURATION, aspect_ratio, resolution, parent)


def _seconds(duration: str) -> float:
    """A task's duration string in seconds, tenths kept ("5.1"); whole seconds if unreadable."""
    try:
        return float(duration)
    except ValueError:
        return float(video_seconds(duration))


def _check_length(field: str, seconds: float, limits: tuple[float, float], what: str = "video") -> None:
    low, high = limits
    if not low <= seconds <= high:
        raise invalid_value(
            f"{field}: the {what} lasts {seconds:g}s; it must last {low:g} to {high:g} seconds"
        )


def audio_length(
    field: str, audio_id: Any, sound_file: Any, lookup: Lookup, formats: frozenset[str]
) -> float | None:
    """Seconds of the audio an ``audio_id`` (a clip the account made: TTS, sound effects) or a
    ``sound_file`` (Base64, read by mutagen; a URL, not fetched: None) gives. Exactly one of the
    two must be sent; ``field`` prefixes both names in refusals."""
    exactly_one(f"{field}audio_id", audio_id, f"{field}sound_file", sound_file)
    if audio_id:
        clip = lookup.audio(str(audio_id))
        if clip is None:
            raise invalid_value(f"{field}audio_id: audio {str(audio_id)[:64]} does not exist or has expired")
        try:
            return float(clip.duration)
        except ValueError:
            return None
    if is_url(sound_file):
        check_suffix(f"{field}sound_file", sound_file, tuple(f".{name}" for name in sorted(formats)))
        return None
    raw = check_base64_file(f"{field}sound_file", sound_file, MAX_AUDIO_BYTES, "an audio file")
    return audio_seconds(f"{field}sound_file", raw, formats)


def _omni_video(body: dict[str, Any], lookup: Lookup, rules: Rules) -> Plan:
    """Omni video (kling-video-o1, kling-v3-omni), per the official O1 page: reference images
    (``first_frame``/``end_frame`` or plain), library elements and one reference or base video,
    with their counts, durations, aspect ratios and prompt references."""
    action = "omni-video"
    model = _model(action, body.get("model_name"))
    mode = body.get("mode") or "pro"  # the page's default
    images, elements, videos = (
        body.get("image_list") or [],
        body.get("element_list") or [],
        body.get("video_list") or [],
    )
    with_video = bool(videos)
    frames = [image.get("type") for image in images]
    first, end = frames.count("first_frame"), frames.count("end_frame")
    dims = None
    for i, image in enumerate(images):
        size = check_image(f"image_list[{i}].image_url", image["image_url"])
        if image.get("type") == "first_frame":
            dims = size
    limit = catalogue.OMNI_VIDEO_MAX_REFERENCES[with_video]
    if len(images) > limit:
        raise invalid_value(
            f"image_list: at most {limit} images {'with' if with_video else 'without'} a video"
        )
    if len(images) + len(elements) > limit:
        raise invalid_value(
            f"image_list and element_list: at most {limit} images and elements in all "
            f"{'with' if with_video else 'without'} a video (got {len(images) + len(elements)})"
        )
    if first > 1 or end > 1:
        raise invalid_value("image_list: at most one first_frame and one end_frame")
    if end and not first:
        raise invalid_value("image_list: an end_frame needs a first_frame")
    if end and len(images) > 2:
        raise invalid_value("image_list: an end_frame is not supported with more than 2 images")
    for i, item in enumerate(elements):
        check_element(f"element_list[{i}].element_id", item.get("element_id"), lookup)
    source: SourceVideo | None = None
    editing = False
    if videos:
        video = videos[0]
        editing = video.get("refer_type") == "base"
        source = source_video("video_list[0].video_url", video["video_url"], lookup, by_id=False)
        _check_length("video_list[0].video_url", source.seconds, OMNI_VIDEO_SECONDS[model])
        if editing and first:
            raise invalid_value(
                "image_list: first and end frames cannot be used with a base video (refer_type base)"
            )
    if editing and source is not None:
        duration = source.duration  # an edited video keeps its length; a duration sent is ignored
    else:
        duration = body.get("duration") or catalogue.DEFAULT_DURATION
        # The page limits first-frame video to 5 or 10 s (and text to video, which its own example
        # contradicts with "7": the example wins, see docs/endpoints-video.md).
        if model == "kling-video-o1" and first and duration not in ("5", "10"):
            raise invalid_value(
                f"duration: {duration}s; video from a first frame lasts 5 or 10 seconds on {model}"
            )
        _require(action, model, "generate", f"{mode}:{duration}")
    if body.get("sound") == "on":
        _require(action, model, "sound", f"{mode}:{duration}")
        if with_video:
            raise invalid_value(
                'sound: "on" is not supported with a video_list (keep_original_sound keeps its sound)'
            )
    params = VideoParams(model, mode, duration)
    if flag(body.get("multi_shot")):
        _check_prompt_and_shots(action, params, body, rules)
    if not body.get("prompt") and not (flag(body.get("multi_shot")) and body.get("shot_type") == "customize"):
        raise invalid_value("prompt is required")
    _check_references(body, {"image": len(images), "element": len(elements), "video": len(videos)})
    aspect_ratio = body.get("aspect_ratio")
    if not aspect_ratio and not first and not with_video:
        raise invalid_value("aspect_ratio is required without a first_frame image or a video")
    extra: dict[str, Any] = source.extra() if source is not None else {}
    if dims is not None:
        extra["aspect_ratio"] = f"{dims[0]}:{dims[1]}"
    elif first == 0 and aspect_ratio and not editing:
        extra["aspect_ratio"] = aspect_ratio
    extra.pop("resolution", None)  # the model and mode decide the resolution
    extra.pop("parent_video", None)  # a reference, not a parent: the query shows no parent_video
    extra.setdefault("aspect_ratio", "16:9")
    return Plan(model, mode, duration, _prompt_text(body), extra)


def _motion_control(body: dict[str, Any], lookup: Lookup, rules: Rules) -> Plan:
    """Motion control: a character image moved like the person in a reference video, which
    lasts 3 to 10 s (``character_orientation`` image) or 3 to 30 s (video); the result lasts as
    long as the reference video."""
    action = "motion-control"
    model = _model(action, body.get("model_name"))
    mode = body["mode"]
    _require(action, model, "generate", mode)
    dims = check_image("image_url", body["image_url"])
    orientation = body["character_orientation"]
    source = source_video("video_url", body["video_url"], lookup, by_id=False)
    _check_length("video_url", source.seconds, MOTION_VIDEO_SECONDS[orientation])
    elements = body.get("element_list") or []
    if elements:
        _require(action, model, "element", mode)
        if len(elements) > 1:
            raise invalid_value(f"element_list: at most 1 element (got {len(elements)})")
        if orientation != "video":
            raise invalid_value('element_list: an element needs character_orientation "video"')
        check_element("element_list[0].element_id", elements[0].get("element_id"), lookup)
    ratio = f"{dims[0]}:{dims[1]}" if dims else source.aspect_ratio
    return Plan(model, mode, source.duration, body.get("prompt") or "", {"aspect_ratio": ratio})


def _avatar(body: dict[str, Any], lookup: Lookup, rules: Rules) -> Plan:
    """Avatar: a portrait that speaks an audio clip (``audio_id`` or ``sound_file``, 2 to 300 s);
    the video lasts as long as the audio (a URL, not fetched, counts as
    ``catalogue.UNKNOWN_MEDIA_SECONDS``)."""
    dims = check_image("image", body["image"])
    seconds = audio_length("", body.get("audio_id"), body.get("sound_file"), lookup, AVATAR_AUDIO_FORMATS)
    if seconds is not None:
        field = "audio_id" if body.get("audio_id") else "sound_file"
        _check_length(field, seconds, AVATAR_AUDIO_SECONDS, "audio")
    duration = tenths_text(seconds if seconds is not None else catalogue.UNKNOWN_MEDIA_SECONDS)
    ratio = f"{dims[0]}:{dims[1]}" if dims else "1:1"
    mode = body.get("mode") or catalogue.DEFAULT_MODE
    return Plan("", mode, duration, body.get("prompt") or "", {"aspect_ratio": ratio})


def _advanced_lip_sync(body: dict[str, Any], lookup: Lookup, rules: Rules) -> Plan:
    """Advanced lip sync on an identify-face session: each chosen face gets a crop of an audio
    clip inserted at a time, inside the video and overlapping the face's interval by 2 s."""
    session = lookup.record(catalogue.FACE_SESSIONS, body["session_id"])
    if session is None:
        raise invalid_value(f"session_id: session {body['session_id'][:64]} does not exist or has expired")
    extra = session.extra or {}
    faces = {face["face_id"]: face for face in extra["faces"]}
    video_ms = round(float(extra["duration"]) * 1000)
    chosen: set[str] = set()
    for i, choice in enumerate(body["face_choose"]):
        field = f"face_choose[{i}]."
        face = faces.get(choice["face_id"])
        if face is None:
            raise invalid_value(f"{field}face_id: face {choice['face_id'][:64]} is not in this session")
        if choice["face_id"] in chosen:
            raise invalid_value(f"{field}face_id: face {choice['face_id'][:64]} is chosen twice")
        chosen.add(choice["face_id"])
        seconds = audio_length(
            field, choice.get("audio_id"), choice.get("sound_file"), lookup, LIP_SYNC_AUDIO_FORMATS
        )
        if seconds is not None:
            what = "audio_id" if choice.get("audio_id") else "sound_file"
            _check_length(field + what, seconds, LIP_SYNC_AUDIO_SECONDS, "audio")
        start, end, insert = choice["sound_start_time"], choice["sound_end_time"], choice["sound_insert_time"]
        length = end - start
        if length < MIN_LIP_SYNC_MS:
            raise invalid_value(
                f"{field}sound_end_time: the audio cut lasts {length}ms; at least {MIN_LIP_SYNC_MS}ms"
            )
        if seconds is not None and end > round(seconds * 1000):
            raise invalid_value(
                f"{field}sound_end_time: {end}ms is past the audio's end ({round(seconds * 1000)}ms)"
            )
        if insert + length > video_ms:
            raise invalid_value(
                f"{field}sound_insert_time: the audio would end at {insert + length}ms, "
                f"past the video's end ({video_ms}ms)"
            )
        overlap = min(insert + length, face["end_time"]) - max(insert, face["start_time"])
        if overlap < MIN_LIP_SYNC_MS:
            raise invalid_value(
                f"{field}sound_insert_time: the audio overlaps the face's lip-sync interval "
                f"({face['start_time']}-{face['end_time']}ms) by {max(0, overlap)}ms; "
                f"at least {MIN_LIP_SYNC_MS}ms"
            )
    source: dict[str, Any] = {key: extra[key] for key in _SOURCE_KEYS if key in extra}
    return Plan("", "", extra["duration"], "", source)


def _multi_elements(body: dict[str, Any], lookup: Lookup, rules: Rules) -> Plan:
    """Multi-element editing of a selection session's video: add (1-2 images), swap (1 image)
    or remove elements; swap and removal act on the selections marked in the session. A 5 s
    result takes a 2-5 s video, a 10 s one a 7-10 s video."""
    action = "multi-elements"
    model = _model(action, body.get("model_name"))
    mode = body.get("mode") or catalogue.DEFAULT_MODE
    duration = body.get("duration") or catalogue.DEFAULT_DURATION
    edit_mode = body["edit_mode"]
    _require(action, model, edit_mode, f"{mode}:{duration}")
    session = lookup.record(catalogue.SELECTION_SESSIONS, body["session_id"])
    if session is None:
        raise invalid_value(f"session_id: session {body['session_id'][:64]} does not exist or has expired")
    extra = session.extra or {}
    images = body.get("image_list") or []
    low, high = EDIT_IMAGES[edit_mode]
    if not low <= len(images) <= high:
        wanted = "no image" if high == 0 else f"{low} image" if low == high else f"{low} to {high} images"
        raise invalid_value(f"image_list: edit_mode {edit_mode} takes {wanted} (got {len(images)})")
    for i, image in enumerate(images):
        check_image(f"image_list[{i}].image", image["image"])
    if edit_mode != "addition" and not extra.get("selections"):
        raise invalid_value(
            f"session_id: mark what to {'swap' if edit_mode == 'swap' else 'remove'} with add-selection first"
        )
    _check_length("session_id", float(extra["duration"]), EDIT_VIDEO_SECONDS[duration])
    _check_references(body, {"image": len(images), "video": 1})
    details: dict[str, Any] = {key: extra[key] for key in _SOURCE_KEYS if key in extra}
    details["session_id"] = session.task_id
    return Plan(model, mode, duration, body["prompt"], details)


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
        # 2026 video endpoints
        Action("omni-video", "OmniVideo", _omni_video),
        Action("motion-control", "MotionControl", _motion_control),
        Action("avatar", "AvatarImage2Video", _avatar),
        Action("advanced-lip-sync", "AdvancedLipSync", _advanced_lip_sync),
        Action("multi-elements", "MultiElements", _multi_elements),
    )
}


def action(name: str) -> Action:
    """The table entry for ``name``; 404 / 1202 for an action the mock does not serve."""
    try:
        return ACTIONS[name]
    except KeyError:
        raise KlingError(1202, f"No such action: {name[:64]}") from None


# -- images, audio and the general library (issue 16) --------------------------------------------


def _check_elements(items: list[dict[str, Any]], images: int, lookup: Lookup) -> list[str]:
    """element_list's ids, each an official or the account's own element; with ``images``
    reference images, at most OMNI_IMAGE_MAX_REFERENCES in all."""
    if len(items) + images > catalogue.OMNI_IMAGE_MAX_REFERENCES:
        raise invalid_value(
            f"element_list: reference elements and images may number {catalogue.OMNI_IMAGE_MAX_REFERENCES} "
            f"in all (got {len(items)} elements and {images} images)"
        )
    return [
        check_element(f"element_list[{i}].element_id", item["element_id"], lookup)
        for i, item in enumerate(items)
    ]


def _url(field: str, value: str, suffixes: tuple[str, ...]) -> str:
    if not is_url(value):
        raise invalid_value(f"{field} must be an http(s) URL")
    check_suffix(field, value, suffixes)
    return value


def exactly_one(first: str, a: Any, second: str, b: Any) -> None:
    """Exactly one of two fields given (empty or null counts as absent), as the pages require."""
    if bool(a) == bool(b):
        raise invalid_value(f"{first} and {second}: send exactly one of them (not both, not neither)")


def _one_of(body: dict[str, Any], first: str, second: str) -> tuple[str, str]:
    a, b = body.get(first) or "", body.get(second) or ""
    exactly_one(first, a, second, b)
    return a, b


_DECIMAL: Final = re.compile(r"-?([0-9]+(\.[0-9]*)?|\.[0-9]+)")


def number(field: str, value: Any) -> float:
    """A JSON number, or a string of decimal digits (openapi.yaml's NumericString): "1.5", not
    the "1_5", "Infinity" or " 1.5 " that Python's float() would also read."""
    if isinstance(value, str):
        if not _DECIMAL.fullmatch(value):
            raise invalid_value(f"{field} must be a number or a string of decimal digits")
        return float(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise invalid_value(f"{field} must be a number or a string of decimal digits")


def _decimal_seconds(field: str, value: Any, low: float, high: float) -> float:
    """Seconds sent as a number or a numeric string, in [low, high], one decimal at most."""
    seconds = number(field, value)
    if not low <= seconds <= high:
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
    _check_references(body, {"image": len(images), "element": len(elements)})
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
    if video_url:
        _url("video_url", video_url, catalogue.VIDEO_SUFFIXES)
    field = "video_id" if video_id else "video_url"
    video = source_video(field, str(video_id or video_url), lookup, by_id=bool(video_id))
    if video.parent is not None:
        _check_length(field, video.seconds, catalogue.VIDEO_TO_AUDIO_SECONDS)
    duration, seconds, extra = video.duration, video.seconds, video.extra()
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
        _check_length("video_id", _seconds(parent.duration), catalogue.VOICE_SECONDS)
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
