"""Finding a request's route and answering it, errors included, in one place.

Starlette's router tries every route in turn, which for the later ones cost more than all the
rest of a request; this one tries only the routes whose literal start of path can be the
request's, in the same order, matching each as Starlette would (by segments when its parameters
are whole segments, :class:`Shape`), so what matches, partial matches (405) and precedence are
unchanged. It also calls a route's endpoint itself and answers what it raises with the app's
error handlers, where Starlette passes each answer through three wrappers (two exception
middlewares and the route's own); :meth:`IndexedRouter.respond` hands the answer back, for the
request layer to send and journal from the object. What each saves is in docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, NamedTuple, cast

from starlette._utils import get_route_path, is_async_callable
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
# Why a request must not be routed at all (an exception for ``on_error`` to answer), or None.
Check = Callable[[Scope], Exception | None]


def tidy_path(path: str) -> str:
    """Repeated slashes count as one and a trailing slash is dropped: a real Kling client builds
    ``text2video//{id}``, and the real service answers it."""
    if "//" in path or (path.endswith("/") and path != "/"):
        return "/" + "/".join(part for part in path.split("/") if part)
    return path


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


class Shape(NamedTuple):
    """A route path whose parameters are all whole segments of the default (``str``) kind, as
    segments: such a path is matched by comparing segments, exactly as its regular expression
    (``[^/]+`` per parameter) would match, for a fraction of the cost (docs/benchmarks.md)."""

    size: int  # segments
    prefix: list[str]  # the literal segments before the first parameter
    rest: tuple[str | None, ...]  # the segments after them, None for a parameter
    names: tuple[str, ...]  # the parameters, in order
    only_params: bool  # no literal segment after the first parameter (the usual case)

    def params(self, segments: list[str]) -> dict[str, str] | None:
        """The path parameters of a path split on "/" (without the leading ""), or None."""
        start = len(self.prefix)
        if len(segments) != self.size or segments[:start] != self.prefix:
            return None
        rest = segments[start:]
        if self.only_params:
            return None if "" in rest else dict(zip(self.names, rest, strict=True))
        values = []
        for want, got in zip(self.rest, rest, strict=True):
            if want is None:
                if not got:
                    return None
                values.append(got)
            elif want != got:
                return None
        return dict(zip(self.names, values, strict=True))


def shape_of(route: BaseRoute) -> Shape | None:
    """A plain Route's :class:`Shape`, or None (Starlette matches it)."""
    if not isinstance(route, Route) or not route.path.startswith("/"):
        return None
    parts: list[str | None] = []
    for segment in route.path.split("/")[1:]:
        if segment.startswith("{") and segment.endswith("}") and segment.count("{") == 1:
            name, _, kind = segment[1:-1].partition(":")
            if kind not in ("", "str") or name not in route.param_convertors:
                return None
            parts.append(None)
        elif "{" in segment or "}" in segment:
            return None
        else:
            parts.append(segment)
    start = parts.index(None) if None in parts else len(parts)
    prefix = [part for part in parts[:start] if part is not None]
    rest = tuple(parts[start:])
    return Shape(len(parts), prefix, rest, tuple(route.param_convertors), all(part is None for part in rest))


def _segments(scope: Scope) -> tuple[list[str], bool]:
    """The request's route path split on "/" (without the leading ""), and whether its routes
    may be matched by shape. A regular expression's "$" also matches before a final newline (a
    path sent with a trailing %0A): such a path's candidates are those of the path without it,
    and Starlette matches them, so that the same route is picked."""
    path = get_route_path(scope)
    if path.endswith("\n"):
        return path[:-1].split("/")[1:], False
    return path.split("/")[1:], True


def _function(route: BaseRoute) -> Callable[[Request], Awaitable[Response]] | None:
    """The async function a Route calls with a Request, or None (a class endpoint, an ASGI app,
    a sync function: served through the route, as Starlette does)."""
    if isinstance(route, Route) and route.app is not route.endpoint and is_async_callable(route.endpoint):
        endpoint: Callable[[Request], Awaitable[Response]] = route.endpoint
        return endpoint
    return None


