"""The indexed router picks exactly the route Starlette's own router would, with the same path
parameters, for every route the mock serves under every gateway profile, every method, and paths
no route serves."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.routing import BaseRoute, Match, Route

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


Picked = tuple[BaseRoute | None, Match, object]


def _linear(routes: list[BaseRoute], scope: dict[str, object]) -> Picked:
    """What Starlette's Router.app picks: the first full match, else the first partial one, and
    the path parameters it hands the endpoint."""
    partial: Picked = (None, Match.NONE, None)
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            return route, Match.FULL, child.get("path_params")
        if match is Match.PARTIAL and partial[0] is None:
            partial = (route, Match.PARTIAL, child.get("path_params"))
    return partial


def _indexed(router: IndexedRouter, scope: dict[str, object]) -> Picked:
    route, match, child, _function = router.find(scope)
    return route, match, child.get("path_params")


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


_APP = create_app(Backend(Config()))
_PATHS = sorted({route.path for route in _APP.router.routes if isinstance(route, Route)})
# What a client may put where a parameter goes, or after a path: empty, odd, nested.
_VALUES = st.one_of(
    st.sampled_from(["", "x", "abc123", "%2F", "a/b", "id\n", "视频", "v1"]), st.text(max_size=8)
)


@st.composite
def _requests(draw: st.DrawFn) -> str:
    """A route's path with its parameters filled with any values, sometimes with more after it,
    sometimes ending in a newline or a slash."""
    path = re.sub(r"\{[^}]*\}", lambda _: draw(_VALUES), draw(st.sampled_from(_PATHS)))
    path += "".join("/" + part for part in draw(st.lists(_VALUES, max_size=2)))
    return path + draw(st.sampled_from(["", "", "", "\n", "/"]))  # "$" matches before a final newline


@settings(max_examples=500, deadline=None)
@given(path=_requests(), method=st.sampled_from(METHODS))
def test_any_path_is_matched_as_starlette_matches_it(path: str, method: str) -> None:
    """Routes matched segment by segment (routing.shape_of) pick the route and the parameters
    Starlette's regular expressions pick, whatever fills a parameter: nothing, a slash, odd
    characters, more segments."""
    router = _APP.router
    assert isinstance(router, IndexedRouter)
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    assert _indexed(router, scope) == _linear(router.routes, scope), path
