"""GET /account/costs: the account's resource packs as the official API shows them, drawn down
by the account's finished tasks, with the official status values."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mockkling import Backend, Config, ConfigError, ResourcePack, create_app, make_jwt
from mockkling.transport import SyncASGITransport

COSTS = "/account/costs"
ALWAYS = {"start_time": 0, "end_time": 10**13}
DAY_MS = 24 * 3600 * 1000


def _packs(client: httpx.Client, auth: dict[str, str], **params: Any) -> dict[str, dict[str, Any]]:
    response = client.get(COSTS, params={**ALWAYS, **params}, headers=auth)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["code"] == 0
    assert (payload["data"]["code"], payload["data"]["msg"]) == (0, "success")
    return {p["resource_pack_name"]: p for p in payload["data"]["resource_pack_subscribe_infos"]}


def _run(client: httpx.Client, auth: dict[str, str], path: str, body: dict[str, Any]) -> None:
    assert client.post(path, json=body, headers=auth).status_code == 200


def test_default_packs_and_what_finished_tasks_draw(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    packs = _packs(client, auth)
    assert set(packs) == {
        "Video Generation Pack",
        "Image Generation Pack",
        "Virtual Try-On Pack",
        "Audio Generation Pack",
    }
    video = packs["Video Generation Pack"]
    assert video["resource_pack_type"] == "decreasing_total"
    assert (video["total_quantity"], video["remaining_quantity"], video["status"]) == (1000, 1000, "online")
    assert video["purchase_time"] <= video["effective_time"] < video["invalid_time"]
    assert video["resource_pack_id"]

    _run(client, auth, "/v1/videos/text2video", {"prompt": "a", "mode": "pro", "duration": "10"})  # 7 units
    _run(client, auth, "/v1/images/generations", {"prompt": "a", "n": 4})  # 4 x 0.25
    _run(
        client,
        auth,
        "/v1/images/kolors-virtual-try-on",
        {"human_image": "https://a/b", "cloth_image": "https://a/c"},
    )
    # Nothing is drawn before the tasks finish.
    assert {p["remaining_quantity"] for p in _packs(client, auth).values()} == {1000, 100}
    backend.advance(5)
    packs = _packs(client, auth)
    assert packs["Video Generation Pack"]["remaining_quantity"] == 993
    assert packs["Image Generation Pack"]["remaining_quantity"] == 999
    assert packs["Virtual Try-On Pack"]["remaining_quantity"] == 99


def test_failed_tasks_draw_nothing(auth: dict[str, str]) -> None:
    from mockkling import FailRule

    backend = Backend(Config(fail_rules=[FailRule("bad")]))
    backend.use_manual_clock()
    with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock") as client:
        _run(client, auth, "/v1/videos/text2video", {"prompt": "bad"})
        backend.advance(5)
        assert _packs(client, auth)["Video Generation Pack"]["remaining_quantity"] == 1000


def test_each_account_has_its_own_packs(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> None:
    backend.add_account("other-ak", "other-secret-key-with-plenty-of-bytes")
    other = {"Authorization": f"Bearer {make_jwt('other-ak', 'other-secret-key-with-plenty-of-bytes')}"}
    _run(client, auth, "/v1/videos/text2video", {"prompt": "a"})
    backend.advance(5)
    mine, theirs = _packs(client, auth), _packs(client, other)
    assert mine["Video Generation Pack"]["remaining_quantity"] == 999
    assert theirs["Video Generation Pack"]["remaining_quantity"] == 1000
    assert (
        mine["Video Generation Pack"]["resource_pack_id"]
        != theirs["Video Generation Pack"]["resource_pack_id"]
    )


@pytest.fixture
def configured(auth: dict[str, str]) -> Iterator[tuple[Backend, httpx.Client]]:
    start = 1_800_000_000_000
    packs = [
        ResourcePack("late", "video", 10, effective_time=start - DAY_MS, invalid_time=start + 90 * DAY_MS),
        ResourcePack("soon", "video", 2, effective_time=start - DAY_MS, invalid_time=start + 10 * DAY_MS),
        ResourcePack("old", "video", 5, effective_time=start - 90 * DAY_MS, invalid_time=start - DAY_MS),
        ResourcePack("next", "image", 50, "constant_period", start + 30 * DAY_MS, start + 60 * DAY_MS),
    ]
    backend = Backend(Config(resource_packs=packs))
    backend.use_manual_clock(start)
    with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock") as client:
        yield backend, client


def test_configured_packs_statuses_and_draw_order(
    configured: tuple[Backend, httpx.Client], auth: dict[str, str]
) -> None:
    backend, client = configured
    packs = _packs(client, auth)
    assert {name: p["status"] for name, p in packs.items()} == {
        "late": "online",
        "soon": "online",
        "old": "expired",
        "next": "toBeOnline",
    }
    assert packs["next"]["resource_pack_type"] == "constant_period"
    # 3 x 3.5 units, from the packs in force when each task ends, the one expiring first first;
    # the expired pack is never drawn.
    for _ in range(3):
        _run(client, auth, "/v1/videos/text2video", {"prompt": "a", "mode": "pro"})
    backend.advance(5)
    packs = _packs(client, auth)
    assert (packs["old"]["remaining_quantity"], packs["old"]["status"]) == (5, "expired")
    assert (packs["soon"]["remaining_quantity"], packs["soon"]["status"]) == (0, "runOut")
    assert (packs["late"]["remaining_quantity"], packs["late"]["status"]) == (1.5, "online")
    # Once "late" is the only pack in force, it alone is drawn.
    backend.advance(11 * 24 * 3600)
    _run(client, auth, "/v1/videos/text2video", {"prompt": "a"})
    backend.advance(5)
    packs = _packs(client, auth)
    assert (packs["soon"]["remaining_quantity"], packs["soon"]["status"]) == (0, "expired")
    assert packs["late"]["remaining_quantity"] == 0.5


def test_time_window_and_name_filter(configured: tuple[Backend, httpx.Client], auth: dict[str, str]) -> None:
    _backend, client = configured
    start = 1_800_000_000_000
    future = _packs(client, auth, start_time=start + 40 * DAY_MS, end_time=start + 41 * DAY_MS)
    assert set(future) == {"late", "next"}
    assert set(_packs(client, auth, resource_pack_name="soon")) == {"soon"}
    assert _packs(client, auth, resource_pack_name="missing") == {}


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({}, "start_time is required"),
        ({"start_time": 0}, "end_time is required"),
        ({"start_time": "soon", "end_time": 1}, "start_time must be an integer"),
        ({"start_time": -1, "end_time": 1}, "start_time must be >= 0"),
        ({"start_time": 10, "end_time": 5}, "end_time must not be earlier than start_time"),
    ],
)
def test_refusals(client: httpx.Client, auth: dict[str, str], params: dict[str, Any], words: str) -> None:
    response = client.get(COSTS, params=params, headers=auth)
    assert response.status_code == 400
    assert response.json()["code"] == 1201
    assert words in response.json()["message"]


def test_needs_auth(client: httpx.Client) -> None:
    response = client.get(COSTS, params=ALWAYS)
    assert (response.status_code, response.json()["code"]) == (401, 1001)


def test_packs_and_media_ttl_from_a_config_file(tmp_path: Path) -> None:
    path = tmp_path / "mock.toml"
    path.write_text(
        """
