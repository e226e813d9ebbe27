"""Connection-level faults reach a real httpx client over a loopback socket as the errors a
real outage gives it: a dropped connection, a body that is not JSON, a client-side timeout."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx
import pytest

from mockkling import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, Backend, Config, create_app, make_jwt
from mockkling.server import LiveServer

pytestmark = pytest.mark.slow  # a live server

T2V = "/v1/videos/text2video"


@pytest.fixture
def live() -> Iterator[tuple[LiveServer, Backend, httpx.Client]]:
    backend = Backend(Config(seed=3))
    backend.use_manual_clock()
    headers = {"Authorization": f"Bearer {make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)}"}
    with (
        LiveServer(create_app(backend)) as server,
        httpx.Client(base_url=server.url, headers=headers, timeout=10) as client,
    ):
        yield server, backend, client


def test_dropped_connection_is_a_remote_protocol_error(
    live: tuple[LiveServer, Backend, httpx.Client],
) -> None:
    _server, backend, client = live
    rule = backend.faults.add("POST /v1/videos/* drop x1")
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(T2V, json={"prompt": "a cat"})
    assert len(backend.tasks) == 0
    # The next request, on a fresh connection, is served normally.
    assert client.post(T2V, json={"prompt": "a cat"}).status_code == 200
    entries = backend.journal.find(method="POST")
    assert [(e.status, e.fault) for e in entries] == [(None, rule.id), (200, None)]


def test_malformed_body_is_a_json_decode_error(live: tuple[LiveServer, Backend, httpx.Client]) -> None:
    _server, backend, client = live
    backend.faults.add(fault="malformed", times=1)
    response = client.post(T2V, json={"prompt": "a cat"})
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert len(backend.tasks) == 1


def test_latency_past_the_client_timeout_is_a_read_timeout(
    live: tuple[LiveServer, Backend, httpx.Client],
) -> None:
    server, backend, client = live
    backend.faults.add(path=T2V, delay_ms=600_000)
    with pytest.raises(httpx.ReadTimeout):
        client.get(T2V, timeout=0.2)
    assert client.get("/openapi.yaml").status_code == 200  # the server keeps serving meanwhile
    # The abandoned ten-minute wait ends with its client: the server stops without waiting for it.
    name = f"mockkling-{server.port}"
    assert any(t.name == name for t in threading.enumerate())
    server.stop()
    assert not any(t.name == name and t.is_alive() for t in threading.enumerate())


def test_error_rules_answer_over_http_too(live: tuple[LiveServer, Backend, httpx.Client]) -> None:
    _server, backend, client = live
    backend.faults.add("503 x1")
    response = client.get(T2V)
    assert (response.status_code, response.json()["code"]) == (503, 5001)
    assert client.get(T2V).status_code == 200
