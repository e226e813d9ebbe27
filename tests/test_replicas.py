"""Replicas (issue 20): three ``mockkling serve`` processes on one real ``redis-server`` behave as
one mock. Each shared behaviour is shown across them: a task created on one is answered by
another, a fault rule's ``times`` and a rate limit count across all, a fate set through one holds
on another, a manual clock moved on one moves all, a callback is delivered once, the journal on
one shows what another answered. Each test works in a namespace of its own on the shared
servers, so none needs a global reset. Then: a replica SIGKILLed in a burst of creates loses
no acknowledged task, and Redis going away is 503 / 5001 until it is back."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import anyio
import httpx
import pytest
from redis_server import RedisServer
from serve_process import ServeProcess, lanes
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mockkling import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, make_jwt
from mockkling.namespaces import HEADER
from mockkling.server import LiveServer

pytestmark = pytest.mark.slow

T2V = "/v1/videos/text2video"
C = "/__mockkling"
FLAGS = ("--seed", "1", "--queue-seconds", "1", "--run-seconds", "2")
_names = itertools.count(1)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def replicas(redis_server: RedisServer) -> Iterator[list[ServeProcess]]:
    servers = [ServeProcess("--state", redis_server.url, *FLAGS) for _ in range(3)]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.__exit__(None, None, None)


class Team:
    """Clients of every replica, all in one namespace of their own."""

    def __init__(self, replicas: list[ServeProcess]) -> None:
        self.namespace = f"test-{next(_names)}"
        token = make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, ttl_seconds=3600)
        headers = {"Authorization": f"Bearer {token}", HEADER: self.namespace}
        self.clients = [httpx.Client(base_url=r.url, headers=headers, timeout=10) for r in replicas]

    def __getitem__(self, index: int) -> httpx.Client:
        return self.clients[index]

    def create(self, on: int, **body: object) -> httpx.Response:
        return self.clients[on].post(T2V, json={"prompt": "a cat", **body})

    def freeze(self) -> int:
        """A manual clock for the namespace (moved on replica 0: all see it)."""
        now: int = self.clients[0].post(f"{C}/clock/advance", json={"seconds": 0}).json()["now_ms"]
        return now

    def close(self) -> None:
        for client in self.clients:
            client.close()


@pytest.fixture
def team(replicas: list[ServeProcess]) -> Iterator[Team]:
    team = Team(replicas)
    yield team
    team.close()


def test_a_task_created_on_one_is_answered_by_the_others(team: Team) -> None:
    created = team.create(0, external_task_id="order-1").json()["data"]["task_id"]
    assert team[1].get(f"{T2V}/{created}").json()["data"]["task_status"] == "submitted"
    assert team[2].get(f"{T2V}/order-1").json()["data"]["task_id"] == created
    assert [t["task_id"] for t in team[2].get(T2V).json()["data"]] == [created]
    taken = team.create(1, external_task_id="order-1")
    assert (taken.status_code, taken.json()["code"]) == (400, 1201)


def test_a_fault_rule_with_times_1_fires_once_across_all(team: Team) -> None:
    team[2].post(f"{C}/faults", json={"method": "POST", "path": T2V, "code": 1303, "times": 1})
    codes = [team.create(n % 3).json()["code"] for n in range(6)]
    assert sorted(codes) == [0, 0, 0, 0, 0, 1303]
    fired = [rule["fired"] for rule in team[0].get(f"{C}/faults").json()["faults"]]
    assert fired == [1]


def test_a_rate_limit_holds_across_all_together(team: Team) -> None:
    team.freeze()  # no refill while the requests go out: exactly the rate passes
    team[1].put(f"{C}/limits", json={"rate": 5})
    statuses = [team[n % 3].get(T2V).status_code for n in range(12)]
    assert statuses.count(200) == 5
    assert statuses.count(429) == 7
    team[2].post(f"{C}/clock/advance", json={"seconds": 1})  # a second later, 5 more
    assert [team[n % 3].get(T2V).status_code for n in range(6)].count(200) == 5


def test_a_fate_set_through_one_holds_on_another(team: Team) -> None:
    team.freeze()
    created = team.create(0).json()["data"]["task_id"]
    team[1].put(f"{C}/tasks/{created}/fate", json={"status": "failed", "message": "set on 1"})
    answer = team[2].get(f"{T2V}/{created}").json()["data"]
    assert (answer["task_status"], answer["task_status_msg"]) == ("failed", "set on 1")
    team[2].post(f"{C}/fates", json={"fate": {"status": "processing"}, "times": 1})
    held = team.create(0).json()["data"]["task_id"]
    team[1].post(f"{C}/clock/advance", json={"seconds": 3600})
    assert team[1].get(f"{T2V}/{held}").json()["data"]["task_status"] == "processing"


def test_a_manual_clock_moved_on_one_moves_all(team: Team) -> None:
    start = team.freeze()
    created = team.create(1).json()["data"]["task_id"]
    moved = team[0].post(f"{C}/clock/advance", json={"seconds": 3.5}).json()
    assert moved == {"now_ms": start + 3500, "manual": True}
    assert [team[n].get(f"{C}/clock").json()["now_ms"] for n in range(3)] == [start + 3500] * 3
    assert team[2].get(f"{T2V}/{created}").json()["data"]["task_status"] == "succeed"


def test_the_journal_on_one_shows_what_the_others_answered(team: Team) -> None:
    created = team.create(1).json()["data"]["task_id"]
    team[2].get(f"{T2V}/{created}")
    entries = team[0].get(f"{C}/journal").json()["requests"]
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("POST", T2V, 200),
        ("GET", f"{T2V}/{created}", 200),
    ]


class Receiver:
    """A callback receiver that counts what it gets."""

    def __init__(self) -> None:
        self.got: list[tuple[str, str]] = []
        self._lock = threading.Condition()
        app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])
        self.server = LiveServer(app)

    async def hook(self, request: Request) -> Response:
        body = await request.json()
        with self._lock:
            self.got.append((body["task_id"], body["task_status"]))
            self._lock.notify_all()
        return Response(status_code=200)

    def wait_for(self, count: int, timeout: float = 20) -> None:
        with self._lock:
            assert self._lock.wait_for(lambda: len(self.got) >= count, timeout), self.got


def test_a_callback_is_delivered_once(team: Team) -> None:
    receiver = Receiver()
    with receiver.server:
        team.freeze()
        hook = f"{receiver.server.url}/hook"
        made = [team.create(n, callback_url=hook).json()["data"]["task_id"] for n in range(3)]
        receiver.wait_for(3)  # each one's "submitted"
        team[1].post(f"{C}/clock/advance", json={"seconds": 10})  # every replica may see it
        receiver.wait_for(9)
        time.sleep(1.5)  # three polls of every replica: nothing more comes
    assert sorted(receiver.got) == sorted(
        (task_id, status) for task_id in made for status in ("submitted", "processing", "succeed")
    )


def test_two_namespaces_on_one_server_reset_independently(replicas: list[ServeProcess]) -> None:
    first, second = Team(replicas), Team(replicas)
    try:
        made = {team.namespace: team.create(0).json()["data"]["task_id"] for team in (first, second)}
        first[1].post(f"{C}/reset")
        assert first[2].get(f"{T2V}/{made[first.namespace]}").status_code == 404
        assert second[2].get(f"{T2V}/{made[second.namespace]}").status_code == 200
        assert first[0].get(f"{T2V}/{made[second.namespace]}").status_code == 404  # never another's
    finally:
        first.close()
        second.close()


# -- failures ---------------------------------------------------------------------------------------


AUTH = {"Authorization": f"Bearer {make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, ttl_seconds=3600)}"}


class Burst:
    """Creates spread over the replicas; replica 0 is SIGKILLed once ``kill_at`` are acknowledged."""

    def __init__(self, replicas: list[ServeProcess], kill_at: int) -> None:
        self.replicas, self.kill_at = replicas, kill_at
        self.acknowledged: list[str] = []
        self.lost_in_flight = 0
        self.killed = False

    async def create(self, n: int, http: httpx.AsyncClient) -> None:
        target = self.replicas[n % len(self.replicas)]
        if self.killed and target is self.replicas[0]:
            return
        try:
            answer = await http.post(f"{target.url}{T2V}", json={"prompt": f"burst {n}"}, headers=AUTH)
        except httpx.TransportError:
            self.lost_in_flight += 1  # never acknowledged: the client knows it failed
            return
        assert answer.status_code == 200, answer.text
        self.acknowledged.append(answer.json()["data"]["task_id"])
        if len(self.acknowledged) >= self.kill_at and not self.killed:
            self.killed = True
            self.replicas[0].kill()


def test_a_replica_killed_in_a_burst_of_creates_loses_no_acknowledged_task(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as redis_server:
        servers = [ServeProcess("--state", redis_server.url, *FLAGS) for _ in range(3)]
        try:
            for server in servers:
                server.start()
            burst = Burst(servers, kill_at=150)
            asyncio.run(lanes(servers[1].url, [partial(burst.create, n) for n in range(600)], 24))
            assert burst.killed and servers[0].proc.poll() is not None
            assert len(burst.acknowledged) > 300

            async def found(task_id: str, http: httpx.AsyncClient) -> int:
                return (await http.get(f"{T2V}/{task_id}", headers=AUTH)).status_code

            for survivor in servers[1:]:
                calls = [partial(found, task_id) for task_id in burst.acknowledged]
                assert set(asyncio.run(lanes(survivor.url, calls, 16))) == {200}
        finally:
            for server in servers:
                server.__exit__(None, None, None)


class HoldingReceiver(Receiver):
    """A receiver that leaves its first request unanswered until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    async def hook(self, request: Request) -> Response:
        answer = await super().hook(request)
        if len(self.got) == 1:
            await anyio.to_thread.run_sync(self.release.wait, 30)
        return answer


