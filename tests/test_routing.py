"""The indexed router picks exactly the route Starlette's own router would, for every route the
mock serves under every gateway profile, every method, and paths no route serves."""

from __future__ import annotations

import re

import pytest
from starlette.routing import BaseRoute, Match

from mockkling import Backend, Config, create_app
from mockkling.config import GATEWAY_PROFILES
from mockkling.routing import IndexedRouter

METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD")
ODD_PATHS = [
    "/",
    "/nope",
    "/v1",
    "/v1/videos",
    "/v1/videos/text2video/a/b",
    "/tasks/x",
    "/media",
    "/__mockkling",
]


def _concrete(path: str) -> str:
    path = re.sub(r"\{\w+:path\}", "a/b.png", path)
    return re.sub(r"\{\w+(:\w+)?\}", "abc123", path)


def _linear(routes: list[BaseRoute], scope: dict[str, object]) -> tuple[BaseRoute | None, Match]:
    """What Starlette's Router.app picks: the first full match, else the first partial one."""
    partial = None
    for route in routes:
        match, _child = route.matches(scope)
        if match is Match.FULL:
            return route, Match.FULL
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial, Match.PARTIAL if partial else Match.NONE


def _indexed(router: IndexedRouter, scope: dict[str, object]) -> tuple[BaseRoute | None, Match]:
    route, match, _child, _function = router.find(scope)
    return route, match


@pytest.mark.parametrize("profile", GATEWAY_PROFILES)
def test_the_index_picks_what_a_linear_scan_picks(profile: str) -> None:
    app = create_app(Backend(Config(gateway=profile)))
    router = app.router
    assert isinstance(router, IndexedRouter)
    paths = [_concrete(getattr(route, "path", "/")) for route in router.routes] + ODD_PATHS
    assert len(router.routes) > 50  # the case it exists for
    for path in paths:
        for method in METHODS:
            scope = {"type": "http", "method": method, "path": path, "root_path": ""}
            assert _indexed(router, scope) == _linear(router.routes, scope), (method, path)
