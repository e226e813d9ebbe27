"""Fault rules, in process: which requests they match, what they answer, how often they fire,
and where they come from (Python, config file, command line)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from mockkling import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_API_KEY,
    DEFAULT_SECRET_KEY,
    Backend,
    Config,
    ConfigError,
    FaultRule,
    KlingMock,
    RuleError,
    Timing,
    create_app,
    make_jwt,
)
from mockkling.cli import _parser, build_config
from mockkling.fault_rules import SURFACES as FAULT_SURFACES
from mockkling.request_layer import DroppedConnection
from mockkling.transport import SyncASGITransport

T2V = "/v1/videos/text2video"
I2V = "/v1/videos/image2video"


def _create(client: httpx.Client, auth: dict[str, str], **body: Any) -> httpx.Response:
    return client.post(T2V, json={"prompt": "a kitten", **body}, headers=auth)


# -- answers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (1201, 400),
        (1000, 401),
        (1004, 401),
        (1103, 403),
        (1302, 429),
        (1303, 429),
        (1102, 429),
        (5000, 500),
        (5001, 503),
        (5002, 504),
    ],
)
def test_error_rule_answers_the_official_code_with_its_status(
    backend: Backend, client: httpx.Client, auth: dict[str, str], code: int, status: int
) -> None:
    backend.faults.add(code=code)
    response = _create(client, auth)
    assert response.status_code == status
    body = response.json()
    assert body["code"] == code and body["data"] is None and body["request_id"]
    assert body["message"]
    assert len(backend.tasks) == 0  # the request never reached the service


def test_error_rule_carries_its_message(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> None:
    backend.faults.add(code=1201, message="prompt: too many kittens")
    assert _create(client, auth).json()["message"] == "prompt: too many kittens"


def test_status_alone_picks_the_only_code_and_refuses_an_ambiguous_one() -> None:
    assert FaultRule(status=503).code == 5001
    assert FaultRule(status=403).code == 1103
    with pytest.raises(RuleError, match=r"several business codes .*1302"):
        FaultRule(status=429)
    with pytest.raises(RuleError, match="answers HTTP 429, not 500"):
        FaultRule(code=1302, status=500)
    with pytest.raises(RuleError, match="not an official business code"):
        FaultRule(code=4242)
    with pytest.raises(RuleError, match="no official business code"):
        FaultRule(status=418)


def test_fail_twice_then_succeed(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> None:
    rule = backend.faults.add(code=5001, times=2)
    statuses = [_create(client, auth).status_code for _ in range(4)]
    assert statuses == [503, 503, 200, 200]
    assert (rule.fired, rule.remaining) == (2, 0)
    assert len(backend.tasks) == 2


def test_rules_apply_in_order_and_the_first_that_fires_wins(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    backend.faults.add(code=1302, times=1)
    backend.faults.add(code=5000, times=1)
    assert [_create(client, auth).json()["code"] for _ in range(3)] == [1302, 5000, 0]


def test_latency_waits_then_the_request_proceeds(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    waited: list[float] = []

    async def record(seconds: float) -> None:
        waited.append(seconds)

    backend.faults.sleep = record  # observe the delay instead of waiting for it
    backend.faults.add("delay=1.5s")
    response = _create(client, auth)
    assert response.status_code == 200 and response.json()["data"]["task_status"] == "submitted"
    assert waited == [1.5]


def test_latency_then_error(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> None:
    waited: list[float] = []

    async def record(seconds: float) -> None:
        waited.append(seconds)

    backend.faults.sleep = record
    backend.faults.add(code=5002, delay_ms=250)
    assert _create(client, auth).status_code == 504
    assert waited == [0.25]


def test_drop_reaches_an_in_process_client_as_a_protocol_error(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    backend.faults.add(fault="drop")
    with pytest.raises(httpx.RemoteProtocolError) as caught:
        _create(client, auth)
    assert isinstance(caught.value, DroppedConnection)
    assert len(backend.tasks) == 0  # dropped before it was handled


def test_malformed_body_is_handled_then_cut(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    backend.faults.add(fault="malformed", times=1)
    response = _create(client, auth)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert len(backend.tasks) == 1  # the task exists: only the answer was lost
    assert _create(client, auth).json()["code"] == 0


# -- matching ---------------------------------------------------------------------------------


def test_match_on_method_and_path_glob(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> None:
    backend.faults.add("GET /v1/videos/*/* 5000")
    task_id = _create(client, auth).json()["data"]["task_id"]
    assert client.get(T2V, headers=auth).status_code == 200  # the list is not */*
    assert client.get(f"{T2V}/{task_id}", headers=auth).status_code == 500
    assert client.get(f"{I2V}/{task_id}", headers=auth).status_code == 500


def test_match_on_model_and_prompt(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> None:
    backend.faults.add(model="kling-v2-master", code=1103)
    backend.faults.add(prompt="DRAGON", code=1301)
    assert _create(client, auth, model_name="kling-v2-master").status_code == 403
    assert _create(client, auth, model_name="kling-v1-6").status_code == 200
    refused = _create(client, auth, prompt="a small dragon, sleeping")
    assert (refused.status_code, refused.json()["code"]) == (400, 1301)
    assert _create(client, auth, prompt="a cat").status_code == 200


def test_a_model_rule_matches_the_model_in_a_model_in_path_create(
    backend: Backend, client: httpx.Client
) -> None:
    backend.faults.add(model="kling-3.0", code=1303)
    key = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
    refused = client.post("/text-to-video/kling-3.0", json={"prompt": "a"}, headers=key)
    assert (refused.status_code, refused.json()["code"]) == (429, 1303)
    assert client.post("/text-to-video/kling-2.6", json={"prompt": "a"}, headers=key).status_code == 200


def test_a_body_rule_does_not_lose_the_body(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    """The layer reads the body to match it, then hands the very same body to the app."""
    backend.faults.add(prompt="never-there", code=5000)
    response = _create(client, auth, external_task_id="order-7", duration="10")
    assert response.status_code == 200
    [task] = backend.tasks
    assert (task.external_task_id, task.duration) == ("order-7", "10")


def test_match_on_account(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> None:
    backend.add_account("other-ak", "other-secret")
    other = {"Authorization": f"Bearer {make_jwt('other-ak', 'other-secret')}"}
    backend.faults.add(account="other-ak", code=1102)
    assert _create(client, other).json()["code"] == 1102
    assert _create(client, auth).json()["code"] == 0
    # A raw key acts for its account too; a request whose credentials are refused matches no account.
    backend.add_api_key("sk-other", "other-ak")
    assert _create(client, {"Authorization": "Bearer sk-other"}).json()["code"] == 1102
    assert _create(client, {"Authorization": "Bearer nope"}).json()["code"] == 1002


def test_match_on_surface(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> None:
    backend.faults.add(surface="official", code=5001)
    assert _create(client, auth).status_code == 503
    assert client.get("/openapi.yaml").status_code == 200  # not on the official surface
    assert client.get("/__mockkling/faults").status_code == 200  # the control API is never disturbed


def test_every_surface_a_rule_can_name_is_one_requests_are_on(backend: Backend, client: httpx.Client) -> None:
    """Each name a rule takes catches that surface's requests and no other's; other names
    (the openapi tag "model-api", a typo) are refused when the rule is made."""
    key = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
    requests = {
        "official": lambda: client.get(T2V, headers=key),
        "gateway": lambda: client.get("/v1/video/generations/nope", headers=key),
        "model_api": lambda: client.get("/tasks", params={"task_ids": "1"}, headers=key),
        "media": lambda: client.get("/media/videos/nope.mp4"),
    }
    assert set(requests) == set(FAULT_SURFACES)
    for name in requests:
        rule = backend.faults.add(surface=name, code=5002)
        assert {other: send_other().status_code == 504 for other, send_other in requests.items()} == {
            other: other == name for other in requests
        }
        backend.faults.remove(rule.id)
    for wrong in ("model-api", "nonsense", "control"):
        with pytest.raises(RuleError, match="surface must be one of"):
            backend.faults.add(surface=wrong, code=5000)


def test_error_on_an_unknown_path_uses_the_official_envelope(backend: Backend, client: httpx.Client) -> None:
    backend.faults.add(path="/nowhere", code=5000)
    body = client.get("/nowhere").json()
    assert body["code"] == 5000 and "request_id" in body


def test_disabled_faults_keep_their_rules_but_fire_none(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    backend.faults.add(code=5000)
    backend.faults.enabled = False
    assert _create(client, auth).status_code == 200
    backend.faults.enabled = True
    assert _create(client, auth).status_code == 500


def test_remove_and_clear(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> None:
    first = backend.faults.add(code=5000)
    backend.faults.add(code=5001)
    assert backend.faults.remove(first.id) and not backend.faults.remove(first.id)
    assert _create(client, auth).status_code == 503
    backend.faults.clear()
    assert _create(client, auth).status_code == 200


# -- probability --------------------------------------------------------------------------------


def _pattern(seed: int | None, config_seed: int = 3, n: int = 60) -> list[int]:
    backend = Backend(Config(seed=config_seed, timing=Timing(0, 0)))
    backend.use_manual_clock()
    backend.faults.add(code=5000, probability=0.3, seed=seed)
    headers = {"Authorization": f"Bearer {make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)}"}
    with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock") as client:
        return [client.get(T2V, headers=headers).status_code for _ in range(n)]


def test_probability_rules_replay_under_the_same_seed() -> None:
    first = _pattern(seed=7)
    assert _pattern(seed=7) == first
    assert _pattern(seed=8) != first
    assert 5 <= first.count(500) <= 35 and set(first) == {200, 500}
    # Without a seed of its own, a rule draws from the backend's seed and its id: still reproducible.
    assert _pattern(seed=None) == _pattern(seed=None)
    assert _pattern(seed=None, config_seed=4) != _pattern(seed=None)


def test_probability_with_times_counts_only_the_fired(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    rule = backend.faults.add(code=5000, probability=0.5, times=3, seed=1)
    statuses = [client.get(T2V, headers=auth).status_code for _ in range(40)]
    assert statuses.count(500) == 3 and rule.remaining == 0


# -- where rules come from -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("POST /v1/videos/* 1303 x2", {"method": "POST", "path": "/v1/videos/*", "code": 1303, "times": 2}),
        ("503 p=0.25 seed=7", {"status": 503, "code": 5001, "probability": 0.25, "seed": 7}),
        ("drop surface=official", {"fault": "drop", "surface": "official"}),
        ("malformed times=1", {"fault": "malformed", "times": 1}),
        ("delay=2s", {"delay_ms": 2000}),
        ("delay=250ms code=5002", {"delay_ms": 250, "code": 5002}),
        ("get /x delay_ms=40", {"method": "GET", "path": "/x", "delay_ms": 40}),
        (
            "1301 prompt='a red dragon' model=kling-v1",
            {"code": 1301, "prompt": "a red dragon", "model": "kling-v1"},
        ),
        ("1201 message='prompt: bad' account=ak", {"code": 1201, "message": "prompt: bad", "account": "ak"}),
    ],
)
def test_compact_syntax(spec: str, expected: dict[str, Any]) -> None:
    rule = FaultRule.parse(spec)
    assert {k: v for k, v in rule.to_dict().items() if k in expected} == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "cannot be empty"),
        ("teapot", "cannot read 'teapot'"),
        ("503 503", "gives status twice"),
        ("/x", "needs an action"),
        ("5000 drop", "not both"),
        ("delay=soon", "delay must be like"),
        ("times=two 5000", "times must be an integer"),
        ("5000 p=2", r"probability must be a number in \(0, 1\]"),
        ("5000 x0", "times must be >= 1"),
        ("5000 colour=red", "unknown fault rule keys"),
        ("5000 'unclosed", "No closing quotation"),
        ("5000 method=BREW", "method must be one of"),
    ],
)
def test_compact_syntax_errors_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        FaultRule.parse(spec)


def test_rules_from_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "mock.toml"
    path.write_text(
        """
