"""The model-in-path design's request rules: a create body (``prompt`` or ``contents``,
``settings``, ``options``) checked against its endpoint's page, and the /tasks queries.

Types and enums are checked first, against ``openapi.yaml``; these are the rules a schema
cannot say: which contents items go together and how many, settings that tie to items or to
each other, images, references to elements and voices, and the readings the official pages
leave open (:class:`Policy`, switchable). Every refusal is the official 400 / 1201 naming the
field. Pure functions of the body, the clock and what ``lookup`` finds in the account.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Final, NamedTuple
from urllib.parse import urlsplit

import orjson

from . import catalogue
from .catalogue import ModelRoute
from .errors import invalid_value
from .media import check_image, check_suffix, is_url
from .tasks import SPELLINGS, Task
from .validation import Lookup, Plan, check_element, check_voice, external_id, source_video

# Images of the model-in-path design: up to 50 MB (the legacy design: 10 MB).
MAX_IMAGE_BYTES: Final = 50 * 1024 * 1024
STATUSES: Final = SPELLINGS["model_api"]
# POST /tasks: the window a list covers when the body names none, and the page size.
DEFAULT_WINDOW_MS: Final = 30 * 24 * 3600 * 1000
DEFAULT_LIMIT: Final = 100
# The product types a /tasks list filters on (every model-in-path task is a video).
PRODUCT_TYPES: Final = ("video", "image", "try_on")


@dataclass(frozen=True, slots=True)
class Policy:
    """How the mock reads what the official pages leave open (docs/model-in-path-api.md,
    "Decisions"): config ``[model_api]``, ``--model-api KEY=VALUE``, the ``model_api`` option
    of the pytest marker. The first value of each choice is the default."""

    # settings.duration sent as a string ("5"): refused, as the pages type it int, or accepted.
    string_duration: str = "refuse"
    # An image as a data: URI ("data:image/png;base64,..."): accepted (the prefix is dropped).
    data_uri: str = "accept"
    # A settings key the model's page does not list (aspect_ratio on image-to-video, audio on
    # Turbo, multi_shot on O1): ignored, or refused naming it.
    unlisted_settings: str = "ignore"
    # POST /tasks with nothing to return: {count: 0, has_more: false}, as live answers were,
    # or with result: [] and next_cursor: "" too.
    empty_page: str = "omit"
    # Omni video with no first frame and no reference video: settings.aspect_ratio defaults to
    # 16:9 (the page's own example leaves it out), or is required (the page's wording).
    aspect_ratio: str = "default"

    def __post_init__(self) -> None:
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"model_api.{name} must be one of {', '.join(allowed)}, not {value!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        """A policy from a config table or a fixture option; ValueError names what is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError(f"model_api must be a table of settings, not {data!r}")
        unknown = sorted(set(data) - set(CHOICES))
        if unknown:
            raise ValueError(f"model_api: unknown settings {unknown}; known: {', '.join(CHOICES)}")
        return cls(**{str(k): v for k, v in data.items()})

    @classmethod
    def parse(cls, pairs: Sequence[str], base: Policy | None = None) -> Policy:
        """``base`` with ``KEY=VALUE`` pairs applied (the command line, the environment)."""
        values = (base or cls()).to_dict()
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep:
                raise ValueError(f"model_api: {pair!r} is not KEY=VALUE")
            values[key.strip()] = value.strip()
        return cls.from_dict(values)

    def to_dict(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


CHOICES: Final = {
    "string_duration": ("refuse", "accept"),
    "data_uri": ("accept", "refuse"),
    "unlisted_settings": ("ignore", "refuse"),
    "empty_page": ("omit", "empty"),
    "aspect_ratio": ("default", "require"),
}
DEFAULT_POLICY: Final = Policy()


class Options(NamedTuple):
    """A create body's ``options``, as the task keeps them ("" is the same as absent: the
    official examples send ``"external_task_id": ""``)."""

    callback_url: str | None
    external_task_id: str | None
    watermark: bool


# -- the create body ---------------------------------------------------------------------------


@dataclass
class _Contents:
    """What a ``contents`` array holds, once each item is checked."""

    prompt: str = ""
    counts: Counter[str] | None = None
    # (width, height) of the first frame, else the motion image, sent as Base64 (None: a URL).
    frame_size: tuple[int, int] | None = None
    # Elements named; each is a multi-image element (the mock makes elements from images only).
    elements: int = 0
    video: tuple[str, str] | None = None  # the first video item: (field, url)

    def count(self, kind: str) -> int:
        return (self.counts or Counter())[kind]


def check(route: ModelRoute, body: dict[str, Any], lookup: Lookup, policy: Policy = DEFAULT_POLICY) -> Plan:
    """Check a schema-valid create body against ``route``'s page; the task's plan: model,
    mode (the resolution), duration, prompt, and in ``extra`` the result's shape and what
    bills it."""
    settings: dict[str, Any] = body.get("settings") or {}
    unlisted = sorted(set(settings) - route.settings_fields())
    if unlisted and policy.unlisted_settings == "refuse":
        raise invalid_value(f"settings.{unlisted[0][:64]} is not a setting of {route.action}")
    resolution = settings.get("resolution") or route.default_resolution
    audio = (settings.get("audio") or route.default_audio) if route.audio is not None else ""
    duration = _duration(route, settings, policy)
    if route.takes_contents:
        contents = _contents(route, body["contents"], lookup, policy)
    else:
        contents = _Contents(prompt=body["prompt"], counts=Counter())
    if route.character_orientation and not settings.get("character_orientation"):
        raise invalid_value(f"settings.character_orientation is required by {route.action}")
    if audio == "native" and route.model == "kling-2.6" and resolution != "1080p":
        raise invalid_value("settings.resolution: kling-2.6 makes native audio at 1080p only")
    ratio = settings.get("aspect_ratio") if route.aspect_ratios is not None else None
    kind = catalogue.WITH_AUDIO if audio == "native" else catalogue.SILENT
    if route.operation == catalogue.IMAGE_TO_VIDEO:
        _image_to_video(route, contents, resolution, audio)
    elif route.operation == catalogue.OMNI_VIDEO:
        duration = _omni(route, contents, settings, duration, audio, policy)
        if contents.count("feature_video") + contents.count("base_video"):
            kind = catalogue.WITH_VIDEO
    motion = route.operation == catalogue.MOTION_CONTROL
    length = _motion(contents, lookup) if motion else str(duration)
    frame = contents.frame_size
    shape = ratio or (f"{frame[0]}:{frame[1]}" if frame else "16:9")
    extra = {"aspect_ratio": shape, "resolution": resolution, "billing_kind": kind}
    if audio:
        extra["audio"] = audio
    return Plan(route.model, resolution, length, contents.prompt, extra)


def options(body: Mapping[str, Any]) -> Options:
    """The body's ``options``; 400 / 1201 for a callback_url that is not an http(s) URL."""
    given: Mapping[str, Any] = body.get("options") or {}
    callback = given.get("callback_url") or None
    if callback is not None:
        parts = urlsplit(callback)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise invalid_value("options.callback_url must be an http or https URL")
    watermark = given.get("watermark_info") or {}
    external = external_id("options.external_task_id", given.get("external_task_id"))
    return Options(callback, external, bool(watermark.get("enabled")))


def _duration(route: ModelRoute, settings: Mapping[str, Any], policy: Policy) -> int:
    raw = settings.get("duration")
    if raw is None or route.durations is None:  # none given, or a field the page lacks (ignored)
        return route.default_duration
    if isinstance(raw, str):
        if policy.string_duration == "refuse":
            raise invalid_value(
                f"settings.duration must be an integer number of seconds, not the string {raw!r}"
            )
        raw = int(raw)  # the schema admits digit strings only
    seconds = int(raw)  # JSON Schema takes 5.0 for an integer
    if seconds not in route.durations:
        allowed = ", ".join(map(str, route.durations))
        raise invalid_value(f"settings.duration must be one of {allowed} on {route.action}")
    return seconds


def _contents(route: ModelRoute, items: list[dict[str, Any]], lookup: Lookup, policy: Policy) -> _Contents:
    found = _Contents(counts=Counter())
    assert found.counts is not None
    ids: set[str] = set()
    for i, item in enumerate(items):
        where, kind = f"contents[{i}]", item["type"]
        limit = route.items.get(kind, 0)
        if kind not in route.items:
            raise invalid_value(f"{where}.type: {str(kind)[:32]} is not taken by {route.action}")
        found.counts[kind] += 1
        if limit is not None and found.counts[kind] > limit:
            raise invalid_value(f"contents: {route.action} takes at most {limit} {kind} item(s)")
        ident = item.get("id")
        if kind in ("element", "voice") and not ident:
            raise invalid_value(f"{where}.id is required for a {kind} item (the name the prompt uses)")
        if ident:
            if ident in ids:
                raise invalid_value(f"{where}.id: {ident[:64]} is already used by another item")
            ids.add(ident)
        if kind == "prompt":
            text = item.get("text")
            if not text:
                raise invalid_value(f"{where}.text is required for a prompt item")
            found.prompt = text
        elif kind in catalogue.IMAGE_ITEMS:
            size = _image(f"{where}.url", item.get("url"), policy)
            if kind in ("first_frame", "image") and found.frame_size is None:
                found.frame_size = size
        elif kind in catalogue.VIDEO_ITEMS:
            url = item.get("url")
            if not url:
                raise invalid_value(f"{where}.url is required for a {kind} item")
            if not is_url(url):
                raise invalid_value(f"{where}.url must be an http(s) URL: videos are taken by URL only")
            check_suffix(f"{where}.url", url, catalogue.VIDEO_SUFFIXES)
            found.video = found.video or (f"{where}.url", url)
        elif kind == "element":
            if not item.get("element_id"):
                raise invalid_value(f"{where}.element_id is required for an element item")
            check_element(f"{where}.element_id", item["element_id"], lookup)
            found.elements += 1
        elif kind == "voice":
            if not item.get("voice_id"):
                raise invalid_value(f"{where}.voice_id is required for a voice item")
            check_voice(f"{where}.voice_id", item["voice_id"], lookup)
    return found


def _image(field: str, value: Any, policy: Policy) -> tuple[int, int] | None:
    """An image item's url: a URL (not fetched), raw Base64, or a data: URI when the policy
    takes one; (width, height) when the picture was sent."""
    if not value:
        raise invalid_value(f"{field} is required: an image URL or its Base64")
    if value[:5].lower() == "data:":
        if policy.data_uri == "refuse":
            raise invalid_value(f"{field}: send a URL or raw Base64, without the 'data:' prefix")
        header, comma, payload = value.partition(",")
        if not comma or not header.lower().endswith(";base64"):
            raise invalid_value(f"{field}: a data: URI must be data:<type>;base64,<Base64>")
        value = payload
    return check_image(field, value, max_bytes=MAX_IMAGE_BYTES)


def _frames(contents: _Contents) -> None:
    if contents.count("last_frame") and not contents.count("first_frame"):
        raise invalid_value("contents: a last_frame needs a first_frame (last frame alone is not supported)")


def _image_to_video(route: ModelRoute, contents: _Contents, resolution: str, audio: str) -> None:
    if not contents.count("first_frame"):
        _frames(contents)
        raise invalid_value(f"contents: a first_frame item is required by {route.action}")
    if (
        contents.count("last_frame")
        and route.model in ("kling-2.6", "kling-2.5-turbo")
        and resolution != "1080p"
    ):
        raise invalid_value(f"settings.resolution: {route.model} takes first and last frames at 1080p only")
    if contents.count("voice") and audio == "off":
        raise invalid_value("settings.audio must not be off when contents has a voice item")


def _motion(contents: _Contents, lookup: Lookup) -> str:
    """The motion-control rules; the video lasts as long as its motion reference."""
    if contents.video is None or not contents.count("video"):
        raise invalid_value("contents: a video item (the motion reference, by URL) is required")
    if not contents.count("image") and not contents.count("element"):
        raise invalid_value("contents: an image item (the appearance reference) or an element is required")
    return source_video(*contents.video, lookup, by_id=False).duration


def _omni(
    route: ModelRoute,
    contents: _Contents,
    settings: Mapping[str, Any],
    duration: int,
    audio: str,
    policy: Policy,
) -> int:
    """The omni-video page's rules on which items go together; the duration, which is 5 or 10
    for an O1 video made from a first frame alone."""
    if not contents.prompt:
        raise invalid_value("contents: a prompt item is required by omni-video")
    _frames(contents)
    first, last = contents.count("first_frame"), contents.count("last_frame")
    refers = contents.count("refer_image")
    feature, base = contents.count("feature_video"), contents.count("base_video")
    elements = contents.elements
    videos = feature + base
    multi_shot = settings.get("multi_shot")
    o1 = route.model == "kling-o1"
    if videos > 1:
        raise invalid_value("contents: at most one reference video (feature_video or base_video)")
    if base:
        if first or last:
            raise invalid_value("contents: a base_video (the video to edit) takes no first or last frame")
        if multi_shot is True:
            raise invalid_value("settings.multi_shot must be false with a base_video")
        if audio == "native":
            raise invalid_value("settings.audio must not be native with a base_video")
    if feature:
        if o1 and last:
            raise invalid_value(
                "contents: kling-o1 takes a first frame with a feature_video, not a last frame"
            )
        if multi_shot is False and not o1:
            raise invalid_value("settings.multi_shot must be true with a feature_video")
        if audio != "off":
            raise invalid_value("settings.audio must be off with a feature_video")
    limit = catalogue.OMNI_VIDEO_MAX_REFERENCES[bool(videos)]
    if refers + elements > limit:
        raise invalid_value(f"contents: refer_image items and elements may number {limit} at most here")
    if o1:
        if first and last and (refers or elements):
            raise invalid_value(
                "contents: kling-o1 takes no refer_image and no element with first and last frames"
            )
        if first and not refers and not videos and duration not in (5, 10):
            raise invalid_value("settings.duration must be 5 or 10 for kling-o1 from a first frame alone")
    elif first and elements > catalogue.OMNI_FIRST_FRAME_MAX_ELEMENTS:
        raise invalid_value(
            f"contents: at most {catalogue.OMNI_FIRST_FRAME_MAX_ELEMENTS} elements with a first frame"
        )
    if policy.aspect_ratio == "require" and not first and not videos and not settings.get("aspect_ratio"):
        raise invalid_value("settings.aspect_ratio is required without a first frame or a reference video")
    return duration


# -- GET /tasks ------------------------------------------------------------------------------


def task_ids(query: Mapping[str, str]) -> tuple[list[str], bool]:
    """The ids a ``GET /tasks`` asks for, in order and without repeats, and whether they are
    external ids; 400 / 1201 with neither parameter (or both)."""
    given = {name: query.get(name, "") for name in ("task_ids", "external_task_ids")}
    present = [name for name, value in given.items() if value.strip(" ,")]
    if not present:
        raise invalid_value("task_ids or external_task_ids is required")
    if len(present) > 1:
        raise invalid_value("task_ids and external_task_ids cannot be used together: give one of them")
    name = present[0]
    ids = [part.strip() for part in given[name].split(",") if part.strip()]
    return list(dict.fromkeys(ids)), name == "external_task_ids"


# -- POST /tasks ------------------------------------------------------------------------------


class ListQuery(NamedTuple):
    """A ``POST /tasks`` page: tasks created in [start_ms, end_ms], newest first, after a
    position (a cursor's), at most ``limit``, filtered."""

    start_ms: int
    end_ms: int
    after: tuple[int, str] | None
    limit: int
    statuses: frozenset[str] | None
    products: frozenset[str] | None


def list_query(body: Mapping[str, Any], now_ms: int) -> ListQuery:
    """A schema-valid ``POST /tasks`` body as a query. A cursor carries the window of the
    query that gave it, so the times in the body are then ignored, as the page says."""
    cursor = body.get("cursor") or ""
    if cursor:
        start, end, after = _read_cursor(cursor)
    else:
        end = _millis("end_time", body.get("end_time"), now_ms)
        start = _millis("start_time", body.get("start_time"), end - DEFAULT_WINDOW_MS)
        if start >= end:
            raise invalid_value("start_time must be earlier than end_time")
        after = None
    wanted: dict[str, set[str]] = {}
    for i, entry in enumerate(body.get("filters") or []):
        key, values = entry.get("key"), entry.get("values") or []
        if not values:  # a filter with no values narrows nothing
            continue
        known = STATUSES.values() if key == "status" else PRODUCT_TYPES
        unknown = [v for v in values if v not in known]
        if unknown:
            raise invalid_value(
                f"filters[{i}].values: {str(unknown[0])[:32]} is not a {key}; use {', '.join(known)}"
            )
        # Several filters on one key narrow the list together; values within one are alternatives.
        chosen = set(values)
        wanted[key] = wanted[key] & chosen if key in wanted else chosen
    statuses, products = wanted.get("status"), wanted.get("product_type")
    return ListQuery(
        start,
        end,
        after,
        int(body.get("limit") or DEFAULT_LIMIT),
        None if statuses is None else frozenset(statuses),
        None if products is None else frozenset(products),
    )


def page(tasks: Sequence[Task], query: ListQuery, now_ms: int) -> tuple[list[Task], str]:
    """One page of ``tasks`` (an account's new-design tasks, any order) and the cursor of the
    next page ("" when this is the last). Newest first, by creation time and then id, so the
    order is total and a cursor stays valid while new tasks arrive."""
    chosen = [
        task
        for task in tasks
        if query.start_ms <= task.created_ms <= query.end_ms
        and (query.after is None or (task.created_ms, task.task_id) < query.after)
        and (query.statuses is None or STATUSES[task.status(now_ms)] in query.statuses)
        and (query.products is None or catalogue.MODEL_API_PRODUCT in query.products)
    ]
    chosen.sort(key=lambda task: (task.created_ms, task.task_id), reverse=True)
    shown = chosen[: query.limit]
    if len(chosen) <= query.limit:
        return shown, ""
    last = shown[-1]
    return shown, _cursor(query.start_ms, query.end_ms, last.created_ms, last.task_id)


def _millis(name: str, value: Any, default: int) -> int:
    """A time in ms, sent as an integer or a string of digits (the pages show both)."""
    if value is None or value == "":
        return default
    return int(value)  # the schema admits integers and digit strings only


def _cursor(start_ms: int, end_ms: int, created_ms: int, task_id: str) -> str:
    raw = orjson.dumps([start_ms, end_ms, created_ms, task_id])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _read_cursor(cursor: str) -> tuple[int, int, tuple[int, str]]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        start, end, created, task_id = orjson.loads(raw)
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise invalid_value("cursor is not a next_cursor this server gave") from None
    if not all(
        isinstance(n, int) and not isinstance(n, bool) for n in (start, end, created)
    ) or not isinstance(task_id, str):
        raise invalid_value("cursor is not a next_cursor this server gave")
    return start, end, (created, task_id)
