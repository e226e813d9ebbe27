"""The sync in-process transport behaves like a server: bodies, streamed files, ranges, HEAD,
query strings, and calls made from inside a running event loop; it has the mock answer task
queries and creates at once, with no ASGI call, and the rest through the app."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from mockkling import Backend, Config, KlingMock, create_app, namespaces
from mockkling.request_layer import RequestLayer
from mockkling.transport import AsyncASGITransport, SyncASGITransport


def _finished_task(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> str:
    task_id: str = client.post("/v1/videos/text2video", json={"prompt": "x"}, headers=auth).json()["data"][
        "task_id"
    ]
    backend.advance(60)
    return task_id


def test_head_and_ranges_on_media(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> None:
    url = f"/media/videos/{_finished_task(backend, client, auth)}.mp4"
    full = client.get(url).content
    head = client.head(url)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(full)
    part = client.get(url, headers={"Range": "bytes=0-7"})
    assert part.status_code == 206
    assert part.content == full[:8]
    assert part.headers["content-range"] == f"bytes 0-7/{len(full)}"


def test_query_strings_and_encoded_paths(client: httpx.Client, auth: dict[str, str]) -> None:
    assert client.get("/v1/videos/text2video", params={"pageSize": "2"}, headers=auth).status_code == 200
    response = client.get("/v1/videos/text2video/a%20b", headers=auth)
    assert response.status_code == 404
    assert "a b" in response.json()["message"]


def test_usable_from_inside_an_event_loop(client: httpx.Client, auth: dict[str, str]) -> None:
    async def inside() -> int:
        return client.get("/v1/videos/text2video", headers=auth).status_code

    assert asyncio.run(inside()) == 200


@pytest.fixture
def asgi_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests that reach the mock's app as ASGI calls."""
    calls: list[str] = []
    asgi_call = RequestLayer.__call__

    async def counted(self: RequestLayer, scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        await asgi_call(self, scope, receive, send)

    monkeypatch.setattr(RequestLayer, "__call__", counted)
    return calls


def test_queries_and_creates_are_answered_at_once_and_the_rest_through_the_app(
    backend: Backend, client: httpx.Client, auth: dict[str, str], asgi_calls: list[str]
) -> None:
    created = client.post("/v1/videos/text2video", json={"prompt": "x"}, headers=auth)
    assert created.status_code == 200 and created.headers["content-type"] == "application/json"
    task_id = created.json()["data"]["task_id"]
    backend.advance(60)
    queried = client.get(f"/v1/videos/text2video/{task_id}", headers=auth)
    assert queried.json()["data"]["task_status"] == "succeed"
    assert int(queried.headers["content-length"]) == len(queried.content)
    refused = client.get(f"/v1/videos/text2video/{task_id}", headers={"Authorization": "Bearer a.b.c"})
    assert refused.status_code == 401 and refused.json()["code"] == 1002
    assert asgi_calls == []
    assert [(e.method, e.status) for e in backend.journal] == [("POST", 200), ("GET", 200), ("GET", 401)]
    # The rest goes through the app: a list, and anything while a fault rule is in force.
    assert client.get("/v1/videos/text2video", headers=auth).status_code == 200
    backend.faults.add("GET /v1/videos/text2video/* 500 x1")
    assert client.get(f"/v1/videos/text2video/{task_id}", headers=auth).status_code == 500
    assert asgi_calls == ["/v1/videos/text2video", f"/v1/videos/text2video/{task_id}"]


def test_the_fixtures_async_client_answers_at_once_too(asgi_calls: list[str]) -> None:
    async def lifecycle(mock: KlingMock) -> list[int]:
        async with mock.async_client() as client:
            created = await client.post("/v1/videos/text2video", json={"prompt": "x"})
            task_id = created.json()["data"]["task_id"]
            mock.advance(60)
            queried = await client.get(f"/v1/videos/text2video/{task_id}")
            assert queried.json()["data"]["task_status"] == "succeed"
            assert asgi_calls == []
            listed = await client.get("/v1/videos/text2video")  # through httpx's ASGITransport
            assert asgi_calls == ["/v1/videos/text2video"]
            return [created.status_code, queried.status_code, listed.status_code]

    with KlingMock.in_process() as mock:
        assert asyncio.run(lifecycle(mock)) == [200, 200, 200]
        assert [e.status for e in mock.backend.journal] == [200, 200, 200]


def test_the_async_transport_leaves_a_streamed_body_to_the_app(auth: dict[str, str]) -> None:
    """A body declared over the size limit is refused (413) before a byte of it is read, as
    over HTTP: a streamed body is never read whole to ask for an answer at once."""
    app = create_app(Backend(Config(max_body_bytes=1000)))
    pulled = 0

    async def body() -> Any:
        nonlocal pulled
        for _ in range(1000):
            pulled += 1
            yield b"x" * 65536

    async def create(auth: dict[str, str]) -> int:
        async with httpx.AsyncClient(transport=AsyncASGITransport(app), base_url="http://mock") as client:
            headers = {**auth, "Content-Length": str(65536 * 1000), "Content-Type": "application/json"}
            return (await client.post("/v1/videos/text2video", content=body(), headers=headers)).status_code

    assert asyncio.run(create(auth)) == 413
    assert pulled == 0


def test_a_sync_client_inside_a_running_loop_keeps_its_namespace(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    """Answered at once or through the app on a helper thread, every request of a block under
    ``namespaces.using`` is served in that namespace."""

    async def inside() -> tuple[str, list[str]]:
        with namespaces.using("team-a"):
            created = client.post("/v1/videos/text2video", json={"prompt": "x"}, headers=auth)
            listed = client.get("/v1/videos/text2video", headers=auth).json()["data"]  # through the app
        return created.json()["data"]["task_id"], [task["task_id"] for task in listed]

    task_id, listed = asyncio.run(inside())
    assert listed == [task_id]
    with namespaces.using("team-a"):
        assert [task.task_id for task in backend.tasks] == [task_id]
    assert list(backend.tasks) == []  # none in the default namespace


def test_a_closed_transport_refuses_every_request(backend: Backend, auth: dict[str, str]) -> None:
    transport = SyncASGITransport(create_app(backend))
    transport.close()
    for path in ("/v1/videos/text2video/any-id", "/v1/videos/text2video"):  # at once, through the app
        with pytest.raises(RuntimeError, match="closed"):
            transport.handle_request(httpx.Request("GET", f"http://mock{path}", headers=auth))
