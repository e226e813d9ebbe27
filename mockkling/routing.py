"""Finding a request's route among a hundred: Starlette's router tries every route in turn, which
for the later ones cost more than all the rest of a request (docs/benchmarks.md). This router
tries only the routes whose literal start of path can be the request's, in the same order, with
Starlette's own matching, so what matches, partial matches (405) and precedence are unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import Receive, Scope, Send

# Literal path segments a route is indexed by, at most.
DEPTH: Final = 3
Key = tuple[str, ...]


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


class IndexedRouter(Router):
    """Starlette's Router, trying a request's candidate routes only (see the module's docstring)."""

    _index: dict[Key, list[tuple[int, BaseRoute]]]
    _indexed: int = -1

    def _candidates(self, path: str) -> Sequence[BaseRoute]:
        if self._indexed != len(self.routes):  # built on first use, again if routes were added
            self._index = {}
            for order, route in enumerate(self.routes):
                self._index.setdefault(literal_start(route), []).append((order, route))
            self._indexed = len(self.routes)
        segments = tuple(path.split("/")[1 : DEPTH + 1])
        found: list[tuple[int, BaseRoute]] = []
        for length in range(len(segments), -1, -1):
            found += self._index.get(segments[:length], ())
        found.sort(key=lambda pair: pair[0])
        return [route for _order, route in found]

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().app(scope, receive, send)
            return
        scope.setdefault("router", self)
        partial = partial_scope = None
        for route in self._candidates(scope["path"]):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope["route"] = route
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
            if match is Match.PARTIAL and partial is None:
                partial, partial_scope = route, child_scope
        if partial is not None and partial_scope is not None:  # the path is served, not the method
            scope["route"] = partial
            scope.update(partial_scope)
            await partial.handle(scope, receive, send)
            return
        await self.default(scope, receive, send)
