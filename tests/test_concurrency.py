"""Concurrency against the live server (`mockkling serve` in a child process, on loopback), for
the in-memory store and the SQLite store: concurrent creates never lose, mix up or duplicate a
task, and racing creates with one external_task_id make exactly one task."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_process import ServeProcess, lanes

from mockkling import make_jwt

pytestmark = pytest.mark.slow  # `mockkling serve` in a child process, under load

T2V = "/v1/videos/text2video"
ACCOUNTS = [(f"conc-ak-{i}", f"conc-secret-key-{i}-with-plenty-of-bytes") for i in range(10)]
AUTH = [{"Authorization": f"Bearer {make_jwt(ak, sk, ttl_seconds=3600)}"} for ak, sk in ACCOUNTS]
CREATES = 1_000
IN_FLIGHT = 64  # a bounded load on loopback: enough to interleave every step of a create


@pytest.fixture(params=["memory", "sqlite"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServeProcess]:
    flags = [f for ak, sk in ACCOUNTS for f in ("--access-key", ak, "--secret-key", sk)]
    if request.param == "sqlite":
        flags += ["--state", str(tmp_path / "state.db")]
    with ServeProcess(*flags) as live:
        yield live


async def create(n: int, account: int, body: dict[str, Any], http: httpx.AsyncClient) -> tuple[int, int, Any]:
    response = await http.post(T2V, json=body, headers=AUTH[account])
    return n, response.status_code, response.json()


async def read(ident: str, account: int, http: httpx.AsyncClient) -> tuple[int, Any]:
    response = await http.get(f"{T2V}/{ident}", headers=AUTH[account])
    return response.status_code, response.json()


async def create_and_check(url: str) -> None:
    owner_of = lambda n: n % len(ACCOUNTS)  # noqa: E731
    created = await lanes(
        url,
        [
            partial(create, n, owner_of(n), {"prompt": f"task {n}", "external_task_id": f"job-{n}"})
            for n in range(CREATES)
        ],
        IN_FLIGHT,
    )
    assert Counter(status for _, status, _ in created) == {200: CREATES}
    task_ids = [body["data"]["task_id"] for _, _, body in created]
    assert len(set(task_ids)) == CREATES  # 1,000 distinct tasks

    # Each is found by its owner (by task_id; by external_task_id for every tenth) ...
    lookups = [(t, t, owner_of(n)) for n, t in enumerate(task_ids)]
    lookups += [(t, f"job-{n}", owner_of(n)) for n, t in enumerate(task_ids) if n % 10 == 0]
    found = await lanes(url, [partial(read, ident, account) for _, ident, account in lookups], IN_FLIGHT)
    assert [(status, body["data"]["task_id"]) for status, body in found] == [(200, t) for t, _, _ in lookups]
    # ... and by no other account, which gets exactly what a missing task gets.
    others = await lanes(url, [partial(read, t, owner_of(n + 1)) for n, t in enumerate(task_ids)], IN_FLIGHT)
    assert Counter((status, body["code"]) for status, body in others) == {(404, 1203): CREATES}
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for account in range(len(ACCOUNTS)):
            response = await http.get(T2V, params={"pageSize": 500}, headers=AUTH[account])
            listed = {t["task_id"] for t in response.json()["data"]}
            assert listed == {t for n, t in enumerate(task_ids) if owner_of(n) == account}


async def race(url: str) -> None:
    """Forty creates with one external_task_id on each of two accounts, all at once."""
    body = {"prompt": "racer", "external_task_id": "the-one"}
    answers = await lanes(url, [partial(create, n, n % 2, body) for n in range(80)], 80)
    for account in (0, 1):
        mine = [(status, answer) for n, status, answer in answers if n % 2 == account]
        winners = [answer["data"]["task_id"] for status, answer in mine if status == 200]
        losers = [(status, answer["code"]) for status, answer in mine if status != 200]
        assert len(winners) == 1 and losers == [(400, 1201)] * 39
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            assert (await read("the-one", account, http))[1]["data"]["task_id"] == winners[0]
            listed = (await http.get(T2V, headers=AUTH[account])).json()["data"]
            assert [t["task_id"] for t in listed] == winners


def test_concurrent_creates_over_ten_accounts(server: ServeProcess) -> None:
    asyncio.run(create_and_check(server.url))


def test_racing_creates_with_one_external_task_id(server: ServeProcess) -> None:
    asyncio.run(race(server.url))
