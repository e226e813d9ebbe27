"""The sync in-process transport behaves like a server: bodies, streamed files, ranges, HEAD,
query strings, and calls made from inside a running event loop."""

from __future__ import annotations

import asyncio

import httpx

from mockkling import Backend


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
