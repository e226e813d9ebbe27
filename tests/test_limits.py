"""Per-account limits on the manual clock: the request rate (429 / 1302), running tasks
(429 / 1303) and the generation balance (429 / 1102). Each refuses only past its limit and
recovers as the real service does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from mockkling import (
    DEFAULT_ACCESS_KEY,
    Backend,
    Config,
    ConfigError,
    FailRule,
    KlingError,
    Limits,
    Timing,
    create_app,
    make_jwt,
)
from mockkling.cli import _parser, build_config
from mockkling.transport import SyncASGITransport

T2V = "/v1/videos/text2video"
AK = DEFAULT_ACCESS_KEY


def _client(backend: Backend) -> httpx.Client:
    return httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock")


def _backend(**config: Any) -> Backend:
    backend = Backend(Config(seed=11, **config))
    backend.use_manual_clock()
    return backend


def _create(backend: Backend, account: str = AK, **body: Any) -> None:
    backend.create_task(account, "text2video", {"prompt": "a kitten", **body})


# -- request rate ---------------------------------------------------------------------------------


def test_the_rate_limiter_admits_exactly_its_rate(auth: dict[str, str]) -> None:
    backend = _backend(limits=Limits(rate=5))
    with _client(backend) as client:

        def burst(n: int) -> list[int]:
            return [client.get(T2V, headers=auth).status_code for _ in range(n)]

        assert burst(6) == [200] * 5 + [429]
        backend.advance(0.199)
        assert burst(1) == [429]
        backend.advance(0.001)  # one token every 200 ms
        assert burst(2) == [200, 429]
        backend.advance(10)  # the bucket refills to its size, no further
        assert burst(7) == [200] * 5 + [429, 429]
        # From an empty bucket, steady load for 10 simulated seconds, a request every 50 ms:
        # exactly 5 per second pass.
        passed = 0
        for _ in range(200):
            backend.advance(0.05)
            passed += burst(1) == [200]
        assert passed == 50


def test_a_refusal_is_the_official_1302_with_retry_after(auth: dict[str, str]) -> None:
    backend = _backend(limits=Limits(rate=2, per_seconds=10))
    with _client(backend) as client:
        for _ in range(2):
            assert client.get(T2V, headers=auth).status_code == 200
        refused = client.get(T2V, headers=auth)
        assert refused.status_code == 429
        assert refused.json()["code"] == 1302
        assert refused.headers["retry-after"] == "5"  # one token per 5 s
        backend.advance(4)
        assert client.get(T2V, headers=auth).headers["retry-after"] == "1"
        backend.advance(1)
        assert client.get(T2V, headers=auth).status_code == 200


def test_result_downloads_do_not_spend_the_request_rate(auth: dict[str, str]) -> None:
    # A result URL is a CDN link, not an API call: an exhausted rate still lets it download.
    backend = _backend(limits=Limits(rate=2, per_seconds=60))
    with _client(backend) as client:
        task_id = client.post(T2V, json={"prompt": "x"}, headers=auth).json()["data"]["task_id"]
        backend.advance(60)  # the task finishes; the bucket is full again (2 tokens)
        assert [client.get(T2V, headers=auth).status_code for _ in range(3)] == [200, 200, 429]
        for _ in range(3):
            assert client.get(f"/media/videos/{task_id}.mp4", headers=auth).status_code == 200


def test_burst_and_per_seconds(auth: dict[str, str]) -> None:
    backend = _backend(limits=Limits(rate=60, per_seconds=60, burst=3))
    with _client(backend) as client:
        assert [client.get(T2V, headers=auth).status_code for _ in range(4)] == [200, 200, 200, 429]
        backend.advance(1)
        assert [client.get(T2V, headers=auth).status_code for _ in range(2)] == [200, 429]


def test_rate_is_per_account_with_overrides(auth: dict[str, str]) -> None:
    limits = Limits(rate=1, per_seconds=60, accounts={"vip": Limits(rate=3)})
    backend = _backend(limits=limits)
    backend.add_account("vip", "vip-secret")
    backend.add_account("other", "other-secret")
    vip = {"Authorization": f"Bearer {make_jwt('vip', 'vip-secret')}"}
    other = {"Authorization": f"Bearer {make_jwt('other', 'other-secret')}"}
    with _client(backend) as client:
        assert [client.get(T2V, headers=auth).status_code for _ in range(2)] == [200, 429]
        assert [client.get(T2V, headers=other).status_code for _ in range(2)] == [200, 429]
        # vip: 3 per 60 s (its rate overrides, its period is the default's)
        assert [client.get(T2V, headers=vip).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert backend.limits.usage("vip")["tokens"] == pytest.approx(0.0)


def test_unauthenticated_requests_do_not_spend_tokens(auth: dict[str, str]) -> None:
    backend = _backend(limits=Limits(rate=1, per_seconds=60))
    with _client(backend) as client:
        for _ in range(3):
            assert client.get(T2V).status_code == 401
            assert client.get("/openapi.yaml").status_code == 200
        assert client.get(T2V, headers=auth).status_code == 200
        assert client.get(T2V, headers=auth).json()["code"] == 1302


# -- running tasks ----------------------------------------------------------------------------------


def test_running_tasks_are_capped_until_one_ends(auth: dict[str, str]) -> None:
    backend = _backend(timing=Timing(1, 4), limits=Limits(concurrency=2))
    with _client(backend) as client:

        def create() -> httpx.Response:
            return client.post(T2V, json={"prompt": "a kitten"}, headers=auth)

        assert create().status_code == 200
        backend.advance(1)
        assert create().status_code == 200
        refused = create()
        assert refused.status_code == 429
        assert refused.json()["code"] == 1303
        assert "parallel task over resource pack limit" in refused.json()["message"]
        backend.advance(3.999)  # the first is still processing
        assert create().status_code == 429
        backend.advance(0.001)  # the first has ended: its slot is free
        assert create().status_code == 200
        assert create().status_code == 429
    assert len(backend.tasks) == 3


def test_the_cap_is_per_account_and_counts_tasks_from_before_it_was_set() -> None:
    backend = _backend(timing=Timing(0, 10))
    backend.add_account("other", "other-secret")
    for _ in range(3):
        _create(backend)
    backend.limits.set(concurrency=3)
    with pytest.raises(KlingError) as refused:
        _create(backend)
    assert (refused.value.code, refused.value.http_status) == (1303, 429)
    _create(backend, "other")  # another account has its own slots
    assert backend.limits.usage(AK)["running"] == 3
    backend.advance(10)
    assert backend.limits.usage(AK)["running"] == 0
    _create(backend)


def test_slots_are_counted_per_pack_kind_and_an_image_task_holds_one_per_image() -> None:
    backend = _backend(timing=Timing(0, 10), limits=Limits(concurrency=4))

    def images(n: int) -> None:
        backend.create_task(AK, "image-generation", {"prompt": "a kitten", "n": n})

    images(3)
    with pytest.raises(KlingError, match="3 of 4 image slots in use, the task needs 2"):
        images(2)
    images(1)
    for _ in range(4):  # video tasks draw on their own kind's slots
        _create(backend)
    with pytest.raises(KlingError, match="4 of 4 video slots"):
        _create(backend)
    assert backend.limits.usage(AK)["running"] == 8
    backend.advance(10)
    images(4)


def test_fates_free_or_keep_a_slot() -> None:
    backend = _backend(timing=Timing(0, 10), limits=Limits(concurrency=1))
    _create(backend)
    [task] = backend.tasks
    backend.set_fate(task.task_id, "succeed")
    _create(backend)  # the slot was freed at once
    second = next(t for t in backend.tasks if t is not task)
    backend.set_fate(second.task_id, "processing", seconds=100)
    backend.advance(50)
    with pytest.raises(KlingError, match="parallel task"):
        _create(backend)
    backend.advance(50)
    _create(backend)


def test_a_refused_duplicate_takes_no_slot_and_no_balance() -> None:
    backend = _backend(timing=Timing(0, 10), limits=Limits(concurrency=2, balance=2))
    _create(backend, external_task_id="order-1")
    with pytest.raises(KlingError, match="already exists"):
        _create(backend, external_task_id="order-1")
    assert backend.limits.usage(AK) == {"tokens": None, "running": 1, "balance": 1.0}
    _create(backend)


def test_counting_running_tasks_does_not_scan_the_store() -> None:
    """A create looks only at the account's own running tasks, through a heap: tasks of
    other accounts, and tasks that ended long ago, are never visited."""
    backend = _backend(timing=Timing(0, 1), limits=Limits(concurrency=5))
    visited = 0

    class CountingStore(list[Any]):
        def __iter__(self) -> Any:
            nonlocal visited
            visited += 1
            return super().__iter__()

    backend.limits._tasks = CountingStore()  # only set() may iterate the store
    for _ in range(200):
        _create(backend)
        backend.advance(1)
    assert visited == 0
    assert backend.limits.usage(AK)["running"] == 0


# -- balance -----------------------------------------------------------------------------------------


def test_balance_is_spent_by_successful_tasks_then_refused(auth: dict[str, str]) -> None:
    backend = _backend(limits=Limits(balance=4), fail_rules=[FailRule("forbidden")])
    with _client(backend) as client:

        def create(**body: Any) -> httpx.Response:
            return client.post(T2V, json={"prompt": "a kitten", **body}, headers=auth)

        assert create(prompt="forbidden fruit").status_code == 200  # a task that fails costs nothing
        assert create(mode="pro").status_code == 200  # kling-v1 pro 5 s: 3.5 units
        assert backend.limits.usage(AK)["balance"] == 0.5
        refused = create()  # std 5 s costs 1
        assert (refused.status_code, refused.json()["code"]) == (429, 1102)
        assert "0.5 units left" in refused.json()["message"]


def test_a_failed_fate_refunds_and_a_reset_refills() -> None:
    backend = _backend(timing=Timing(0, 10), limits=Limits(balance=1))
    _create(backend)
    with pytest.raises(KlingError, match="depleted"):
        _create(backend)
    [task] = backend.tasks
    backend.set_fate(task.task_id, "failed", message="engine exploded")
    assert backend.limits.usage(AK)["balance"] == 1.0
    _create(backend)
    backend.reset()
    assert backend.limits.usage(AK)["balance"] == 1.0


# -- configuration --------------------------------------------------------------------------------------


def test_limits_from_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "mock.toml"
    path.write_text(
        """
