"""The task lifecycle on a controlled clock: submitted -> processing -> succeed/failed, with
configured timings and outcomes, and a result video that is a real MP4."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from mockkling import DEFAULT_ACCESS_KEY, Backend, Config, FailRule, ManualClock, Timing, create_app
from mockkling.transport import SyncASGITransport

T2V = "/v1/videos/text2video"


def _create(client: httpx.Client, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post(T2V, json={"prompt": "a kitten", **body}, headers=auth)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _query(
    client: httpx.Client, auth: dict[str, str], task_id: str, action: str = "text2video"
) -> dict[str, Any]:
    response = client.get(f"/v1/videos/{action}/{task_id}", headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == 0
    data: dict[str, Any] = body["data"]
    return data


def test_default_lifecycle_and_timestamps(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    created = _create(client, auth)
    t0 = created["created_at"]
    assert created["updated_at"] == t0 == backend.now_ms()
    task_id = created["task_id"]

    data = _query(client, auth, task_id)
    assert (data["task_status"], data["updated_at"], data["task_status_msg"]) == ("submitted", t0, "")
    assert "task_result" not in data

    backend.advance(1.0)  # default: 1 s submitted
    data = _query(client, auth, task_id)
    assert (data["task_status"], data["updated_at"]) == ("processing", t0 + 1000)

    backend.advance(3.999)
    assert _query(client, auth, task_id)["task_status"] == "processing"
    backend.advance(0.001)  # then 4 s processing
    data = _query(client, auth, task_id)
    assert data["task_status"] == "succeed"
    assert data["updated_at"] == t0 + 5000
    assert data["final_unit_deduction"] == "1"
    [video] = data["task_result"]["videos"]
    assert video["duration"] == "5"
    assert video["id"]
    assert video["url"] == f"http://mock/media/videos/{task_id}.mp4"


def test_result_video_is_a_valid_mp4(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> None:
    for duration in ("5", "10"):
        task_id = _create(client, auth, duration=duration)["task_id"]
        assert client.get(f"/media/videos/{task_id}.mp4").status_code == 404  # not ready yet
        backend.advance(60)
        url = _query(client, auth, task_id)["task_result"]["videos"][0]["url"]
        response = client.get(url)
        assert response.status_code == 200
        assert response.headers["content-type"] == "video/mp4"
        content = response.content
        assert int(response.headers["content-length"]) == len(content)
        # An ISO BMFF file: an ftyp box first, and a movie header with the claimed duration.
        assert content[4:8] == b"ftyp"
        assert b"moov" in content and b"avc1" in content
        mvhd = content.index(b"mvhd")
        timescale = int.from_bytes(content[mvhd + 16 : mvhd + 20], "big")
        length = int.from_bytes(content[mvhd + 20 : mvhd + 24], "big")
        assert round(length / timescale) == int(duration)


def test_timings_per_model_and_mode() -> None:
    config = Config(
        timing=Timing(0, 1),
        timings={"kling-v1:pro": Timing(2, 10), "kling-v2-master": Timing(5, 20)},
        seed=1,
    )
    backend = Backend(config, clock=ManualClock(1_000_000))
    std = backend.create_task("mockkling-access-key", "text2video", {"prompt": "x"})
    pro = backend.create_task("mockkling-access-key", "text2video", {"prompt": "x", "mode": "pro"})
    v2 = backend.create_task(
        "mockkling-access-key", "text2video", {"prompt": "x", "model_name": "kling-v2-master"}
    )
    assert [(t.processing_ms - t.created_ms, t.done_ms - t.processing_ms) for t in (std, pro, v2)] == [
        (0, 1000),
        (2000, 10000),
        (5000, 20000),
    ]
    assert backend.status(std) == "processing"  # zero queue time: processing at once


def test_zero_timings_succeed_at_once(auth: dict[str, str]) -> None:
    backend = Backend(Config(timing=Timing(0, 0)))
    backend.use_manual_clock()
    with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock") as client:
        created = _create(client, auth)
        assert created["task_status"] == "submitted"  # a create always answers submitted
        assert _query(client, auth, created["task_id"])["task_status"] == "succeed"


def test_fail_rules_end_tasks_like_moderation(auth: dict[str, str]) -> None:
    backend = Backend(Config(fail_rules=[FailRule("forbidden"), FailRule("explode", "engine exploded")]))
    backend.use_manual_clock()
    with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock") as client:
        bad = _create(client, auth, prompt="something FORBIDDEN here")["task_id"]
        custom = _create(client, auth, prompt="please explode")["task_id"]
        good = _create(client, auth, prompt="a cat")["task_id"]
        backend.advance(1.5)
        assert _query(client, auth, bad)["task_status"] == "processing"
        backend.advance(10)
        failed = _query(client, auth, bad)
        assert failed["task_status"] == "failed"
        assert failed["task_status_msg"] == "Failure to pass the risk control system"
        assert "task_result" not in failed
        assert failed["final_unit_deduction"] == "0"
        assert _query(client, auth, custom)["task_status_msg"] == "engine exploded"
        assert _query(client, auth, good)["task_status"] == "succeed"


def test_one_store_serves_every_query_path(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    task_id = _create(client, auth)["task_id"]
    assert _query(client, auth, task_id, "image2video")["task_id"] == task_id


def test_query_by_external_task_id(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> None:
    task_id = _create(client, auth, external_task_id="order-42")["task_id"]
    data = _query(client, auth, "order-42")
    assert data["task_id"] == task_id
    assert data["task_info"] == {"external_task_id": "order-42"}


def test_status_never_goes_backwards(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> None:
    rank = {"submitted": 0, "processing": 1, "succeed": 2}
    task_id = _create(client, auth)["task_id"]
    seen = []
    for _ in range(12):
        seen.append(rank[_query(client, auth, task_id)["task_status"]])
        backend.advance(0.5)
    assert seen == sorted(seen)
    assert set(seen) == {0, 1, 2}


def test_manual_clock_refuses_to_go_back() -> None:
    clock = ManualClock(1000)
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set(999)
    assert clock.advance(ms=5) == 1005


def test_advance_needs_a_manual_clock() -> None:
    with pytest.raises(TypeError):
        Backend().advance(1)


def test_seeded_ids_are_reproducible() -> None:
    ids = []
    for _ in range(2):
        backend = Backend(Config(seed=99), clock=ManualClock(0))
        ids.append(
            [
                backend.create_task("mockkling-access-key", "text2video", {"prompt": "x"}).task_id
                for _ in range(3)
            ]
        )
    assert ids[0] == ids[1]
    assert len(set(ids[0])) == 3


def test_result_urls_follow_the_address_each_client_used(backend: Backend, auth: dict[str, str]) -> None:
    # The base URL is remembered per Host: a second client must not get the first one's address.
    app = create_app(backend)
    for base in ("http://first.test:8080", "https://second.test", "http://first.test:8080"):
        with httpx.Client(transport=SyncASGITransport(app), base_url=base) as client:
            task_id = _create(client, auth)["task_id"]
            backend.advance(10)
            [video] = _query(client, auth, task_id)["task_result"]["videos"]
            assert video["url"] == f"{base}/media/videos/{task_id}.mp4"
    # A Host header that is not a valid authority: the server's own address instead.
    with httpx.Client(transport=SyncASGITransport(app), base_url="http://mock") as client:
        task_id = _create(client, auth)["task_id"]
        backend.advance(10)
        answer = client.get(f"{T2V}/{task_id}", headers={**auth, "Host": "bad host:99999"})
        [video] = answer.json()["data"]["task_result"]["videos"]
        assert video["url"] == f"http://mock/media/videos/{task_id}.mp4"


def test_result_urls_when_the_server_address_comes_as_a_list(backend: Backend, auth: dict[str, str]) -> None:
    # Some servers and test clients (Starlette's, schemathesis's) give scope["server"] as a list.
    task = backend.create_task(DEFAULT_ACCESS_KEY, "text2video", {"prompt": "a kitten"})
    backend.advance(10)
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": f"{T2V}/{task.task_id}",
        "raw_path": f"{T2V}/{task.task_id}".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [[b"authorization", auth["Authorization"].encode()]],
        "client": ["127.0.0.1", 50000],
        "server": ["testserver", 80],
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(create_app(backend)(scope, receive, send))
    assert sent[0]["status"] == 200, sent
    [video] = json.loads(sent[1]["body"])["data"]["task_result"]["videos"]
    assert video["url"] == f"http://testserver/media/videos/{task.task_id}.mp4"


def test_an_overlong_host_is_answered_but_not_remembered(backend: Backend, auth: dict[str, str]) -> None:
    from mockkling.routes import official

    host = "h" * 300 + ".test"
    with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url=f"http://{host}") as client:
        task_id = _create(client, auth)["task_id"]
        backend.advance(10)
        remembered = len(official._base_urls)
        [video] = _query(client, auth, task_id)["task_result"]["videos"]
    assert video["url"] == f"http://{host}/media/videos/{task_id}.mp4"
    assert len(official._base_urls) == remembered
