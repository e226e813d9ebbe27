"""The voice and element libraries, and speech: the state logic of ``/v1/general/*`` and
``POST /v1/audio/tts``.

Everything lives in the backend's one task store, so namespaces, resets, state files and the
control API see it: a custom voice is a task of its own action (its voice_id is its task_id,
created through the task routes), a custom element a record (``Backend.add_record``), a speech
clip a task that has finished when it is created. Deleting marks the task or record
``deleted``: it is refused from then on wherever an id is taken, and no list shows it.

Each function here answers one synchronous endpoint, ``(backend, account, body or query,
base URL) -> data``, and is a row of ``routes.official.CALLS``.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from . import catalogue, validation, views
from .backend import Backend
from .errors import KlingError, invalid_value
from .media import check_image, mp3_seconds, seconds_text
from .tasks import Task

# Preset list items are task-shaped (presets-voices) and need times: the libraries' epoch.
PRESET_EPOCH_MS: Final = 1735689600000  # 2025-01-01T00:00:00Z
OWNED_BY_KLING: Final = "kling"
# The refusal the real service gives for a voice it cannot speak with (an unknown id, or a
# voice_language the voice does not speak), as clients have quoted it.
VOICE_NOT_FOUND: Final = "Voice id not found"


def _page(backend: Backend, operation: str, query: dict[str, Any]) -> slice:
    """The slice of a list that ``pageNum``/``pageSize`` ask for (checked as for task lists)."""
    page_num = backend.spec.query_int(operation, "pageNum", query.get("pageNum"))
    page_size = backend.spec.query_int(operation, "pageSize", query.get("pageSize"))
    start = (page_num - 1) * page_size
    return slice(start, start + page_size)


def _mark_deleted(backend: Backend, task: Task) -> dict[str, Any]:
    def mark(stored: Task) -> None:
        stored.extra = {**(stored.extra or {}), "deleted": True}

    backend.tasks.modify(task.task_id, mark)
    # The page shows a deletion as a task of its own, {task_id, task_status}, with no way to
    # query it: it is done when the answer comes.
    return {"task_id": backend.new_id(), "task_status": "succeed"}


# -- speech --------------------------------------------------------------------------------------


def speech(backend: Backend, account: str, body: dict[str, Any], base_url: str) -> dict[str, Any]:
    """``POST /v1/audio/tts``: the clip at once. Only the official voices speak (the English
    reference: "Text-to-speech currently only supports official voices"), each in its own
    languages; ``voice_speed`` outside 0.8 to 2.0 is brought into it, to one decimal."""
    text, voice_id = body["text"], str(body["voice_id"])
    language = body.get("voice_language") or "zh"
    voice = catalogue.PRESET_VOICES.get(voice_id)
    if voice is None or language not in voice.languages:
        raise KlingError(1201, VOICE_NOT_FOUND)
    low, high = catalogue.TTS_SPEEDS
    given = body.get("voice_speed")
    wanted = 1.0 if given is None else validation.number("voice_speed", given)
    speed = round(min(max(wanted, low), high), 1)
    seconds = round(max(1.0, len(text) / (catalogue.SPEECH_CHARS_PER_SECOND[language] * speed)), 1)
    extra = {"audio_seconds": seconds, "voice_id": voice_id, "voice_language": language, "voice_speed": speed}
    # The task lasts as long as its MP3 plays, so an avatar made from it lasts exactly as long.
    duration = seconds_text(mp3_seconds(seconds))
    task = backend.create_instant(account, catalogue.TTS, prompt=text, duration=duration, extra=extra)
    return views.speech_view(task, backend.now_ms(), base_url)


# -- voices --------------------------------------------------------------------------------------


def _preset_task_id(voice_id: str) -> str:
    """A stable task_id for an official voice's list item (18 digits, like Kling's)."""
    return str(10**17 + int(hashlib.sha256(voice_id.encode()).hexdigest()[:15], 16) % (9 * 10**17))


def preset_voices(
    backend: Backend, account: str, query: dict[str, Any], base_url: str
) -> list[dict[str, Any]]:
    """``GET /v1/general/presets-voices``: the official voices, as task-shaped items."""
    voices = list(catalogue.PRESET_VOICES.values())[_page(backend, "listPresetVoices", query)]
    return [
        {
            "task_id": _preset_task_id(voice.voice_id),
            "task_status": "succeed",
            "task_status_msg": "",
            "task_result": {
                "voices": [views.voice_item(voice.voice_id, voice.name, base_url, OWNED_BY_KLING)]
            },
            "created_at": PRESET_EPOCH_MS,
            "updated_at": PRESET_EPOCH_MS,
        }
        for voice in voices
    ]


def delete_voice(backend: Backend, account: str, body: dict[str, Any], base_url: str) -> dict[str, Any]:
    """``POST /v1/general/delete-voices``: only the account's own, finished custom voices."""
    voice_id = str(body["voice_id"])
    if voice_id in catalogue.PRESET_VOICE_IDS:
        raise invalid_value(f"voice_id: {voice_id} is an official voice; only custom voices can be deleted")
    task = backend.find_record(account, catalogue.CUSTOM_VOICES, voice_id)
    if task is None:
        raise invalid_value(f"voice_id: voice {voice_id[:64]} does not exist")
    return _mark_deleted(backend, task)