class IndexedRouter(Router):
    """Starlette's Router, trying a request's candidate routes only and answering errors with
    ``on_error`` (see the module's docstring). Paths are tidied (:func:`tidy_path`) before they
    are matched, but those under ``keep_paths``; ``check`` may refuse a request before any
    route sees it."""

    # literal start -> (declaration order, route, endpoint function or None, shape or None)
    _index: dict[Key, list[tuple[int, BaseRoute, Any, Any]]]
    _indexed: int = -1

    def __init__(
        self,
        routes: Sequence[BaseRoute],
        *,
        on_error: OnError,
        lifespan: Any = None,
        keep_paths: tuple[str, ...] = (),
        check: Check | None = None,
    ) -> None:
        # Paths are tidied instead: no trailing-slash redirects.
        super().__init__(list(routes), lifespan=lifespan, redirect_slashes=False)
        self.on_error = on_error
        self.keep_paths = keep_paths
        self.check = check

    def _candidates(self, segments: list[str]) -> list[tuple[int, BaseRoute, Any, Any]]:
        """The routes a path (split on "/", without the leading "") may match, in order."""
        if self._indexed != len(self.routes):  # built on first use, again if routes were added
            self._build_index()
        start = tuple(segments[:DEPTH])
        for length in range(len(start), -1, -1):
            found = self._index.get(start[:length])
            if found is not None:
                return found
        return []

    def _build_index(self) -> None:
        """For each literal start of a route, the routes a path with that start can match: its
        own and those of every shorter start, in declaration order; a path's candidates are then
        those of its longest start in the index, with no list to build per request."""
        own: dict[Key, list[tuple[int, BaseRoute, Any, Any]]] = {}
        for order, route in enumerate(self.routes):
            entry = (order, route, _function(route), shape_of(route))
            own.setdefault(literal_start(route), []).append(entry)
        self._index = {}
        for key in own:
            merged = [entry for length in range(len(key) + 1) for entry in own.get(key[:length], ())]
            self._index[key] = sorted(merged, key=lambda entry: entry[0])
        self._indexed = len(self.routes)

    def find(self, scope: Scope) -> tuple[BaseRoute | None, Match, Scope, Any]:
        """The route Starlette's router would pick: the first full match, else the first partial
        one (the path is served, not the method); with its child scope and endpoint function."""
        partial: tuple[BaseRoute | None, Match, Scope, Any] = (None, Match.NONE, {}, None)
        segments, by_shape = _segments(scope)
        inherited = scope.get("path_params")
        for _order, route, function, shape in self._candidates(segments):
            if shape is None or not by_shape:
                match, child_scope = route.matches(scope)
            else:
                params = shape.params(segments)
                if params is None:
                    continue
                if inherited:
                    params = {**inherited, **params}
                plain = cast(Route, route)  # a shape is a Route's
                child_scope = {"endpoint": plain.endpoint, "path_params": params}
                methods = plain.methods
                match = Match.FULL if not methods or scope["method"] in methods else Match.PARTIAL
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
        for _order, route, _function, _shape in self._candidates(_segments(scope)[0]):
            path = getattr(route, "path", None)
            if (first is None or path == first) and route.matches(scope)[0] is Match.PARTIAL:
                first = path
                methods.update(getattr(route, "methods", None) or ())
        return sorted(methods)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().app(scope, receive, send)
            return
        response = await self.respond(scope, receive, send)
        if response is not None:
            await response(scope, receive, send)

    async def respond(self, scope: Scope, receive: Receive, send: Send) -> Response | None:
        """The answer to an HTTP request, for the caller to send: its endpoint function's, or
        what answers the error it raised. None when the request was served through ``send``
        already (a route that is not a function) or nobody is left to answer."""
        path: str = scope["path"]
        tidy = path if path.startswith(self.keep_paths) else tidy_path(path)
        if tidy != path:
            scope = {**scope, "path": tidy, "raw_path": tidy.encode("utf-8", "surrogateescape")}
        scope.setdefault("router", self)
        refused = None if self.check is None else self.check(scope)
        if refused is not None:
            return await self.on_error(Request(scope, receive, send), refused)
        route, match, child_scope, function = self.find(scope)
        if route is not None:
            scope["route"] = route
            scope.update(child_scope)
        if match is Match.FULL:
            if function is None:
                assert route is not None
                await self._serve(route, scope, receive, send)
                return None
            # An endpoint function: what it raises comes before its answer, so it can be answered.
            request = Request(scope, receive, send)
            try:
                response: Response = await function(request)
            except ClientDisconnect:
                return None  # gone before its body came (or closed for being too slow)
            except Exception as exc:
                return await self.on_error(request, exc)
            return response
        if match is Match.PARTIAL:
            error = HTTPException(405, headers={"Allow": ", ".join(self.allowed(scope))})
        else:
            error = HTTPException(404)
        return await self.on_error(Request(scope, receive, send), error)

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