def test_a_dead_replicas_callbacks_are_carried_on_by_a_replica_asked_nothing(tmp_path: Path) -> None:
    """Replica a is SIGKILLed while it sends a task's first callback. Replica b, started before
    the kill and asked nothing at all (no create, no clock move), sends that callback again once
    a's lease has expired, then the task's other statuses: every replica on a shared state looks
    for such work from start-up."""
    flags = (*FLAGS, "--callback-attempts", "1", "--callback-timeout", "1")  # a lease of 4 s
    receiver = HoldingReceiver()
    with RedisServer(tmp_path / "redis") as redis_server, receiver.server:
        a = ServeProcess("--state", redis_server.url, *flags).start()
        b = ServeProcess("--state", redis_server.url, *flags)
        try:
            hook = f"{receiver.server.url}/hook"
            created = httpx.post(
                f"{a.url}{T2V}", json={"prompt": "orphan", "callback_url": hook}, headers=AUTH, timeout=10
            )
            made = created.json()["data"]["task_id"]
            receiver.wait_for(1)  # a is sending "submitted" and gets no answer
            b.start()
            a.kill()
            receiver.wait_for(4, timeout=10)
            time.sleep(1.2)  # two more looks: nothing more is sent
            assert receiver.got == [(made, s) for s in ("submitted", "submitted", "processing", "succeed")]
        finally:
            receiver.release.set()
            for replica in (a, b):
                replica.__exit__(None, None, None)


