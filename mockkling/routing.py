"""Finding a request's route and answering it, errors included, in one place.

Starlette's router tries every route in turn, which for the later ones cost more than all the
rest of a request; this one tries only the routes whose literal start of path can be the
request's, in the same order, with Starlette's own matching, so what matches, partial matches
(405) and precedence are unchanged. It also calls a route's endpoint itself and answers what it
raises with the app's error handlers, where Starlette passes each answer through three wrappers
(two exception middlewares and the route's own): what that saves is in docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from starlette._utils import is_async_callable
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import Message, Receive, Scope, Send

# Literal path segments a route is indexed by, at most.
DEPTH: Final = 3
Key = tuple[str, ...]
# Answers what a request raised: the app's error handlers, by exception type.
OnError = Callable[[Request, Exception], Awaitable[Response]]


def literal_start(route: BaseRoute) -> Key:
    """The segments of a route's path before its first parameter (at most DEPTH); () for a
    route that is not a plain Route, which is then tried for every request."""
    if not isinstance(route, Route):
        return ()
    segments = route.path.split("/")[1:]
    key: list[str] = []
    for segment in segments[:DEPTH]:
        if "{" in segment:
            break
        key.append(segment)
    return tuple(key)


def _function(route: BaseRoute) -> Callable[[Request], Awaitable[Response]] | None:
    """The async function a Route calls with a Request, or None (a class endpoint, an ASGI app,
    a sync function: served through the route, as Starlette does)."""
    if isinstance(route, Route) and route.app is not route.endpoint and is_async_callable(route.endpoint):
        endpoint: Callable[[Request], Awaitable[Response]] = route.endpoint
        return endpoint
    return None


class IndexedRouter(Router):
    """Starlette's Router, trying a request's candidate routes only and answering errors with
    ``on_error`` (see the module's docstring)."""

    _index: dict[Key, list[tuple[int, BaseRoute, Any]]]
    _indexed: int = -1

    def __init__(self, routes: Sequence[BaseRoute], *, on_error: OnError, lifespan: Any = None) -> None:
        # The app tidies paths (app._Tidy): no trailing-slash redirects.
        super().__init__(list(routes), lifespan=lifespan, redirect_slashes=False)
        self.on_error = on_error

    def _candidates(self, path: str) -> list[tuple[int, BaseRoute, Any]]:
        if self._indexed != len(self.routes):  # built on first use, again if routes were added
            self._index = {}
            for order, route in enumerate(self.routes):
                self._index.setdefault(literal_start(route), []).append((order, route, _function(route)))
            self._indexed = len(self.routes)
        segments = tuple(path.split("/")[1 : DEPTH + 1])
        found: list[tuple[int, BaseRoute, Any]] = []
        for length in range(len(segments), -1, -1):
            found += self._index.get(segments[:length], ())
        found.sort(key=lambda entry: entry[0])
        return found

    def find(self, scope: Scope) -> tuple[BaseRoute | None, Match, Scope, Any]:
        """The route Starlette's router would pick: the first full match, else the first partial
        one (the path is served, not the method); with its child scope and endpoint function."""
        partial: tuple[BaseRoute | None, Match, Scope, Any] = (None, Match.NONE, {}, None)
        for _order, route, function in self._candidates(scope["path"]):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                return route, match, child_scope, function
            if match is Match.PARTIAL and partial[0] is None:
                partial = (route, match, child_scope, function)
        return partial

    def allowed(self, scope: Scope) -> list[str]:
        """The methods of the path that partly matched first, over every route declared with
        that path (a path may have one route per method), in a stable order. A templated path
        that also matches (``/.../{task_id}``) is another path: its methods are not this one's."""
        methods: set[str] = set()
        first: str | None = None
        for _order, route, _function in self._candidates(scope["path"]):
            path = getattr(route, "path", None)
            if (first is None or path == first) and route.matches(scope)[0] is Match.PARTIAL:
                first = path
                methods.update(getattr(route, "methods", None) or ())
        return sorted(methods)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().app(scope, receive, send)
            return
        scope.setdefault("router", self)
        route, match, child_scope, function = self.find(scope)
        if route is not None:
            scope["route"] = route
            scope.update(child_scope)
        if match is Match.FULL:
            if function is not None:
                await self._call(function, scope, receive, send)
            else:
                assert route is not None
                await self._serve(route, scope, receive, send)
            return
        if match is Match.PARTIAL:
            error = HTTPException(405, headers={"Allow": ", ".join(self.allowed(scope))})
        else:
            error = HTTPException(404)
        response = await self.on_error(Request(scope, receive, send), error)
        await response(scope, receive, send)

    async def _call(
        self, function: Callable[[Request], Awaitable[Response]], scope: Scope, receive: Receive, send: Send
    ) -> None:
        """An endpoint function: what it raises comes before its answer, so it can be answered."""
        request = Request(scope, receive, send)
        try:
            response = await function(request)
        except ClientDisconnect:
            return  # gone before its body came (or closed for being too slow): nobody to answer
        except Exception as exc:
            response = await self.on_error(request, exc)
        await response(scope, receive, send)

    async def _serve(self, route: BaseRoute, scope: Scope, receive: Receive, send: Send) -> None:
        """Any other route (an HTTPEndpoint class): what it raises before its answer has started
        is answered; after, it goes on to the server, which closes the connection."""
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await route.handle(scope, receive, watched)
        except ClientDisconnect:
            return
        except Exception as exc:
            if started:
                raise
            response = await self.on_error(Request(scope, receive, send), exc)
            await response(scope, receive, send)
