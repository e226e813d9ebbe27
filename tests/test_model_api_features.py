"""A model-in-path task is a full citizen of the one store: fates, fail words, limits (a
concurrency slot from `submitted` to its end, 1303 over it), the journal, fault rules, the
control API, resource packs; the catalogue and openapi.yaml agree; the readings the official
pages leave open switch from the config file, the command line, the environment and the pytest
marker; accounts get API keys and webhook secrets in each of them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mockkling import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_API_KEY,
    Backend,
    Config,
    ConfigError,
    Fate,
    KlingMock,
    catalogue,
    create_app,
)
from mockkling.cli import _banner, _parser, build_config
from mockkling.config import DEFAULT_WEBHOOK_SECRET
from mockkling.contents import Policy
from mockkling.spec import default_spec
from mockkling.testing import configure
from mockkling.transport import SyncASGITransport

T2V = "/text-to-video/kling-3.0"
I2V = "/image-to-video/kling-3.0"
OMNI = "/omni-video/kling-3.0-omni"
IMAGE = "https://example.com/frame.png"
SECRET = "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0MTI="


@pytest.fixture
def api(backend: Backend) -> Iterator[httpx.Client]:
    transport = SyncASGITransport(create_app(backend))
    headers = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
    with httpx.Client(transport=transport, base_url="http://mock", headers=headers) as client:
        yield client


def create(api: httpx.Client, path: str = T2V, body: dict[str, Any] | None = None) -> str:
    response = api.post(path, json=body or {"prompt": "a lighthouse"})
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["id"])


def task(api: httpx.Client, task_id: str) -> dict[str, Any]:
    [found] = api.get("/tasks", params={"task_ids": task_id}).json()["data"]
    return dict(found)


# -- the one store's features ----------------------------------------------------------------------


def test_fates_match_the_new_actions(backend: Backend, api: httpx.Client) -> None:
    backend.fates.add(Fate("failed", message="content risk control"), action="text-to-video/kling-3.0")
    failed = create(api)
    other = create(api, "/text-to-video/kling-2.6")
    backend.advance(5)
    assert task(api, failed) | {"update_time": 0} == {
        "id": failed,
        "status": "failed",
        "message": "content risk control",
        "create_time": task(api, failed)["create_time"],
        "update_time": 0,
        "outputs": [],
        "billing": [],
    }
    assert task(api, other)["status"] == "succeeded"
    backend.set_fate(create(api), "processing", seconds=60)
    backend.advance(10)
    assert task(api, backend.tasks.page(DEFAULT_ACCESS_KEY, "text-to-video/kling-3.0", 1, 1)[0].task_id)[
        "status"
    ] == ("processing")


@pytest.mark.kling_mock(fail_words=["forbidden"])
def test_fail_words_read_the_prompt_in_contents(kling_mock: KlingMock) -> None:
    body = {
        "contents": [{"type": "prompt", "text": "a forbidden scene"}, {"type": "first_frame", "url": IMAGE}]
    }
    response = kling_mock.api_client.post(I2V, json=body)
    kling_mock.advance(5)
    [found] = kling_mock.api_client.get("/tasks", params={"task_ids": response.json()["data"]["id"]}).json()[
        "data"
    ]
    assert (found["status"], found["message"]) == ("failed", "Failure to pass the risk control system")


def test_a_concurrency_slot_is_held_until_the_end(backend: Backend, api: httpx.Client) -> None:
    backend.limits.set(concurrency=2)
    first = create(api)
    legacy = api.post("/v1/videos/text2video", json={"prompt": "legacy"})  # one store, one video pack
    assert legacy.status_code == 200
    over = api.post(T2V, json={"prompt": "third"})
    assert over.status_code == 429
    assert over.json()["code"] == 1303 and "parallel task over resource pack limit" in over.json()["message"]
    assert "data" not in over.json()
    backend.advance(1)  # processing: still held
    assert api.post(T2V, json={"prompt": "third"}).status_code == 429
    backend.advance(4)  # both ended
    assert task(api, first)["status"] == "succeeded"
    assert api.post(T2V, json={"prompt": "third"}).status_code == 200


def test_the_balance_is_spent_in_the_new_rates(backend: Backend, api: httpx.Client) -> None:
    backend.limits.set(balance=10)
    body = {"prompt": "a", "settings": {"resolution": "1080p", "duration": 10}}  # 0.8 x 10 = 8 units
    create(api, T2V, body)
    refused = api.post(T2V, json=body)
    assert (refused.status_code, refused.json()["code"]) == (429, 1102)
    assert backend.limits.usage(DEFAULT_ACCESS_KEY)["balance"] == pytest.approx(2)


def test_resource_packs_draw_the_billed_units(
    backend: Backend, api: httpx.Client, auth: dict[str, str]
) -> None:
    task_id = create(api, T2V, {"prompt": "a", "settings": {"resolution": "4k", "duration": 3}})
    backend.advance(5)
    billed = float(task(api, task_id)["billing"][0]["amount"])
    assert billed == 9
    now = backend.now_ms()
    costs = api.get("/account/costs", params={"start_time": now - 86_400_000, "end_time": now}).json()["data"]
    video = [
        p for p in costs["resource_pack_subscribe_infos"] if p["resource_pack_type"] == "decreasing_total"
    ]
    assert any(p["total_quantity"] - p["remaining_quantity"] == pytest.approx(billed) for p in video), costs


def test_the_journal_faults_and_rate_limits_see_the_new_routes(backend: Backend, api: httpx.Client) -> None:
    create(api)
    entry = backend.journal.find(path=T2V)[-1]
    assert (entry.method, entry.status, entry.account) == ("POST", 200, DEFAULT_ACCESS_KEY)

    backend.faults.add("POST /text-to-video/* 5001 x1")
    faulted = api.post(T2V, json={"prompt": "a"})
    assert faulted.status_code == 503 and set(faulted.json()) == {"code", "message", "request_id"}
    assert api.post(T2V, json={"prompt": "a"}).status_code == 200

    backend.limits.set(rate=1)
    assert api.get("/tasks", params={"task_ids": "1"}).status_code == 200
    limited = api.get("/tasks", params={"task_ids": "1"})
    assert (limited.status_code, limited.json()["code"]) == (429, 1302)


def test_the_control_api_shows_and_reschedules_them(backend: Backend, api: httpx.Client) -> None:
    task_id = create(
        api, OMNI, {"contents": [{"type": "prompt", "text": "a"}], "settings": {"resolution": "1080p"}}
    )
    detail = api.get(f"/__mockkling/tasks/{task_id}").json()
    assert (detail["action"], detail["model"], detail["mode"]) == (
        "omni-video/kling-3.0-omni",
        "kling-3.0-omni",
        "1080p",
    )
    listed = api.get("/__mockkling/tasks", params={"action": "omni-video/kling-3.0-omni"}).json()["tasks"]
    assert [t["task_id"] for t in listed] == [task_id]
    fate = api.put(f"/__mockkling/tasks/{task_id}/fate", json={"status": "succeed"})
    assert fate.status_code == 200
    assert task(api, task_id)["status"] == "succeeded"


def test_timings_by_model_and_resolution() -> None:
    backend = Backend(Config(timings={"kling-3.0:4k": __import__("mockkling").Timing(0, 30)}))
    backend.use_manual_clock()
    with httpx.Client(
        transport=SyncASGITransport(create_app(backend)),
        base_url="http://mock",
        headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"},
    ) as api:
        slow = create(api, T2V, {"prompt": "a", "settings": {"resolution": "4k"}})
        quick = create(api, T2V, {"prompt": "a"})
        backend.advance(6)
        assert (task(api, slow)["status"], task(api, quick)["status"]) == ("processing", "succeeded")


def test_tasks_survive_a_restart_on_a_state_file(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    first = Backend(Config(state_file=state, seed=1))
    clock = first.use_manual_clock()
    transport = SyncASGITransport(create_app(first))
    headers = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
    with httpx.Client(transport=transport, base_url="http://mock", headers=headers) as api:
        task_id = create(
            api,
            T2V,
            {"prompt": "a", "options": {"external_task_id": "kept", "watermark_info": {"enabled": True}}},
        )
    first.close()
    second = Backend(Config(state_file=state, seed=2))
    second.use_manual_clock(clock.now_ms() + 10_000)
    with httpx.Client(
        transport=SyncASGITransport(create_app(second)), base_url="http://mock", headers=headers
    ) as api:
        [found] = api.get("/tasks", params={"external_task_ids": "kept"}).json()["data"]
        assert found["id"] == task_id and found["status"] == "succeeded"
        assert "watermark_url" in found["outputs"][0]
        assert api.post("/tasks", json={}).json()["data"]["count"] == 1
    second.close()


# -- the catalogue, one place for both designs ---------------------------------------------------


def test_the_catalogue_relates_each_model_to_its_legacy_name_and_prices() -> None:
    """720p is the legacy std, 1080p pro: where the legacy design prices the same model, five
    seconds cost the same in both."""
    compared = 0
    for route in catalogue.MODEL_ROUTES.values():
        legacy = catalogue.UNITS_5S.get(route.legacy_model)
        if legacy is None or route.operation == catalogue.MOTION_CONTROL:
            continue
        for resolution, mode in catalogue.LEGACY_MODES.items():
            std_or_pro = legacy[0] if mode == "std" else legacy[1]
            assert route.rate(catalogue.SILENT, resolution) * 5 == pytest.approx(std_or_pro), route.action
            compared += 1
    # 3.0, 2.6 and 2.5 Turbo text and image to video, 3.0 Omni and O1, at 720p and 1080p
    assert compared == 16


def test_openapi_documents_exactly_the_catalogue() -> None:
    spec = default_spec()
    operations = {op["operationId"]: (path, op) for path, method, op in spec.operations() if method == "post"}
    tagged = {path for path, _m, op in spec.operations() if "model-api" in op.get("tags", ())}
    assert tagged == {route.path for route in catalogue.MODEL_ROUTES.values()} | {"/tasks"}
    for route in catalogue.MODEL_ROUTES.values():
        path, op = operations[route.operation_id]
        assert path == route.path
        schema = spec.inline(op["requestBody"]["content"]["application/json"]["schema"])
        settings = schema["properties"]["settings"]["properties"]
        assert set(settings) == route.settings_fields(), route.action
        assert settings["resolution"]["enum"] == list(route.resolutions)
        if route.audio:
            assert settings["audio"]["enum"] == list(route.audio)
        if route.aspect_ratios:
            assert settings["aspect_ratio"]["enum"] == list(route.aspect_ratios)
        if route.durations:
            integers, strings = settings["duration"]["anyOf"]
            assert (integers["minimum"], integers["maximum"]) == (route.durations[0], route.durations[-1])
            assert strings["enum"] == [str(d) for d in route.durations]
        if route.takes_contents:
            item = schema["properties"]["contents"]["items"]["properties"]
            assert item["type"]["enum"] == list(route.items)
            assert item["text"]["maxLength"] == route.prompt_max
        else:
            assert schema["properties"]["prompt"]["maxLength"] == route.prompt_max
        assert ("settings" in schema["required"]) == route.character_orientation


def test_operation_ids_follow_the_path() -> None:
    ids = {route.action: route.operation_id for route in catalogue.MODEL_ROUTES.values()}
    assert ids["text-to-video/kling-3.0-turbo"] == "createTextToVideoKling30Turbo"
    assert ids["omni-video/kling-o1"] == "createOmniVideoKlingO1"


# -- the switches ------------------------------------------------------------------------------------


Switched = Callable[..., tuple[Backend, httpx.Client]]


@pytest.fixture
def switched() -> Iterator[Switched]:
    """``switched(**policy)``: a mock reading the pages that way, and an API-key client on it."""
    made: list[httpx.Client] = []

    def make(**policy: str) -> tuple[Backend, httpx.Client]:
        backend = Backend(Config(model_api=Policy(**policy)))
        backend.use_manual_clock()
        client = httpx.Client(
            transport=SyncASGITransport(create_app(backend)),
            base_url="http://mock",
            headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"},
        )
        made.append(client)
        return backend, client

    yield make
    for client in made:
        client.close()


def status_of(client: httpx.Client, path: str, body: dict[str, Any]) -> tuple[int, str]:
    response = client.post(path, json=body)
    return response.status_code, response.json()["message"]


def test_string_durations_switch(switched: Switched) -> None:
    body = {"prompt": "a", "settings": {"duration": "10"}}
    assert status_of(switched()[1], T2V, body)[0] == 400
    backend, client = switched(string_duration="accept")
    assert status_of(client, T2V, body)[0] == 200
    assert [t.duration for t in backend.tasks] == ["10"]


def test_data_uris_switch(switched: Switched, make_image: Any) -> None:
    uri = "data:image/png;base64," + make_image(640, 360)
    body = {"contents": [{"type": "first_frame", "url": uri}]}
    backend, client = switched()
    assert status_of(client, I2V, body)[0] == 200
    assert [catalogue.video_shape(t)[0] for t in backend.tasks] == ["640:360"]
    code, message = status_of(switched(data_uri="refuse")[1], I2V, body)
    assert code == 400 and "without the 'data:' prefix" in message
    bad = {"contents": [{"type": "first_frame", "url": "data:image/png," + make_image(640, 360)}]}
    assert "data:<type>;base64" in status_of(client, I2V, bad)[1]


def test_unlisted_settings_switch(switched: Switched) -> None:
    body = {"contents": [{"type": "first_frame", "url": IMAGE}], "settings": {"aspect_ratio": "9:16"}}
    backend, client = switched()
    assert status_of(client, I2V, body)[0] == 200
    assert catalogue.video_shape(next(iter(backend.tasks))) == ("16:9", "720p")  # ignored: the frame rules
    code, message = status_of(switched(unlisted_settings="refuse")[1], I2V, body)
    assert (code, message) == (400, "settings.aspect_ratio is not a setting of image-to-video/kling-3.0")
    turbo = {"prompt": "a", "settings": {"audio": "native"}}
    assert (
        status_of(switched(unlisted_settings="refuse")[1], "/text-to-video/kling-3.0-turbo", turbo)[0] == 400
    )


def test_empty_pages_switch(switched: Switched) -> None:
    assert switched()[1].post("/tasks", json={}).json()["data"] == {"count": 0, "has_more": False}
    full = switched(empty_page="empty")[1].post("/tasks", json={}).json()["data"]
    assert full == {"result": [], "count": 0, "has_more": False, "next_cursor": ""}


def test_omni_aspect_ratio_switch(switched: Switched) -> None:
    body: dict[str, Any] = {"contents": [{"type": "prompt", "text": "a"}]}
    assert status_of(switched()[1], OMNI, body)[0] == 200
    _backend, client = switched(aspect_ratio="require")
    code, message = status_of(client, OMNI, body)
    assert code == 400 and message.startswith("settings.aspect_ratio is required")
    assert status_of(client, OMNI, {**body, "settings": {"aspect_ratio": "1:1"}})[0] == 200
    with_frame = {"contents": [{"type": "prompt", "text": "a"}, {"type": "first_frame", "url": IMAGE}]}
    assert status_of(client, OMNI, with_frame)[0] == 200


def test_policies_load_from_every_source(tmp_path: Path) -> None:
    config_file = tmp_path / "mock.toml"
    config_file.write_text('[model_api]\nstring_duration = "accept"\n')
    args = _parser().parse_args(["serve", "--config", str(config_file), "--model-api", "empty_page=empty"])
    config = build_config(args, {"MOCKKLING_MODEL_API": "data_uri=refuse"})
    assert config.model_api == Policy(string_duration="accept", data_uri="refuse", empty_page="empty")
    assert "model_api readings: string_duration=accept, data_uri=refuse, empty_page=empty" in _banner(config)
    assert configure(model_api={"unlisted_settings": "refuse"})[0].model_api.unlisted_settings == "refuse"
    for bad in (["string_duration=maybe"], ["colour=red"], ["string_duration"]):
        with pytest.raises(ConfigError, match="model_api"):
            build_config(_parser().parse_args(["serve", *(f"--model-api={b}" for b in bad)]), {})
    with pytest.raises(ConfigError, match="model_api"):
        configure(model_api={"string_duration": "maybe"})


@pytest.mark.kling_mock(model_api={"string_duration": "accept"}, webhook_secret=SECRET)
def test_the_marker_sets_readings_and_the_webhook_secret(kling_mock: KlingMock) -> None:
    response = kling_mock.api_client.post(T2V, json={"prompt": "a", "settings": {"duration": "5"}})
    assert response.status_code == 200
    assert kling_mock.webhook_secret == SECRET


# -- API keys and webhook secrets, from every source ----------------------------------------------


def test_accounts_get_api_keys_and_secrets_from_the_command_line(tmp_path: Path) -> None:
    args = _parser().parse_args(
        [
            "serve",
            *("--access-key", "ak-1", "--secret-key", "sk-1"),
            *("--account-api-key", "ak-1=api-key-kling-one"),
            *("--webhook-secret", SECRET, "--webhook-secret", DEFAULT_WEBHOOK_SECRET),
        ]
    )
    config = build_config(args, {})
    assert config.api_keys == {"api-key-kling-one": "ak-1"}
    assert config.webhook_secret == (SECRET, DEFAULT_WEBHOOK_SECRET)
    banner = _banner(config)
    assert "webhook secret: whsec_...MTI=, " + DEFAULT_WEBHOOK_SECRET in banner  # a configured one masked
    assert SECRET not in banner
    for bad in (
        ["--account-api-key", "nobody=k"],
        ["--account-api-key", "no-equals"],
        ["--webhook-secret", "x"],
    ):
        with pytest.raises(ConfigError):
            build_config(_parser().parse_args(["serve", *bad]), {})
    unsigned = build_config(_parser().parse_args(["serve", "--webhook-secret", ""]), {})
    assert unsigned.webhook_secret == () and "webhook secret: none (callbacks unsigned)" in _banner(unsigned)


def test_defaults_and_the_environment() -> None:
    default = build_config(_parser().parse_args(["serve"]), {})
    assert default.webhook_secret == (DEFAULT_WEBHOOK_SECRET,)
    assert f"webhook secret: {DEFAULT_WEBHOOK_SECRET}" in _banner(default)
    assert f"default API key (Authorization: Bearer ...): {DEFAULT_API_KEY}" in _banner(default)
    env = build_config(
        _parser().parse_args(["serve"]), {"MOCKKLING_WEBHOOK_SECRET": f"{SECRET},{DEFAULT_WEBHOOK_SECRET}"}
    )
    assert env.webhook_secret == (SECRET, DEFAULT_WEBHOOK_SECRET)


def test_the_fixture_options_give_keys_and_secrets() -> None:
    config, _clock = configure(
        accounts={"ak-1": "sk-1", "ak-2": "sk-2"},
        api_keys={"key-1": "ak-1"},
        webhook_secret={"ak-1": SECRET, "ak-2": ""},
    )
    backend = Backend(config)
    assert backend.webhook_secrets("ak-1") == (SECRET,) and backend.webhook_secrets("ak-2") == ()
    mock = KlingMock(backend)
    try:
        assert (mock.access_key, mock.api_key, mock.webhook_secret) == ("ak-1", "key-1", SECRET)
        assert mock.api_key_headers() == {"Authorization": "Bearer key-1"}
    finally:
        mock.close()
    with pytest.raises(ConfigError, match="webhook_secret"):
        configure(webhook_secret="not-a-secret")


def test_the_handle_verifies_what_it_signs(kling_mock: KlingMock, kling_verify_webhook: Any) -> None:
    from mockkling import webhooks

    body = b'{"id":"1","status":"submitted"}'
    headers = webhooks.headers([DEFAULT_WEBHOOK_SECRET], "42", body)
    assert kling_mock.webhook_secret == DEFAULT_WEBHOOK_SECRET
    assert kling_mock.verify_webhook(headers, body) == {"id": "1", "status": "submitted"}
    assert kling_verify_webhook(DEFAULT_WEBHOOK_SECRET, headers, body)["id"] == "1"
    with pytest.raises(webhooks.WebhookError):
        kling_mock.verify_webhook(headers, body, secret=SECRET)
