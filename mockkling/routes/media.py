"""Result files: the URLs in ``task_result`` point here, so clients download from the mock.

Like the official CDN links, these URLs need no Authorization (the URL is the credential),
support HEAD and byte ranges (Starlette's FileResponse), and once a result is gone (the task is
unknown, unfinished, or ``media_ttl_seconds`` past its end) answer a bare 404 as a CDN does, not
the API's JSON envelope. Which file is served is decided by the task, never by the request path.
"""

from __future__ import annotations

from http import HTTPStatus

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from .. import catalogue, sessions
from ..backend import Backend
from ..errors import KlingError
from ..media import face_file, fit, image_file, segmentation_file, video_file
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
    ]
    out.extend(_session_routes(backend))
    return out


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
        return FileResponse(face_file(faces.index(request.path_params["face_id"])), media_type="image/png")

    async def selection(request: Request) -> Response:
        session = record(catalogue.SELECTION_SESSIONS, request.path_params["session_id"])
        name = request.path_params["name"]
        kind = sessions.SELECTION_FILES.get(name)
        extra = session.extra or {}
        if kind == "video":
            ratio, resolution = extra.get("aspect_ratio", "16:9"), extra.get("resolution", "720p")
            return FileResponse(
                video_file(extra.get("duration", "5"), ratio, resolution), media_type="video/mp4"
            )
        if kind == "image":
            width, height = fit(extra.get("width", 16), extra.get("height", 9))
            return FileResponse(image_file(width, height, 0), media_type="image/png")
        raise _gone()

    async def segmentation(request: Request) -> Response:
        found = record(catalogue.IMAGE_RECOGNITIONS, request.path_params["record_id"])
        kind = request.path_params["kind"]
        if kind not in catalogue.SEGMENTATION_TYPES:
            raise _gone()
        width, height = (found.extra or {}).get("size") or (1, 1)
        return FileResponse(segmentation_file(kind, width, height), media_type="image/png")

    return [
        Route("/media/faces/{session_id}/{face_id}.png", face, methods=["GET"]),
        Route("/media/selections/{session_id}/{name}", selection, methods=["GET"]),
        Route("/media/segmentations/{record_id}/{kind}.png", segmentation, methods=["GET"]),
    ]
