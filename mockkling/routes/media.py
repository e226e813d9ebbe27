"""Result files: the URLs in ``task_result`` point here, so clients download from the mock."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from ..backend import Backend
from ..errors import KlingError
from ..media import video_file
from ..tasks import SUCCEED

PREFIXES = ("/media/",)


def routes(backend: Backend) -> list[BaseRoute]:
    async def video(request: Request) -> Response:
        # Like a CDN link, the URL itself is the credential: no Authorization needed.
        task = backend.tasks.get(request.path_params["task_id"])
        if task is None or backend.status(task) != SUCCEED:
            raise KlingError(1203, "no such video")
        return FileResponse(video_file(task.duration), media_type="video/mp4")

    return [Route("/media/videos/{task_id}.mp4", video, methods=["GET"])]