media_ttl_seconds = 2592000
[[resource_packs]]
name = "Video 1000"
kind = "video"
total_quantity = 1000
[[resource_packs]]
name = "Try-on"
kind = "virtual_try_on"
total_quantity = 20.5
pack_type = "constant_period"
effective_time = 1700000000000
invalid_time = 1800000000000
"""
    )
    config = Config.from_file(path)
    assert config.media_ttl_seconds == 2592000
    assert config.resource_packs == [
        ResourcePack("Video 1000", "video", 1000),
        ResourcePack("Try-on", "virtual_try_on", 20.5, "constant_period", 1700000000000, 1800000000000),
    ]
    assert Config().merge_env({"MOCKKLING_MEDIA_TTL_SECONDS": "60"}).media_ttl_seconds == 60


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"media_ttl_seconds": -1}, "media_ttl_seconds"),
        ({"media_ttl_seconds": "1d"}, "media_ttl_seconds"),
        ({"resource_packs": [{"name": "x", "kind": "music"}]}, "kind must be one of"),
        ({"resource_packs": [{"name": "x", "pack_type": "monthly"}]}, "pack_type"),
        ({"resource_packs": [{"name": "x", "total_quantity": -5}]}, "total_quantity"),
        ({"resource_packs": [{"name": "x", "effective_time": 5, "invalid_time": 1}]}, "effective_time"),
        ({"resource_packs": [{"name": ""}]}, "name"),
        ({"resource_packs": [{"name": "x", "colour": "red"}]}, "colour"),
    ],
)
def test_bad_pack_settings_are_refused(data: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        Config().merge(data)
