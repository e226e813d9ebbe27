"""Testing a Kling integration without changing it: ``mockkling.intercept()`` answers the real
hosts from an in-process mock for httpx (sync and async), requests and aiohttp; clients that
poll with ``time.sleep`` / ``asyncio.sleep`` finish without waiting; other hosts pass through
or are refused; the fixture's ``intercept`` option; tasks that progress by polls."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import av
import httpx
import intercept_apps as apps
import pytest
import requests
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import mockkling
from mockkling import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, Fate, KlingMock
from mockkling.catalogue import KLING_HOSTS, MEDIA_HOST
from mockkling.server import LiveServer

AK, SK = DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY
RUN_SECONDS = 300  # a 5-minute task, polled every 5 s


def _run(result: Any) -> Any:
    return asyncio.run(result) if asyncio.iscoroutine(result) else result


def _mp4_seconds(content: bytes) -> float:
    with av.open(io.BytesIO(content), format="mp4") as container:
        assert container.duration is not None
        return float(container.duration / av.time_base)


APPS = {
    "httpx": apps.generate_with_httpx,
    "httpx-async": apps.generate_with_httpx_async,
    "requests": apps.generate_with_requests,
    "aiohttp": apps.generate_with_aiohttp,
}


@pytest.mark.parametrize("generate", APPS.values(), ids=APPS.keys())
def test_an_unmodified_app_that_polls_every_5_s_finishes_without_waiting(
    generate: Callable[..., Any],
) -> None:
    started = time.monotonic()
    with mockkling.intercept(queue_seconds=10, run_seconds=RUN_SECONDS) as kling:
        url, content = _run(generate(AK, SK, "a cat on the moon"))
        (task,) = kling.tasks
        waited = (kling.backend.now_ms() - task.created_ms) / 1000
    # The app slept its way through the whole task on the mock's clock, not the wall clock.
    assert waited >= RUN_SECONDS
    assert time.monotonic() - started < RUN_SECONDS / 10
    # Its video came from the real CDN's host name, and it is a real MP4 of the task's length.
    assert httpx.URL(url).host == MEDIA_HOST
    assert _mp4_seconds(content) == pytest.approx(float(task.duration), abs=0.05)
    # Every poll went through the mock, on the production host.
    polls = kling.journal.find(method="GET", path="/v1/videos/text2video/*")
    assert len(polls) == RUN_SECONDS // apps.POLL_SECONDS + 3
    assert {e.headers["host"] for e in polls} == {"api-singapore.klingai.com"}


def test_every_kling_host_is_answered() -> None:
    with mockkling.intercept() as kling:
        for host in KLING_HOSTS:
            answer = httpx.get(f"https://{host}/v1/videos/text2video", headers=kling.auth_headers())
            assert (answer.status_code, answer.json()["code"]) == (200, 0), host


@pytest.fixture(scope="module")
def elsewhere() -> Iterator[str]:
    """A server on loopback that is not Kling: what the code under test also talks to."""
    app = Starlette(routes=[Route("/hello", lambda request: PlainTextResponse("hello from elsewhere"))])
    with LiveServer(app) as server:
        yield server.url


def _get(library: str, url: str, headers: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
    """A GET through one HTTP library: the body as text, and the headers as that library hands
    them to its caller (a header repeated shows as its values joined by ", ")."""
    headers = headers or {}
    if library == "httpx":
        answer = httpx.get(url, headers=headers)
        return answer.text, dict(answer.headers)
    if library == "httpx-async":

        async def fetch() -> tuple[str, dict[str, str]]:
            async with httpx.AsyncClient() as client:
                answer = await client.get(url, headers=headers)
                return answer.text, dict(answer.headers)

        return asyncio.run(fetch())
    if library == "requests":
        answer = requests.get(url, headers=headers, timeout=10)
        return answer.text, {k.lower(): v for k, v in answer.headers.items()}

    async def fetch_aiohttp() -> tuple[str, dict[str, str]]:
        async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as answer:
            seen = {k.lower(): ", ".join(answer.headers.getall(k)) for k in answer.headers}
            return await answer.text(errors="replace"), seen

    return asyncio.run(fetch_aiohttp())


def _get_elsewhere(library: str, url: str) -> str:
    return _get(library, url)[0]


REFUSED: dict[str, type[BaseException] | tuple[type[BaseException], ...]] = {
    "httpx": httpx.ConnectError,
    "httpx-async": httpx.ConnectError,
    "requests": requests.ConnectionError,
    "aiohttp": aiohttp.ClientConnectionError,
}


@pytest.mark.slow
@pytest.mark.parametrize("library", REFUSED)
def test_other_hosts_pass_through_or_are_refused(library: str, elsewhere: str) -> None:
    with mockkling.intercept():
        assert _get_elsewhere(library, f"{elsewhere}/hello") == "hello from elsewhere"
    with mockkling.intercept(other_hosts="refuse"), pytest.raises(REFUSED[library]):
        _get_elsewhere(library, f"{elsewhere}/hello")


@pytest.mark.parametrize("library", ["httpx-async", "requests", "aiohttp"])
def test_every_library_sees_the_headers_httpx_sees(library: str) -> None:
    """A client that checks Content-Type works under interception whichever library it uses."""
    with mockkling.intercept(run_seconds=1) as kling:
        task_id = httpx.post(
            "https://api-singapore.klingai.com/v1/videos/text2video",
            headers=kling.auth_headers(),
            json={"prompt": "a"},
        ).json()["data"]["task_id"]
        kling.advance(60)
        task_url = f"https://api-singapore.klingai.com/v1/videos/text2video/{task_id}"
        video_url = httpx.get(task_url, headers=kling.auth_headers()).json()["data"]["task_result"]["videos"][
            0
        ]["url"]
        for url, content_type in ((task_url, "application/json"), (video_url, "video/mp4")):
            _, expected = _get("httpx", url, kling.auth_headers())
            _, seen = _get(library, url, kling.auth_headers())
            assert seen["content-type"] == expected["content-type"] == content_type
            assert {k: v for k, v in seen.items() if k != "content-length"} == {
                k: v for k, v in expected.items() if k != "content-length"
            }


def test_a_gateway_host_a_test_adds_is_answered_too() -> None:
    with mockkling.intercept(hosts=["llm-gateway.internal"]) as kling:
        created = requests.post(
            "https://llm-gateway.internal/v1/video/generations",
            headers={"Authorization": kling.api_key},
            json={"model": "kling-v1", "prompt": "a cat", "duration": 5},
            timeout=10,
        )
    assert created.status_code == 200 and created.json()["task_id"]


def test_the_decorator_gives_each_call_a_fresh_mock() -> None:
    @mockkling.intercept(run_seconds=60)
    def sync_app() -> tuple[str, bytes]:
        return apps.generate_with_requests(AK, SK, "a")

    @mockkling.intercept(run_seconds=60)
    async def async_app() -> tuple[str, bytes]:
        return await apps.generate_with_httpx_async(AK, SK, "a")

    for app in (sync_app, async_app, sync_app):
        url, content = _run(app())
        assert httpx.URL(url).host == MEDIA_HOST and content.startswith(b"\x00\x00\x00")


def test_faults_and_fates_reach_intercepted_clients() -> None:
    with mockkling.intercept(
        faults=["POST /v1/videos/* 1303 x1", "GET /v1/videos/text2video/* drop x1"]
    ) as kling:
        with pytest.raises(requests.HTTPError) as refused:
            apps.generate_with_requests(AK, SK, "a")
        assert refused.value.response.json()["code"] == 1303
        with pytest.raises(requests.ConnectionError):  # the dropped connection, as requests sees it
            apps.generate_with_requests(AK, SK, "a")
        kling.fates.add(Fate("failed", message="GPU on fire"))
        with pytest.raises(apps.GenerationFailed, match="GPU on fire"):
            _run(apps.generate_with_aiohttp(AK, SK, "a"))


def test_sleep_real_keeps_the_clock_still() -> None:
    with mockkling.intercept(sleep="real") as kling:
        before = kling.backend.now_ms()
        time.sleep(0.01)
        asyncio.run(asyncio.sleep(0.01))
        assert kling.backend.now_ms() == before


def test_fault_delays_stay_real_under_virtual_sleeps() -> None:
    """The mock's own delay fault waits in real time (a client's timeout must fire), inside the
    block and in a later one: the virtual sleep never reaches anyio.sleep."""
    for _ in range(2):
        with mockkling.intercept(faults=["GET /v1/videos/* delay=300ms"]) as kling:
            before, started = kling.backend.now_ms(), time.monotonic()
            httpx.get(f"{apps.BASE_URL}/v1/videos/text2video", headers=kling.auth_headers())
            assert time.monotonic() - started >= 0.3
            assert kling.backend.now_ms() == before


# -- the pytest fixture -----------------------------------------------------------------------------


@pytest.mark.kling_mock(intercept=True, run_seconds=RUN_SECONDS)
def test_the_fixture_intercepts_when_asked(kling_mock: KlingMock) -> None:
    url, _content = apps.generate_with_httpx(AK, SK, "a")
    assert httpx.URL(url).host == MEDIA_HOST and len(kling_mock.tasks) == 1


def test_the_fixture_sleeps_on_the_mock_clock(kling_mock: KlingMock) -> None:
    before = kling_mock.backend.now_ms()
    time.sleep(30)
    asyncio.run(asyncio.sleep(15))
    assert kling_mock.backend.now_ms() - before == 45_000


@pytest.mark.kling_mock(sleep="real")
def test_the_fixture_keeps_real_sleeps_when_told(kling_mock: KlingMock) -> None:
    before = kling_mock.backend.now_ms()
    time.sleep(0.01)
    assert kling_mock.backend.now_ms() == before


@pytest.mark.kling_mock(clock="system")
def test_on_the_wall_clock_sleeps_are_real(kling_mock: KlingMock) -> None:
    assert not kling_mock.manual_clock
    started = time.monotonic()
    time.sleep(0.05)
    assert time.monotonic() - started >= 0.05


def test_the_live_fixture_sleeps_on_the_mock_clock(kling_mock_live: KlingMock) -> None:
    """A client polling the live server with time.sleep sees its task move, with no waiting."""
    with httpx.Client(base_url=kling_mock_live.base_url, headers=kling_mock_live.auth_headers()) as client:
        task_id = client.post("/v1/videos/text2video", json={"prompt": "a"}).json()["data"]["task_id"]
        started = time.monotonic()
        statuses = []
        for _ in range(60):
            status = client.get(f"/v1/videos/text2video/{task_id}").json()["data"]["task_status"]
            statuses.append(status)
            if status == "succeed":
                break
            time.sleep(5)
    assert statuses[-1] == "succeed" and time.monotonic() - started < 30


# -- progressing by polls ---------------------------------------------------------------------------


@pytest.mark.kling_mock(polls_per_status=2)
def test_a_task_moves_one_status_every_n_polls(kling_mock: KlingMock) -> None:
    task_id = kling_mock.client.post("/v1/videos/text2video", json={"prompt": "a"}).json()["data"]["task_id"]
    kling_mock.advance(3600)  # the clock alone moves nothing
    seen = [
        kling_mock.client.get(f"/v1/videos/text2video/{task_id}").json()["data"]["task_status"]
        for _ in range(6)
    ]
    assert seen == ["submitted", "processing", "processing", "succeed", "succeed", "succeed"]


@pytest.mark.kling_mock(polls_per_status=1, fail_words=["forbidden"])
def test_progressing_by_polls_keeps_the_planned_outcome(kling_mock: KlingMock) -> None:
    task_id = kling_mock.client.post("/v1/videos/text2video", json={"prompt": "forbidden"}).json()["data"]
    statuses = [
        kling_mock.client.get(f"/v1/videos/text2video/{task_id['task_id']}").json()["data"] for _ in range(2)
    ]
    assert [d["task_status"] for d in statuses] == ["processing", "failed"]
    assert statuses[1]["task_status_msg"] == "Failure to pass the risk control system"


@pytest.mark.parametrize("gateway", ["ppwapi", "new-api"])
def test_gateway_tasks_move_by_polls_too(gateway: str) -> None:
    """A gateway's record follows its Kling task as queries move it: no poller tick to wait for."""
    with KlingMock.in_process(polls_per_status=2, gateway=gateway) as mock:
        key = {"Authorization": f"Bearer {mock.api_key}"}
        body = {"model_name": "kling-v1", "prompt": "a"}
        task_id = mock.client.post("/kling/v1/videos/text2video", json=body, headers=key).json()["task_id"]
        mock.advance(3600)  # the clock alone moves nothing
        seen = [
            mock.client.get(f"/v1/video/generations/{task_id}", headers=key).json()["data"]["status"]
            for _ in range(5)
        ]
    assert seen == ["SUBMITTED", "IN_PROGRESS", "IN_PROGRESS", "SUCCESS", "SUCCESS"]


