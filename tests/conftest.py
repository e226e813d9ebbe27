"""Shared fixtures: a backend on a manual clock, its app, and a client that speaks to it in
process (no sockets)."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterator

import httpx
import pytest
from PIL import Image

from mockkling import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, Backend, Config, create_app, make_jwt
from mockkling.transport import SyncASGITransport


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
