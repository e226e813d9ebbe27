"""Result files: the URLs in ``task_result`` point here, so clients download from the mock.

Like the official CDN links, these URLs need no Authorization (the URL is the credential),
support HEAD and byte ranges (Starlette's FileResponse), and once a result is gone (the task is
unknown, unfinished, or ``media_ttl_seconds`` past its end) answer a bare 404 as a CDN does, not
the API's JSON envelope. Which file is served is decided by the task, never by the request path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from .. import catalogue, library, sessions
from ..backend import Backend, is_deleted
from ..errors import KlingError
from ..media import face_file, fit, image_file, mp3_file, segmentation_file, video_file, wav_file
from ..tasks import SUCCEED, Task

PREFIXES = ("/media/",)


def render_error(backend: Backend, error: KlingError) -> Response:
    """A refusal on a result URL, as a CDN words it: the status line as plain text."""
    status = error.http_status
    text = f"{status} {HTTPStatus(status).phrase}"
    return PlainTextResponse(text, status_code=status, headers=error.headers)


def _gone() -> KlingError:
    return KlingError(1203, http_status=404)


class MediaFile(FileResponse):
    """A result file, as a CDN serves it. A ``Range`` in a unit other than bytes is ignored, as
    RFC 9110 says (Starlette would answer 400)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ranges = [value for name, value in scope["headers"] if name == b"range"]
        if ranges and not all(v.strip().lower().startswith(b"bytes=") for v in ranges):
            scope = {**scope, "headers": [(n, v) for n, v in scope["headers"] if n != b"range"]}
        await super().__call__(scope, receive, send)


def routes(backend: Backend) -> list[BaseRoute]:
    def finished(task_id: str, result: str) -> Task:
        task = backend.tasks.get(task_id)
        if task is None or backend.status(task) != SUCCEED or backend.media_expired(task):
            raise _gone()
        endpoint = catalogue.ENDPOINTS.get(task.action)
        if not (endpoint.makes(result) if endpoint is not None else result == catalogue.VIDEOS):
            raise _gone()
        return task

    async def video(request: Request) -> Response:
        task = finished(request.path_params["task_id"], catalogue.VIDEOS)
        return MediaFile(video_file(task.duration, *catalogue.video_shape(task)), media_type="video/mp4")

    async def image(request: Request) -> Response:
        task = finished(request.path_params["task_id"], catalogue.IMAGES)
        extra = task.extra or {}
        raw = request.path_params["index"]
        # An index is a few digits: longer ones are not ours (and int() refuses 4,300 digits).
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 4) or int(raw) >= extra.get("n", 1):
            raise _gone()
        width, height = extra.get("size") or fit(16, 9)
        return MediaFile(image_file(width, height, int(raw)), media_type="image/png")

    out: list[BaseRoute] = [
        Route("/media/videos/{task_id}.mp4", video, methods=["GET"]),
        Route("/media/images/{task_id}/{index}.png", image, methods=["GET"]),
        *_library_routes(backend, finished),
    ]
    out.extend(_session_routes(backend))
    return out


# -- images, audio and the general library (issue 16) --------------------------------------------

_AUDIO_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav"}


def _library_routes(backend: Backend, finished: Callable[[str, str], Task]) -> list[BaseRoute]:
    """Audio clips, voice trials and the images of elements the mock keeps itself."""

    def audio(extension: str) -> Callable[[Request], Awaitable[Response]]:
        async def clip(request: Request) -> Response:
            task = finished(request.path_params["task_id"], catalogue.AUDIOS)
            if request.path_params["index"] != "0":  # one clip a task
                raise _gone()
            seconds = float((task.extra or {}).get("audio_seconds", 5.0))
            path = mp3_file(seconds) if extension == "mp3" else wav_file(seconds)
            return MediaFile(path, media_type=_AUDIO_TYPES[extension])

        return clip

    async def voice_trial(request: Request) -> Response:
        voice_id = request.path_params["voice_id"]
        if voice_id not in catalogue.PRESET_VOICE_IDS:
            task = backend.tasks.get(voice_id)
            if task is None or task.action != catalogue.CUSTOM_VOICES or is_deleted(task):
                raise _gone()
            finished(voice_id, catalogue.VOICES)
        return MediaFile(mp3_file(catalogue.TRIAL_SECONDS), media_type="audio/mpeg")

    async def element_image(request: Request) -> Response:
        element_id, raw = request.path_params["element_id"], request.path_params["index"]
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 4):
            raise _gone()
        preset = catalogue.PRESET_ELEMENTS.get(element_id)
        if preset is not None:
            images: list[Any] = [list(library.preset_image_size(preset))] * (1 + preset.refer_images)
        else:
            record = backend.tasks.get(element_id)
            if record is None or record.action != catalogue.CUSTOM_ELEMENTS or is_deleted(record):
                raise _gone()
            images = (record.extra or {}).get("images", [])
        index = int(raw)
        # Images the client sent as URLs were never the mock's to serve.
        if index >= len(images) or isinstance(images[index], str):
            raise _gone()
        width, height = images[index]
        return MediaFile(image_file(width, height, index), media_type="image/png")

    return [
        Route("/media/audios/{task_id}/{index}.mp3", audio("mp3"), methods=["GET"]),
        Route("/media/audios/{task_id}/{index}.wav", audio("wav"), methods=["GET"]),
        Route("/media/voices/{voice_id}.mp3", voice_trial, methods=["GET"]),
        Route("/media/elements/{element_id}/{index}.png", element_image, methods=["GET"]),
    ]


# -- files of the 2026 video endpoints that answer at once (mockkling/sessions.py) --


def _session_routes(backend: Backend) -> list[BaseRoute]:
    def record(action: str, ident: str) -> Task:
        found = sessions.served_record(backend, action, ident)
        if found is None:
            raise _gone()
        return found

    async def face(request: Request) -> Response:
        session = record(catalogue.FACE_SESSIONS, request.path_params["session_id"])
        faces = [str(f["face_id"]) for f in (session.extra or {}).get("faces", [])]
        if request.path_params["face_id"] not in faces:
            raise _gone()
        return MediaFile(face_file(faces.index(request.path_params["face_id"])), media_type="image/png")

    async def selection(request: Request) -> Response:
        session = record(catalogue.SELECTION_SESSIONS, request.path_params["session_id"])
        name = request.path_params["name"]
        kind = sessions.SELECTION_FILES.get(name)
        extra = session.extra or {}
        if kind == "video":
            ratio, resolution = extra.get("aspect_ratio", "16:9"), extra.get("resolution", "720p")
            return MediaFile(
                video_file(extra.get("duration", "5"), ratio, resolution), media_type="video/mp4"
            )
        if kind == "image":
            width, height = fit(extra.get("width", 16), extra.get("height", 9))
            return MediaFile(image_file(width, height, 0), media_type="image/png")
        raise _gone()

    async def segmentation(request: Request) -> Response:
        found = record(catalogue.IMAGE_RECOGNITIONS, request.path_params["record_id"])
        kind = request.path_params["kind"]
        if kind not in catalogue.SEGMENTATION_TYPES:
            raise _gone()
        width, height = (found.extra or {}).get("size") or (1, 1)
        return MediaFile(segmentation_file(kind, width, height), media_type="image/png")

    return [
        Route("/media/faces/{session_id}/{face_id}.png", face, methods=["GET"]),
        Route("/media/selections/{session_id}/{name}", selection, methods=["GET"]),
        Route("/media/segmentations/{record_id}/{kind}.png", segmentation, methods=["GET"]),
    ]