@pytest.mark.kling_mock(polls_per_status=2)
def test_model_in_path_tasks_move_by_polls_too(kling_mock: KlingMock) -> None:
    task_id = kling_mock.api_client.post("/text-to-video/kling-3.0", json={"prompt": "a"}).json()["data"][
        "id"
    ]
    kling_mock.advance(3600)
    seen = [
        kling_mock.api_client.get("/tasks", params={"task_ids": task_id}).json()["data"][0]["status"]
        for _ in range(5)
    ]
    assert seen == ["submitted", "processing", "processing", "succeeded", "succeeded"]


def test_the_model_in_path_design_is_intercepted_too() -> None:
    """A client of Kling's newer design (model in the path, /tasks, an API key) under interception."""
    with (
        mockkling.intercept(run_seconds=60) as kling,
        httpx.Client(base_url="https://api-singapore.klingai.com", headers=kling.api_key_headers()) as client,
    ):
        created = client.post(
            "/text-to-video/kling-3.0", json={"prompt": "a lighthouse", "settings": {"duration": 5}}
        )
        task_id = created.json()["data"]["id"]
        while (task := client.get("/tasks", params={"task_ids": task_id}).json()["data"][0])[
            "status"
        ] != "succeeded":
            time.sleep(5)  # on the mock's clock
        url = task["outputs"][0]["url"]
        assert httpx.URL(url).host == MEDIA_HOST
        assert _mp4_seconds(client.get(url).content) == pytest.approx(5, abs=0.05)