# -- elements ------------------------------------------------------------------------------------


def _tags(tag_ids: list[str]) -> list[dict[str, str]]:
    return [
        {"id": tag, "name": catalogue.ELEMENT_TAGS[tag][0], "description": catalogue.ELEMENT_TAGS[tag][1]}
        for tag in tag_ids
    ]


def element_view(
    element_id: str,
    name: str,
    description: str,
    images: list[Any],
    tags: list[str],
    owned_by: str,
    base_url: str,
) -> dict[str, Any]:
    """An element as the API shows it. ``images`` are the frontal image then the others, each
    the URL the client gave or, for an image sent as Base64, its size: the mock serves those."""
    urls = [
        image if isinstance(image, str) else views.element_image_url(base_url, element_id, index)
        for index, image in enumerate(images)
    ]
    return {
        "element_id": int(element_id),
        "element_name": name,
        "element_description": description,
        "element_frontal_image": urls[0],
        "element_refer_list": [{"image_url": url} for url in urls[1:]],
        "tag_list": _tags(tags),
        "owned_by": owned_by,
    }


def _custom_view(record: Task, base_url: str) -> dict[str, Any]:
    extra = record.extra or {}
    return element_view(
        record.task_id,
        extra["name"],
        extra["description"],
        extra["images"],
        extra["tags"],
        views.creator_id(record.account),
        base_url,
    )


def preset_image_size(element: catalogue.PresetElement) -> tuple[int, int]:
    """Official elements' images are portraits (3:4)."""
    return (240, 320)


def _preset_view(element: catalogue.PresetElement, base_url: str) -> dict[str, Any]:
    images: list[Any] = [list(preset_image_size(element))] * (1 + element.refer_images)
    view = element_view(
        element.element_id,
        element.name,
        element.description,
        images,
        list(element.tags),
        OWNED_BY_KLING,
        base_url,
    )
    return {**view, "final_unit_deduction": "0"}


def create_element(backend: Backend, account: str, body: dict[str, Any], base_url: str) -> dict[str, Any]:
    """``POST /v1/general/custom-elements``: the element, made at once (no task)."""
    given = [body["element_frontal_image"], *(item["image_url"] for item in body["element_refer_list"])]
    fields = ["element_frontal_image", *(f"element_refer_list[{i}].image_url" for i in range(len(given) - 1))]
    images: list[Any] = []
    for field, image in zip(fields, given, strict=True):
        size = check_image(field, image)
        images.append(image if size is None else list(size))
    tags = []
    for i, item in enumerate(body.get("tag_list") or []):
        tag = item["tag_id"]
        if tag not in catalogue.ELEMENT_TAGS:
            known = ", ".join(catalogue.ELEMENT_TAGS)
            raise invalid_value(f"tag_list[{i}].tag_id: unknown tag {str(tag)[:16]}; one of {known}")
        tags.append(tag)
    extra = {
        "name": body["element_name"],
        "description": body["element_description"],
        "images": images,
        "tags": tags,
    }
    record = backend.add_record(
        account, catalogue.CUSTOM_ELEMENTS, ident=backend.new_id(numeric=True), extra=extra
    )
    return _custom_view(record, base_url)


def custom_elements(
    backend: Backend, account: str, query: dict[str, Any], base_url: str
) -> list[dict[str, Any]]:
    """``GET /v1/general/custom-elements``: the account's elements, newest first."""
    page = _page(backend, "listCustomElements", query)
    records = backend.tasks.owned(account, catalogue.CUSTOM_ELEMENTS)
    live = [r for r in reversed(records) if backend.find_record(account, r.action, r.task_id) is not None]
    return [_custom_view(record, base_url) for record in live[page]]


def preset_elements(
    backend: Backend, account: str, query: dict[str, Any], base_url: str
) -> list[dict[str, Any]]:
    """``GET /v1/general/presets-elements``: the official elements."""
    elements = list(catalogue.PRESET_ELEMENTS.values())[_page(backend, "listPresetElements", query)]
    return [_preset_view(element, base_url) for element in elements]


def delete_element(backend: Backend, account: str, body: dict[str, Any], base_url: str) -> dict[str, Any]:
    """``POST /v1/general/delete-elements``: only the account's own elements."""
    element_id = str(body["element_id"])
    if element_id in catalogue.PRESET_ELEMENT_IDS:
        raise invalid_value(
            f"element_id: {element_id} is an official element; only custom elements can be deleted"
        )
    record = backend.find_record(account, catalogue.CUSTOM_ELEMENTS, element_id)
    if record is None:
        raise invalid_value(f"element_id: element {element_id[:64]} does not exist")
    return _mark_deleted(backend, record)
