"""The pytest plugin's shared live server gives each test a namespace of its own (issue 20): the
test's clients send it, a request of a test that has ended never reaches the next one, and the
code under test, sending no header, still reaches the test mounted now."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from mockkling import Backend, Config
from mockkling.namespaces import HEADER
from mockkling.testing import KlingMock, SharedServer

pytestmark = pytest.mark.slow  # a live server

T2V = "/v1/videos/text2video"


def test_each_mount_is_a_namespace_and_an_ended_one_is_refused() -> None:
    with SharedServer() as server:
        first = server.mount(Backend(Config(seed=1)))
        assert first.namespace == "pytest-1"
        made = first.client.post(T2V, json={"prompt": "x"}).json()["data"]["task_id"]
        assert first.client.get(f"{T2V}/{made}").json()["data"]["task_id"] == made
        assert first.backend.journal.last().headers.get(HEADER.lower()) is None  # not the app's concern
        server.unmount()
        first_client = first.client
        second = server.mount(Backend(Config(seed=2)))
        assert second.namespace == "pytest-2"
        # A late request of the first test: refused, never answered by the second's mock.
        late = first_client.get(f"{T2V}/{made}")
        assert (late.status_code, late.json()["code"]) == (503, 5001)
        assert "pytest-1" in late.json()["message"]
        assert len(second.backend.journal) == 0
        # The code under test, on a client of its own without the header, reaches the second.
        with httpx.Client(base_url=second.base_url, headers=second.auth_headers()) as plain:
            assert plain.get(T2V).json()["code"] == 0
        assert second.client.get(T2V).json()["data"] == []
        # A namespace of the mock's own (not a test's) is the mounted mock's to serve.
        named = second.client.post(T2V, json={"prompt": "y"}, headers={HEADER: "team-a"})
        assert named.json()["code"] == 0
        assert second.client.get(T2V).json()["data"] == []
        server.unmount()
        first.close()
        second.close()


def test_the_async_transport_sends_the_namespace_too() -> None:
    async def status(mock: KlingMock) -> int:
        async with mock.async_client() as client:
            return (await client.get(T2V)).status_code

    with SharedServer() as server:
        mock = server.mount(Backend(Config(seed=3)))
        assert asyncio.run(status(mock)) == 200
        server.unmount()
        assert asyncio.run(status(mock)) == 503
        mock.close()