[limits]
rate = 10
concurrency = 3
balance = 100

[limits.accounts.my-ak]
concurrency = 1
"""
    )
    limits = Config.from_file(path).limits
    assert (limits.rate, limits.concurrency, limits.balance) == (10, 3, 100)
    mine = limits.for_account("my-ak")
    assert (mine.rate, mine.concurrency, mine.balance) == (10, 1, 100)
    assert limits.for_account("someone") == limits


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("limits = 3", "limits must be of type dict"),
        ("[limits]\nrate = 0", r"limits.rate must be an integer >= 1"),
        ("[limits]\nrate = 1.5", r"limits.rate must be an integer >= 1"),
        ("[limits]\nbalance = -1", r"limits.balance must be >= 0"),
        ("[limits]\nper_seconds = 0", "limits.per_seconds must be between"),
        ("[limits]\nspeed = 3", r"unknown keys \['speed'\]"),
        ("[limits.accounts.a]\nrate = 'x'", r"limits.rate must be an integer"),
        ("[limits.accounts.a.accounts.b]\nrate = 1", "cannot have accounts of its own"),
    ],
)
def test_bad_limits_are_refused(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "mock.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        Config.from_file(path)


def test_limits_from_the_command_line() -> None:
    args = _parser().parse_args(["serve", "--rate-limit", "20", "--max-running", "4", "--balance", "50"])
    limits = build_config(args, environ={}).limits
    assert (limits.rate, limits.concurrency, limits.balance) == (20, 4, 50)
    with pytest.raises(ConfigError, match="rate must be an integer >= 1"):
        build_config(_parser().parse_args(["serve", "--rate-limit", "0"]), environ={})