[[faults]]
method = "POST"
path = "/v1/videos/*"
code = 1303
times = 2

[[faults]]
fault = "drop"
probability = 0.1
seed = 7
"""
    )
    config = Config.from_file(path)
    assert config.faults[0].code == 1303
    backend = Backend(config)
    assert [r.rule.fault for r in backend.faults] == [None, "drop"]
    assert [r.remaining for r in backend.faults] == [2, None]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("faults = 3", "faults must be of type list"),
        ("faults = [1]", r"faults\[0\] must be of type dict"),
        ('[[faults]]\ncode = "x"', r"faults\[0\]: code must be an integer"),
        ("[[faults]]\nsurface = 'official'", r"faults\[0\]: a fault rule needs an action"),
        ("[[faults]]\ncode = 5000\nwhen = 'now'", r"unknown fault rule keys \['when'\]"),
    ],
)
def test_bad_rules_in_the_config_file_are_refused(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "mock.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        Config.from_file(path)


def test_rules_from_the_command_line_follow_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "mock.toml"
    path.write_text("[[faults]]\ncode = 5000\ntimes = 1\n")
    args = _parser().parse_args(
        ["serve", "--config", str(path), "--fault", "POST /v1/* 1302 x2", "--fault", "drop p=0.5"]
    )
    config = build_config(args, environ={})
    assert [(r.code, r.fault, r.times) for r in config.faults] == [
        (5000, None, 1),
        (1302, None, 2),
        (None, "drop", None),
    ]


def test_a_bad_command_line_rule_stops_the_server() -> None:
    args = _parser().parse_args(["serve", "--fault", "502"])
    with pytest.raises(ConfigError, match="no official business code"):
        build_config(args, environ={})


def test_reset_restores_the_configured_rules_with_fresh_counters(auth: dict[str, str]) -> None:
    backend = Backend(Config(faults=[FaultRule(code=5000, times=1)]))
    backend.use_manual_clock()
    with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock") as client:
        backend.faults.add(code=1302)
        assert [client.get(T2V, headers=auth).status_code for _ in range(2)] == [500, 429]
        backend.reset()
        assert [client.get(T2V, headers=auth).status_code for _ in range(2)] == [500, 200]


# -- the gateway surface ------------------------------------------------------------------------


def test_faults_answer_in_the_gateway_surface_format(backend: Backend, client: httpx.Client) -> None:
    backend.faults.add(surface="gateway", code=1302, times=1)
    key = {"Authorization": DEFAULT_API_KEY}  # the gateway takes a bare sk- key
    body = {"model": "kling-v1", "prompt": "a cat", "duration": 5}
    refused = client.post("/v1/video/generations", json=body, headers=key)
    assert refused.status_code == 429
    assert refused.json()["data"] is None and isinstance(refused.json()["code"], str)
    assert "request_id" not in refused.json()  # not the official envelope
    assert client.post("/v1/video/generations", json=body, headers=key).status_code == 200
    # The official surface is another surface.
    assert client.get(T2V, headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"}).status_code == 200


def test_a_fate_error_code_reaches_the_gateway_surface(backend: Backend, client: httpx.Client) -> None:
    key = {"Authorization": DEFAULT_API_KEY}
    created = client.post(
        "/v1/video/generations", json={"model": "kling-v1", "prompt": "a cat", "duration": 5}, headers=key
    )
    task_id = created.json()["task_id"]
    backend.set_fate(task_id, "failed", message="GPU on fire", error_code=4290)
    error = client.get(f"/v1/video/generations/{task_id}", headers=key).json()["error"]
    assert error == {"code": 4290, "message": "video generation failed: GPU on fire"}
    # Without a code of its own, a failure keeps the gateway's.
    other = client.post(
        "/v1/video/generations", json={"model": "kling-v1", "prompt": "a dog", "duration": 5}, headers=key
    )
    backend.set_fate(other.json()["task_id"], "failed")
    assert (
        client.get(f"/v1/video/generations/{other.json()['task_id']}", headers=key).json()["error"]["code"]
        == 4001
    )


# -- from the pytest plugin's handle ---------------------------------------------------------------


@pytest.mark.kling_mock(faults=["POST /v1/videos/* 1303 x1"], limits={"rate": 2, "per_seconds": 60})
def test_the_marker_configures_faults_and_limits(kling_mock: Any) -> None:
    client = kling_mock.client
    assert client.post(T2V, json={"prompt": "a cat"}).json()["code"] == 1303  # the fault, once
    # A request a fault answered never reached the service: it spent no token.
    assert client.post(T2V, json={"prompt": "a cat"}).json()["code"] == 0
    assert client.get(T2V).json()["code"] == 0
    assert client.get(T2V).json()["code"] == 1302  # the third request this minute
    entries = kling_mock.journal.assert_requested(count=2, method="POST", path="/v1/videos/*")
    assert [e.json()["prompt"] for e in entries] == ["a cat", "a cat"]


def test_the_handle_reaches_faults_fates_limits_and_the_journal(kling_mock: Any) -> None:
    kling_mock.faults.add(code=5001, times=1)
    assert kling_mock.client.get(T2V).status_code == 503
    task_id = kling_mock.client.post(T2V, json={"prompt": "x"}).json()["data"]["task_id"]
    kling_mock.set_fate(task_id, "failed", message="nope")
    assert kling_mock.client.get(f"{T2V}/{task_id}").json()["data"]["task_status_msg"] == "nope"
    assert kling_mock.limits.usage(kling_mock.access_key)["tokens"] is None
    assert len(kling_mock.fates) == 0
    with pytest.raises(AssertionError, match=r"expected 1 request\(s\) matching method='PUT', found 0"):
        kling_mock.journal.assert_requested(count=1, method="PUT")


@pytest.mark.parametrize(
    ("options", "message"),
    [({"faults": ["teapot"]}, "cannot read 'teapot'"), ({"limits": {"rate": 0}}, "rate must be an integer")],
)
def test_bad_marker_options_are_refused(options: dict[str, Any], message: str) -> None:
    from mockkling.testing import configure

    with pytest.raises(ConfigError, match=message):
        configure(**options)


def test_drop_reaches_an_in_process_async_client_as_a_protocol_error() -> None:
    with KlingMock.in_process(faults=["drop"]) as mock:

        async def create() -> None:
            async with mock.async_client() as client:
                await client.post("/v1/videos/text2video", json={"prompt": "a cat"})

        with pytest.raises(httpx.RemoteProtocolError) as caught:
            asyncio.run(create())
        assert isinstance(caught.value, DroppedConnection)
        assert mock.tasks == []


def test_drop_reaches_a_stock_httpx_asgi_transport_as_a_protocol_error(
    backend: Backend, auth: dict[str, str]
) -> None:
    # The README's own async set-up: httpx's ASGITransport, not one of ours.
    async def create() -> None:
        transport = httpx.ASGITransport(app=create_app(backend))
        async with httpx.AsyncClient(transport=transport, base_url="http://mock") as client:
            await client.post("/v1/videos/text2video", json={"prompt": "a cat"}, headers=auth)

    backend.faults.add(fault="drop")
    with pytest.raises(httpx.TransportError):
        asyncio.run(create())
    assert len(backend.tasks) == 0


@pytest.mark.slow
def test_a_server_without_httpx_loaded_drops_with_its_own_error(
    fresh_python: Callable[[str], list[str]],
) -> None:
    code = (
        "import sys; from mockkling.request_layer import dropped_connection, DroppedConnection;"
        "e = dropped_connection('x'); print('httpx' in sys.modules, type(e) is DroppedConnection)"
    )
    assert fresh_python(code) == ["False", "True"]
