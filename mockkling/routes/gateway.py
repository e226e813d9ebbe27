"""The gateway surfaces of the seed document: the generic ``/v1/video/generations`` and the
``/kling/v1/videos/*`` passthrough, authenticated with ``sk-`` keys, on the same Backend.

A gateway sees only the tasks it created (its own task table): a task created on the official
surface is ``task_not_exist`` here, while a gateway task is an ordinary Kling task upstream, so
the official surface finds it. Both gateway surfaces read each other's tasks.
"""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .. import gateway
from ..backend import Backend
from ..errors import KlingError
from ..jsonio import JSONResponse, read_json_object
from ..tasks import Task
from ..views import generation_view, passthrough_created, task_view
from .official import envelope, result_base

PREFIXES: Final = ("/v1/video/", "/kling/")
# The seed's passthrough envelope says "success" where Kling says "SUCCEED".
SUCCESS_MESSAGE: Final = "success"
GENERIC_CREATE: Final = "createVideoGeneration"
# action -> create operation id in openapi.yaml
PASSTHROUGH_CREATE: Final = {
    "text2video": "createGatewayText2Video",
    "image2video": "createGatewayImage2Video",
}


def render_error(backend: Backend, error: KlingError) -> Response:
    status, body = gateway.error_status_and_body(error)
    return JSONResponse(body, status_code=status, headers=error.headers)


def routes(backend: Backend) -> list[BaseRoute]:
    spec = backend.spec

    def own_task(account: str, task_id: str) -> Task:
        """The account's gateway task with this id; task_not_exist for anything else."""
        task = backend.get_task(account, task_id)
        if task.task_id != task_id or gateway.details(task) is None:
            raise KlingError(1203, f"task {task_id[:64]} does not exist")
        return task

    async def submit(request: Request, operation: str) -> tuple[str, dict[str, Any]]:
        account = backend.authenticate_key(request.headers.get("authorization"))
        body = await read_json_object(request, backend.config.max_body_bytes)
        spec.validate_body(operation, body)
        return account, body

    def create(account: str, submission: gateway.Submission) -> Task:
        # A translated generic body meets the passthrough's schema by construction (its metadata
        # fields use the same schemas; tests/test_gateway.py holds that), so it is not re-checked.
        return backend.create_task(
            account, submission.action, submission.body, extra=submission.extra, rules=gateway.RULES
        )

    async def create_generation(request: Request) -> Response:
        account, body = await submit(request, GENERIC_CREATE)
        task = create(account, gateway.from_generic(body))
        return JSONResponse({"task_id": task.task_id})

    async def get_generation(request: Request) -> Response:
        account = backend.authenticate_key(request.headers.get("authorization"))
        task = own_task(account, request.path_params["task_id"])
        return JSONResponse(generation_view(task, backend.now_ms(), result_base(backend, request)))

    out: list[BaseRoute] = [
        Route("/v1/video/generations", create_generation, methods=["POST"]),
        Route("/v1/video/generations/{task_id}", get_generation, methods=["GET"]),
    ]

    for action, operation in PASSTHROUGH_CREATE.items():

        async def create_passthrough(
            request: Request, action: str = action, operation: str = operation
        ) -> Response:
            account, body = await submit(request, operation)
            task = create(account, gateway.from_passthrough(action, body))
            return envelope(backend.new_id(), passthrough_created(task), SUCCESS_MESSAGE)

        async def get_passthrough(request: Request) -> Response:
            account = backend.authenticate_key(request.headers.get("authorization"))
            task = own_task(account, request.path_params["task_id"])
            data = task_view(task, backend.now_ms(), result_base(backend, request))
            return envelope(backend.new_id(), data, SUCCESS_MESSAGE)

        out.append(Route(f"/kling/v1/videos/{action}", create_passthrough, methods=["POST"]))
        out.append(Route(f"/kling/v1/videos/{action}/{{task_id}}", get_passthrough, methods=["GET"]))
    return out
