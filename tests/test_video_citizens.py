"""Every 2026 video task endpoint is a full citizen, as text2video is: one task store, the
lifecycle on the mock's clock, fates, fault rules, limits (its resource pack and unit cost, as
/account/costs shows), callbacks, the journal, the control API and the pytest marker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from video_helpers import URL, VIDEO_URL, created, query, wav_b64

from mockkling import Backend, Config, FateRule, Limits, catalogue, create_app
from mockkling.config import CallbackSettings
from mockkling.fates import Fate
from mockkling.server import LiveServer
from mockkling.testing import KlingMock
from mockkling.transport import SyncASGITransport

Body = Callable[[httpx.Client, dict[str, str]], dict[str, Any]]


def _session(client: httpx.Client, auth: dict[str, str], path: str) -> str:
    response = client.post(path, json={"video_url": VIDEO_URL}, headers=auth)
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["session_id"])


BODIES: dict[str, tuple[str, Body, str]] = {
    # action: (path, body maker, units of the finished task)
    "omni-video": (
        "/v1/videos/omni-video",
        lambda c, a: {"prompt": "a walk", "aspect_ratio": "1:1", "mode": "std"},
        "3",
    ),
    "motion-control": (
        "/v1/videos/motion-control",
        lambda c, a: {
            "image_url": URL,
            "video_url": VIDEO_URL,
            "character_orientation": "video",
            "mode": "pro",
        },
        "2.5",
    ),
    "avatar": ("/v1/videos/avatar/image2video", lambda c, a: {"image": URL, "sound_file": wav_b64(4)}, "1.6"),
    "advanced-lip-sync": (
        "/v1/videos/advanced-lip-sync",
        lambda c, a: {
            "session_id": _session(c, a, "/v1/videos/identify-face"),
            "face_choose": [
                {
                    "face_id": "0",
                    "sound_file": wav_b64(3),
                    "sound_start_time": 0,
                    "sound_end_time": 3000,
                    "sound_insert_time": 0,
                }
            ],
        },
        "1",
    ),
    "multi-elements": (
        "/v1/videos/multi-elements",
        lambda c, a: {
            "session_id": _session(c, a, "/v1/videos/multi-elements/init-selection"),
            "edit_mode": "addition",
            "image_list": [{"image": URL}],
            "prompt": "add a hat from <<<image_1>>> to <<<video_1>>>",
        },
        "2",
    ),
}
ACTIONS = list(BODIES)


@pytest.mark.parametrize("action", ACTIONS)
def test_lifecycle_costs_and_the_control_api(
    backend: Backend, client: httpx.Client, auth: dict[str, str], action: str
) -> None:
    path, body, units = BODIES[action]
    task = created(client, auth, path, {**body(client, auth), "external_task_id": f"{action}-1"})
    assert backend.tasks.get(task["task_id"]).action == action  # type: ignore[union-attr]
    # One task store: every query path finds it, by task_id and external_task_id.
    assert query(client, auth, "/v1/videos/text2video", f"{action}-1")["task_id"] == task["task_id"]
    control = client.get(f"/__mockkling/tasks/{task['task_id']}").json()
    assert (control["action"], control["status"]) == (action, "submitted")
    backend.advance(5)
    data = query(client, auth, path, task["task_id"])
    assert (data["task_status"], data["final_unit_deduction"]) == ("succeed", units)
    assert catalogue.ENDPOINTS[action].pack == "video"
    costs = client.get("/account/costs", params={"start_time": 0, "end_time": 2**62}, headers=auth).json()
    packs = costs["data"]["resource_pack_subscribe_infos"]
    video_pack = next(p for p in packs if p["resource_pack_name"] == "Video Generation Pack")
    assert video_pack["remaining_quantity"] == pytest.approx(1000 - float(units))
    assert [entry.path for entry in backend.journal if entry.method == "POST"][-1] == path


@pytest.mark.parametrize("action", ACTIONS)
def test_fates_and_fault_rules(
    backend: Backend, client: httpx.Client, auth: dict[str, str], action: str
) -> None:
    path, body, _units = BODIES[action]
    payload = body(client, auth)
    backend.fates.add(FateRule(Fate("failed", message="no luck"), action=action))
    failed = created(client, auth, path, payload)["task_id"]
    backend.advance(5)
    data = query(client, auth, path, failed)
    assert (data["task_status"], data["task_status_msg"], data["final_unit_deduction"]) == (
        "failed",
        "no luck",
        "0",
    )
    backend.faults.add(method="POST", path=path, code=1303, times=1)
    response = client.post(path, json=payload, headers=auth)
    assert (response.status_code, response.json()["code"], response.json()["data"]) == (429, 1303, None)
    created(client, auth, path, payload)  # the rule fired once


@pytest.mark.parametrize("action", ACTIONS)
def test_concurrency_is_counted_on_the_video_pack(auth: dict[str, str], action: str) -> None:
    backend = Backend(Config(limits=Limits(concurrency=1)))
    backend.use_manual_clock()
    path, body, _units = BODIES[action]
    with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock") as client:
        payload = body(client, auth)
        created(client, auth, "/v1/videos/text2video", {"prompt": "holds the one video slot"})
        response = client.post(path, json=payload, headers=auth)
        assert (response.status_code, response.json()["code"]) == (429, 1303)
        backend.advance(5)
        created(client, auth, path, payload)


@pytest.mark.kling_mock(queue_seconds=2, run_seconds=3)
def test_the_pytest_marker_times_the_new_endpoints(kling_mock: KlingMock) -> None:
    kling = kling_mock
    task = kling.client.post("/v1/videos/omni-video", json={"prompt": "a walk", "aspect_ratio": "16:9"})
    task_id = task.json()["data"]["task_id"]
    kling.advance(2)
    assert kling.client.get(f"/v1/videos/omni-video/{task_id}").json()["data"]["task_status"] == "processing"
    kling.advance(3)
    assert kling.client.get(f"/v1/videos/omni-video/{task_id}").json()["data"]["task_status"] == "succeed"


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    async def endpoint(request: Request) -> Response:
        received.append(orjson.loads(await request.body()))
        return Response(status_code=200)

    server = LiveServer(Starlette(routes=[Route("/{path:path}", endpoint, methods=["POST"])]))
    with server:
        yield server.url, received


@pytest.mark.slow
def test_callbacks_announce_each_status(
    receiver: tuple[str, list[dict[str, Any]]], auth: dict[str, str]
) -> None:
    import time

    url, received = receiver
    backend = Backend(Config(callbacks=CallbackSettings(attempts=2, backoff_seconds=0.01)))
    backend.use_manual_clock()
    try:
        with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock") as client:
            ids = []
            for action in ACTIONS:
                path, body, _units = BODIES[action]
                ids.append(
                    created(client, auth, path, {**body(client, auth), "callback_url": f"{url}/hook"})[
                        "task_id"
                    ]
                )
            backend.advance(1)
            backend.advance(5)
            deadline = time.monotonic() + 10
            while len(received) < 3 * len(ids) and time.monotonic() < deadline:
                time.sleep(0.01)
        statuses = {i: [r["task_status"] for r in received if r["task_id"] == i] for i in ids}
        assert statuses == {i: ["submitted", "processing", "succeed"] for i in ids}
        assert all(r["task_result"]["videos"][0]["url"] for r in received if r["task_status"] == "succeed")
    finally:
        backend.close()
