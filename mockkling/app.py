"""The ASGI application: the surfaces' routes around one Backend, and error rendering.

Every refusal, from a bad token to an unknown path or a crash, leaves in the body format of
the surface the request was addressed to; no traceback ever reaches a client.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, NamedTuple

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Scope

from .backend import Backend
from .config import Config
from .errors import KlingError, crashed
from .request_layer import Answered, RequestLayer
from .routes import control, dashboard, gateway, media, model_api, official
from .routing import IndexedRouter, OnError


class Surface(NamedTuple):
    """An API surface's path prefixes and how it renders an error; ``claims``, when given, says
    which paths under the prefixes are its own (the others fall through to the next surface)."""

    prefixes: tuple[str, ...]
    render_error: Callable[[Backend, KlingError], Response]
    claims: Callable[[str], bool] | None = None

    @property
    def name(self) -> str:
        """Named for the route module that renders its errors: "official", "control", ..."""
        return self.render_error.__module__.rpartition(".")[2]


class _MockApp(Starlette):
    """Starlette with the request layer (journal, fault rules, rate limits) outside everything,
    so the layer sees each request first and each final answer last, and a router that finds a
    request's route by its path's start and answers its errors itself (routing.py): no
    exception middlewares between them."""

    def __init__(
        self,
        *,
        layer: Callable[[IndexedRouter], RequestLayer],
        on_error: OnError,
        render_path: Callable[[str, KlingError], Response],
        **kwargs: Any,
    ) -> None:
        self._layer = layer
        # How an error on a path is answered in its surface's envelope: also what the connection
        # layer answers a request that never finished arriving with (connections.py).
        self.render_path = render_path
        super().__init__(**kwargs)
        # On the API, repeated slashes count as one and a trailing slash is dropped; the mock's
        # own pages under /__mockkling/ keep their paths.
        self.router = IndexedRouter(
            self.router.routes,
            on_error=on_error,
            lifespan=kwargs.get("lifespan"),
            keep_paths=control.PREFIXES,
            check=_several_authorizations,
        )

    def build_middleware_stack(self) -> ASGIApp:
        assert isinstance(self.router, IndexedRouter)  # set in __init__
        return self._layer(self.router)

    def answer_at_once(self, scope: Scope, body: bytes) -> Answered | None:
        """The answer to a whole request when the request layer has it without the ASGI call
        (``RequestLayer.answer_at_once``), else None: call the app. For the in-process
        transports, which ask this first."""
        if self.middleware_stack is None:  # as Starlette's __call__ builds it
            self.middleware_stack = self.build_middleware_stack()
        layer = self.middleware_stack
        assert isinstance(layer, RequestLayer)
        scope["app"] = self  # as Starlette's __call__ sets it
        return layer.answer_at_once(scope, body)


def _several_authorizations(scope: Scope) -> KlingError | None:
    """A request with several ``Authorization`` headers is refused (400 / 1200), so the rate
    limit, the journal and the authenticator can never read different ones."""
    if sum(1 for name, _ in scope["headers"] if name == b"authorization") > 1:
        return KlingError(1200, "Send one Authorization header, not several")
    return None


def create_app(backend: Backend | None = None, *, config: Config | None = None) -> Starlette:
    """The mock as an ASGI app. Pass a Backend to share its state with a test."""
    owned = backend is None
    if backend is None:
        backend = Backend(config)
    # Most specific first; the official envelope is the default for any other path.
    surfaces: Sequence[Surface] = (
        Surface(control.PREFIXES, control.render_error),
        Surface(gateway.SURFACE_PREFIXES, gateway.render_error, gateway.claims(backend)),
        Surface(official.PREFIXES, official.render_error),
        Surface(model_api.PREFIXES, model_api.render_error, model_api.claims),
        Surface(media.PREFIXES, media.render_error),
    )

    def surface_of(path: str) -> Surface | None:
        for surface in surfaces:
            if path.startswith(surface.prefixes) and (surface.claims is None or surface.claims(path)):
                return surface
        return None

    def surface_name(path: str) -> str | None:
        surface = surface_of(path)
        return None if surface is None else surface.name

    def render_path(path: str, error: KlingError) -> Response:
        surface = surface_of(path)
        return (official.render_error if surface is None else surface.render_error)(backend, error)

    def render(request: Request, error: KlingError) -> Response:
        return render_path(request.url.path, error)

    async def on_kling_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, KlingError)
        return render(request, exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        where = f"{request.method} {request.url.path[:200]}"
        if exc.status_code == 404:
            unknown_model = model_api.not_found(request.method, request.url.path)
            error = unknown_model or KlingError(1202, f"No such endpoint: {where}")
        elif exc.status_code == 405:
            # The official table pairs 1202 ("invalid request method") with 404; the other
            # surfaces answer 405 as their own servers do. Allow still lists the methods.
            surface = surface_of(request.url.path)
            status = None if surface is None or surface.render_error is official.render_error else 405
            error = KlingError(1202, f"Method not allowed: {where}", http_status=status, headers=exc.headers)
        else:
            error = KlingError(1200, str(exc.detail), http_status=exc.status_code, headers=exc.headers)
        return render(request, error)

    async def on_crash(request: Request, exc: Exception) -> Response:
        return render(request, crashed(request.method, request.url.path))

    served: list[bytes] = []  # the document this server serves, made on first request

    async def openapi_document(request: Request) -> Response:
        if not served:
            served.append(gateway.served_document(backend))
        return Response(served[0], media_type="application/yaml")

    routes = [
        *official.routes(backend),
        *model_api.routes(backend),
        *gateway.routes(backend),
        *media.routes(backend),
        *control.routes(),
        *dashboard.routes(backend),
        Route("/openapi.yaml", openapi_document, methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # On a shared state, a replica that died may have left callbacks: look for them from now.
        backend.callbacks.start()
        yield
        # Runs after the server has let in-flight requests finish: a backend this app built is
        # closed, so a state file is left complete. A backend passed in belongs to its caller.
        if owned:
            backend.close()

    async def on_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, KlingError):
            return await on_kling_error(request, exc)
        if isinstance(exc, HTTPException):
            return await on_http_error(request, exc)
        return await on_crash(request, exc)

    app = _MockApp(
        layer=lambda router: RequestLayer(
            router,
            backend,
            left_alone=control.PREFIXES,
            surface_of=surface_name,
            render=render_path,
            shortcut=official.shortcut(backend),
        ),
        on_error=on_error,
        render_path=render_path,
        routes=routes,
        lifespan=lifespan,
    )
    app.state.backend = backend
    return app
