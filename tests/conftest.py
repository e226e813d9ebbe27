"""Shared fixtures: a backend on a manual clock, its app, and a client that speaks to it in
process (no sockets); and the guard that keeps the ``slow`` marker honest."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import NoReturn

import httpx
import pytest
from PIL import Image

from mockkling import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, Backend, Config, create_app, make_jwt
from mockkling.server import LiveServer
from mockkling.transport import SyncASGITransport


@pytest.fixture(autouse=True)
def _only_slow_tests_start_processes_or_servers(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pytest -m "not slow"`` is the fast inner loop: a test that starts a child process or a
    live server must say so with ``@pytest.mark.slow``, or it fails here, naming the marker."""
    if request.node.get_closest_marker("slow") is not None:
        return

    def refuse(what: str) -> Callable[..., NoReturn]:
        def refused(*args: object, **kwargs: object) -> NoReturn:
            pytest.fail(f"this test starts {what}: mark it @pytest.mark.slow", pytrace=False)

        return refused

    monkeypatch.setattr(subprocess, "Popen", refuse("a child process"))
    monkeypatch.setattr(LiveServer, "start", refuse("a live server"))


@pytest.fixture
def config() -> Config:
    return Config(seed=1234)


@pytest.fixture
def backend(config: Config) -> Backend:
    backend = Backend(config)
    backend.use_manual_clock()
    return backend


@pytest.fixture
def client(backend: Backend) -> Iterator[httpx.Client]:
    with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock") as client:
        yield client


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)}"}


def image_b64(width: int = 640, height: int = 360, fmt: str = "PNG") -> str:
    """Raw Base64 of a real image of the given size and format."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 60, 90)).save(buffer, format=fmt)
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def make_image() -> Callable[..., str]:
    return image_b64


def _fresh_python(code: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.fixture
def fresh_python() -> Callable[[str], list[str]]:
    """Run ``code`` in a new interpreter (what it imports is then its own doing); its printed words."""
    return _fresh_python
