"""The new endpoints (issue 16) are full citizens: fates, fault rules, limits by their pack kind
and cost, account costs, callbacks, the journal, the control API and the pytest marker treat
them as they treat text2video."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from jsonschema import Draft202012Validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mockkling import Backend, Config, Fate, Limits, Timing, catalogue, create_app
from mockkling.config import CallbackSettings
from mockkling.server import LiveServer
from mockkling.spec import default_spec
from mockkling.testing import KlingMock
from mockkling.transport import SyncASGITransport

pytest_plugins = ["pytester"]

T2A = "/v1/audio/text-to-audio"
V2A = "/v1/audio/video-to-audio"
OMNI = "/v1/images/omni-image"
T2V = "/v1/videos/text2video"
TTS = "/v1/audio/tts"
SOUND = {"prompt": "a bell rings twice", "duration": 4.0}


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _client(backend: Backend) -> httpx.Client:
    return httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock")


def _backend(**config: Any) -> Backend:
    backend = Backend(Config(seed=3, **config))
    backend.use_manual_clock()
    return backend


def test_fates_apply_to_the_new_actions(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> None:
    backend.fates.add(Fate("failed", message="content risk control"), action="text-to-audio")
    failed = ok(client.post(T2A, json=SOUND, headers=auth))["task_id"]
    fine = ok(client.post(OMNI, json={"prompt": "x", "aspect_ratio": "1:1"}, headers=auth))["task_id"]
    task = ok(client.get(f"{T2A}/{failed}", headers=auth))
    assert (task["task_status"], task["task_status_msg"]) == ("failed", "content risk control")
    assert "task_result" not in task and task["final_unit_deduction"] == "0"
    # A held task, through the control API.
    held = client.put(f"/__mockkling/tasks/{fine}/fate", json={"status": "processing", "seconds": 60})
    assert held.status_code == 200, held.text
    backend.advance(30)
    assert ok(client.get(f"{OMNI}/{fine}", headers=auth))["task_status"] == "processing"
    backend.advance(31)
    assert ok(client.get(f"{OMNI}/{fine}", headers=auth))["task_status"] == "succeed"


def test_fault_rules_reach_the_new_paths(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    backend.faults.add(path="/v1/general/*", code=1303, times=1)
    response = client.get("/v1/general/presets-voices", headers=auth)
    assert (response.status_code, response.json()["code"]) == (429, 1303)
    assert client.get("/v1/general/presets-voices", headers=auth).status_code == 200


def test_concurrency_is_counted_per_pack_kind() -> None:
    """Audio tasks hold audio slots, image tasks one slot per image, apart from video."""
    from mockkling import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, make_jwt

    auth = {"Authorization": f"Bearer {make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)}"}
    backend = _backend(timing=Timing(0, 10), limits=Limits(concurrency=2))
    with _client(backend) as client:
        ok(client.post(T2A, json=SOUND, headers=auth))
        ok(client.post(V2A, json={"video_url": "https://e.com/v.mp4"}, headers=auth))
        refused = client.post(T2A, json=SOUND, headers=auth)
        assert (refused.status_code, refused.json()["code"]) == (429, 1303)
        ok(client.post(T2V, json={"prompt": "x"}, headers=auth))  # video slots are apart
        too_many = client.post(OMNI, json={"prompt": "x", "aspect_ratio": "1:1", "n": 3}, headers=auth)
        assert (too_many.status_code, too_many.json()["code"]) == (429, 1303)
        ok(client.post(OMNI, json={"prompt": "x", "aspect_ratio": "1:1", "n": 2}, headers=auth))
        backend.advance(10)
        ok(client.post(T2A, json=SOUND, headers=auth))


def test_balance_and_account_costs_draw_each_endpoints_price() -> None:
    from mockkling import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, make_jwt

    auth = {"Authorization": f"Bearer {make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)}"}
    backend = _backend(timing=Timing(0, 1), limits=Limits(balance=0.6))
    with _client(backend) as client:
        ok(client.post(T2A, json=SOUND, headers=auth))  # 0.25
        ok(
            client.post(TTS, json={"text": "hi", "voice_id": "AOT", "voice_language": "en"}, headers=auth)
        )  # 0.05
        ok(client.post(V2A, json={"video_url": "https://e.com/v.mov"}, headers=auth))  # 0.25
        spent = client.post(T2A, json=SOUND, headers=auth)
        assert (spent.status_code, spent.json()["code"]) == (429, 1102)
        backend.advance(2)
        now = backend.now_ms()
        costs = ok(client.get("/account/costs", params={"start_time": 0, "end_time": now}, headers=auth))
        packs = {p["resource_pack_name"]: p for p in costs["resource_pack_subscribe_infos"]}
        assert packs["Audio Generation Pack"]["remaining_quantity"] == pytest.approx(100 - 0.55)
        assert packs["Video Generation Pack"]["remaining_quantity"] == 1000


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    async def endpoint(request: Request) -> Response:
        received.append(orjson.loads(await request.body()))
        return Response(status_code=200)

    with LiveServer(Starlette(routes=[Route("/hook", endpoint, methods=["POST"])])) as server:
        yield f"{server.url}/hook", received


@pytest.mark.slow
def test_callbacks_carry_the_audio_results(receiver: tuple[str, list[dict[str, Any]]]) -> None:
    from mockkling import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, make_jwt

    url, received = receiver
    auth = {"Authorization": f"Bearer {make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)}"}
    settings = CallbackSettings(attempts=2, backoff_seconds=0.01, timeout_seconds=5.0)
    backend = _backend(callbacks=settings, public_url="http://mock.test")
    with _client(backend) as client:
        task_id = ok(client.post(T2A, json={**SOUND, "callback_url": url}, headers=auth))["task_id"]
        backend.advance(10)
        spec = default_spec()
        schema = spec.inline(spec.document["components"]["schemas"]["CallbackTask"])
        import time

        deadline = time.monotonic() + 10
        while len(received) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        backend.close()
    assert [body["task_status"] for body in received] == ["submitted", "processing", "succeed"]
    final = received[-1]
    assert final["task_id"] == task_id
    assert final["task_result"]["audios"][0]["url_mp3"].startswith("http://mock.test/media/audios/")
    for body in received:
        Draft202012Validator(schema).validate(body)


def test_journal_and_control_api_see_the_new_endpoints(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    task_id = ok(client.post(T2A, json=SOUND, headers=auth))["task_id"]
    element = ok(
        client.post(
            "/v1/general/custom-elements",
            json={
                "element_name": "e",
                "element_description": "d",
                "element_frontal_image": "https://e.com/a.png",
                "element_refer_list": [{"image_url": "https://e.com/b.png"}],
            },
            headers=auth,
        )
    )
    paths = [e["path"] for e in client.get("/__mockkling/journal").json()["requests"]]
    assert T2A in paths and "/v1/general/custom-elements" in paths
    tasks = {t["task_id"]: t for t in client.get("/__mockkling/tasks").json()["tasks"]}
    assert tasks[task_id]["action"] == "text-to-audio"
    assert tasks[str(element["element_id"])]["action"] == catalogue.CUSTOM_ELEMENTS


@pytest.mark.kling_mock(queue_seconds=0, run_seconds=3)
def test_the_marker_times_the_new_endpoints(kling_mock: KlingMock) -> None:
    task_id = kling_mock.client.post(T2A, json=SOUND).json()["data"]["task_id"]
    assert kling_mock.client.get(f"{T2A}/{task_id}").json()["data"]["task_status"] == "processing"
    kling_mock.advance(3)
    task = kling_mock.client.get(f"{T2A}/{task_id}").json()["data"]
    assert task["task_status"] == "succeed"
    assert kling_mock.client.get(task["task_result"]["audios"][0]["url_wav"]).status_code == 200


# -- the contract kit's checks for these endpoints, against tasks that exist ----------------------


def seeded_backend() -> Backend:
    """A mock whose account has a finished task (with an external id) on each new endpoint."""
    from mockkling import DEFAULT_ACCESS_KEY

    backend = Backend(Config(seed=5, timing=Timing(0, 0)))
    for action, body in [
        ("omni-image", {"prompt": "x", "aspect_ratio": "1:1", "n": 2}),
        ("multi-image2image", {"subject_image_list": [{"subject_image": "https://e.com/a.png"}]}),
        ("text-to-audio", SOUND),
        ("video-to-audio", {"video_url": "https://e.com/v.mp4"}),
        (catalogue.CUSTOM_VOICES, {"voice_name": "v", "voice_url": "https://e.com/a.mp3"}),
        (catalogue.AI_MULTI_SHOT, {"element_frontal_image": "https://e.com/a.png"}),
    ]:
        backend.create_task(DEFAULT_ACCESS_KEY, action, {**body, "external_task_id": f"seed-{action}"})
    return backend


def seeded_mock() -> Any:
    return create_app(seeded_backend())


def without_audio_results() -> Any:
    """The seeded mock with a bug: finished audio tasks lose their clips."""
    app = create_app(seeded_backend())

    async def broken(scope: Any, receive: Any, send: Any) -> None:
        async def strip(message: Any) -> None:
            if message["type"] == "http.response.body" and scope["path"] == T2A and message.get("body"):
                body = orjson.loads(message["body"])
                for task in body.get("data") or []:
                    task.get("task_result", {}).pop("audios", None)
                message = {**message, "body": orjson.dumps(body)}
            await send(message)

        await app(scope, receive, strip)

    return broken


def _kit(pytester: pytest.Pytester, app: str) -> pytest.RunResult:
    from mockkling import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY
    from mockkling.contract import suite_path

    suite = suite_path()
    return pytester.runpytest_inprocess(
        "-p",
        "no:benchmark",
        str(suite / "test_contract_images_audio.py"),
        "-c",
        str(suite / "pytest.ini"),
        "--rootdir",
        str(suite),
        "--kling-app",
        f"{__name__}:{app}",
        "--kling-access-key",
        DEFAULT_ACCESS_KEY,
        "--kling-secret-key",
        DEFAULT_SECRET_KEY,
        "-p",
        "no:unraisableexception",
    )


def test_the_contract_kit_checks_existing_tasks_on_the_new_endpoints(pytester: pytest.Pytester) -> None:
    result = _kit(pytester, "seeded_mock")
    assert result.ret == 0, result.stdout.str()
    outcomes = result.parseoutcomes()
    assert outcomes.get("skipped", 0) == 0 and outcomes["passed"] == 22


def test_the_contract_kit_finds_missing_audio_results(pytester: pytest.Pytester) -> None:
    result = _kit(pytester, "without_audio_results")
    assert result.ret != 0
    failed = {r.nodeid.split("::")[-1] for r in result.reprec.listoutcomes()[2]}  # type: ignore[attr-defined]
    assert failed == {"test_existing_tasks_are_lawful[/v1/audio/text-to-audio]"}