def test_redis_going_away_is_503_and_the_replicas_recover(tmp_path: Path) -> None:
    redis_server = RedisServer(tmp_path / "redis").start()
    try:
        with (
            ServeProcess("--state", redis_server.url, *FLAGS) as server,
            httpx.Client(base_url=server.url, headers=AUTH, timeout=10) as http,
        ):
            made = http.post(T2V, json={"prompt": "before"}).json()["data"]["task_id"]
            redis_server.kill()
            refused = http.post(T2V, json={"prompt": "while away"})
            assert (refused.status_code, refused.json()["code"]) == (503, 5001)
            assert http.get(f"{C}/health").json()["ready"] is False
            server.wait_for_log("callbacks paused")  # the callback sender's looks find it away
            time.sleep(1.2)
            assert "Traceback" not in server.text()
            assert server.text().count("callbacks paused") == 1
            redis_server = RedisServer(tmp_path / "redis", port=redis_server.port).start()
            assert http.get(f"{C}/health").json()["ready"] is True
            server.wait_for_log("callbacks resumed")
            assert http.get(f"{T2V}/{made}").json()["data"]["task_id"] == made
            assert http.post(T2V, json={"prompt": "after"}).json()["code"] == 0
    finally:
        redis_server.stop()


def test_workers_share_a_redis_state_as_replicas_do(redis_server: RedisServer) -> None:
    """``--workers 2`` on Redis: the workers are replicas on one port, sharing everything."""
    with (
        ServeProcess("--state", redis_server.url, *FLAGS, workers=2) as server,
        httpx.Client(base_url=server.url, headers={**AUTH, HEADER: "workers"}, timeout=10) as http,
    ):
        http.post(f"{C}/clock/advance", json={"seconds": 0})
        made = [http.post(T2V, json={"prompt": f"w{n}"}).json()["data"]["task_id"] for n in range(10)]
        http.post(f"{C}/clock/advance", json={"seconds": 10})
        statuses = {http.get(f"{T2V}/{task_id}").json()["data"]["task_status"] for task_id in made}
        assert statuses == {"succeed"}
        assert len(http.get(f"{C}/journal").json()["requests"]) == 20
