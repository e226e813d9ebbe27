"""The state in Redis (issue 20), in process: two Backends on one real ``redis-server`` stand for
two replicas, and every piece of state one changes, the other sees; what must hold across them
(a rule's ``times``, a rate, running slots, a balance, a unique external id) holds. Redis going
away is 503 / 5001 in each surface's envelope, and the mock recovers by itself when it is back.
The replicas as real ``mockkling serve`` processes: test_replicas.py."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
import redis
from redis_server import RedisServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mockkling import DEFAULT_ACCESS_KEY, Backend, Config, Timing, create_app, make_jwt
from mockkling.config import CallbackSettings
from mockkling.fates import Fate
from mockkling.fault_rules import FaultSet
from mockkling.namespaces import HEADER, using
from mockkling.routes.dashboard import Watcher
from mockkling.server import LiveServer
from mockkling.tasks import Task
from mockkling.transport import SyncASGITransport

pytestmark = pytest.mark.slow  # each module starts a redis-server

T2V = "/v1/videos/text2video"
C = "/__mockkling"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def url(redis_server: RedisServer) -> str:
    redis.Redis.from_url(redis_server.url).flushall()
    return redis_server.url


class Replica:
    """A backend on the shared Redis and a client of its app: what one process serves."""

    def __init__(self, url: str, **config: object) -> None:
        self.backend = Backend(Config(state_file=url, seed=11, **config))  # type: ignore[arg-type]
        transport = SyncASGITransport(create_app(self.backend))
        self.http = httpx.Client(transport=transport, base_url="http://mock")
        secret = self.backend.auth.accounts[DEFAULT_ACCESS_KEY]
        self.auth = {"Authorization": f"Bearer {make_jwt(DEFAULT_ACCESS_KEY, secret)}"}

    def create(self, **body: object) -> httpx.Response:
        return self.http.post(T2V, json={"prompt": "a cat", **body}, headers=self.auth)

    def query(self, task_id: str, **headers: str) -> httpx.Response:
        return self.http.get(f"{T2V}/{task_id}", headers={**self.auth, **headers})

    def close(self) -> None:
        self.http.close()
        self.backend.close()


@pytest.fixture
def pair(url: str) -> Iterator[tuple[Replica, Replica]]:
    first, second = Replica(url), Replica(url)
    first.backend.use_manual_clock(1_000_000)
    yield first, second
    first.close()
    second.close()


def test_a_task_created_on_one_is_answered_by_the_other(pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    created = a.create(external_task_id="order-7").json()["data"]
    assert b.query(created["task_id"]).json()["data"]["task_status"] == "submitted"
    assert b.query("order-7").json()["data"]["task_id"] == created["task_id"]
    a.backend.advance(10)  # the clock is shared: b sees the task finished
    answer = b.query(created["task_id"]).json()["data"]
    assert answer["task_status"] == "succeed"
    assert answer["task_result"]["videos"][0]["url"].endswith(f"/media/videos/{created['task_id']}.mp4")
    assert b.http.get(f"/media/videos/{created['task_id']}.mp4").status_code == 200
    listed = b.http.get(T2V, headers=b.auth).json()["data"]
    assert [t["task_id"] for t in listed] == [created["task_id"]]
    # The external id is taken for both.
    again = b.create(external_task_id="order-7")
    assert (again.status_code, again.json()["code"]) == (400, 1201)


def test_external_ids_stay_unique_when_replicas_create_at_once(pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    results: list[int] = []

    def create(replica: Replica) -> None:
        for n in range(20):
            results.append(replica.create(external_task_id=f"same-{n}").status_code)

    threads = [threading.Thread(target=create, args=(r,)) for r in (a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [200] * 20 + [400] * 20
    assert len(a.backend.tasks) == 20


def test_a_task_changed_by_both_at_once_keeps_every_change(pair: tuple[Replica, Replica]) -> None:
    """Each replica marks its polls of one task 100 times at once (read-modify-write of its
    extra): WATCH makes the loser of a race run again on the winner's write."""
    first, second = pair
    task_id = first.create().json()["data"]["task_id"]

    def count(stored: Task) -> None:
        stored.extra = {**(stored.extra or {}), "n": (stored.extra or {}).get("n", 0) + 1}

    def writer(replica: Replica) -> None:
        for _ in range(100):
            assert replica.backend.tasks.modify(task_id, count) is not None

    threads = [threading.Thread(target=writer, args=(replica,)) for replica in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    stored = second.backend.tasks.get(task_id)
    assert stored is not None and (stored.extra or {})["n"] == 200


def test_seeded_ids_never_repeat_across_replicas(pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    ids = {a.backend.new_id() for _ in range(300)} | {b.backend.new_id() for _ in range(300)}
    assert len(ids) == 600


def test_a_fault_rule_with_times_fires_once_across_replicas(pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    rule = a.http.post(f"{C}/faults", json={"method": "POST", "path": T2V, "code": 1303, "times": 1}).json()
    statuses = [replica.create().status_code for replica in (b, a, b, a)]
    assert statuses == [429, 200, 200, 200]
    shown = b.http.get(f"{C}/faults").json()["faults"]
    assert [(r["id"], r["fired"], r["remaining"]) for r in shown] == [(rule["id"], 1, 0)]
    assert b.http.delete(f"{C}/faults/{rule['id']}").json() == {"removed": 1}
    assert a.http.get(f"{C}/faults").json()["faults"] == []


def test_seeded_probability_draws_are_those_of_one_process(pair: tuple[Replica, Replica]) -> None:
    """A rule's n-th draw is the n-th value of its seeded generator, whichever replica draws."""
    a, b = pair
    a.backend.faults.add("POST /v1/videos/text2video 1303 p=0.5 seed=42")
    shared = [replica.create().status_code == 429 for replica in (a, b) * 10]
    alone = FaultSet(seed=11)
    alone.add("POST /v1/videos/text2video 1303 p=0.5 seed=42")
    expected = [next(iter(alone)).fire() for _ in range(20)]
    assert shared == expected
    assert 0 < sum(shared) < 20


def test_a_fate_set_through_one_holds_on_the_other(pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    a.backend.fates.add(Fate("failed", message="set on a"), times=1)
    first, second = b.create().json()["data"]["task_id"], b.create().json()["data"]["task_id"]
    a.backend.advance(10)
    assert a.query(first).json()["data"]["task_status_msg"] == "set on a"
    assert a.query(second).json()["data"]["task_status"] == "succeed"
    assert [f["applied"] for f in b.http.get(f"{C}/fates").json()["fates"]] == [1]
    # A task's own fate, set through b, is what a answers.
    third = a.create().json()["data"]["task_id"]
    b.http.put(f"{C}/tasks/{third}/fate", json={"status": "processing", "seconds": 100})
    a.backend.advance(50)
    assert a.query(third).json()["data"]["task_status"] == "processing"


def test_limits_hold_across_replicas(pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    b.http.put(f"{C}/limits", json={"rate": 3})
    statuses = [replica.query("nothing").status_code for replica in (a, b, a, b, a)]
    assert statuses == [404, 404, 404, 429, 429]
    a.backend.advance(1)  # the shared clock refills the shared bucket
    assert b.query("nothing").status_code == 404
    a.http.put(f"{C}/limits", json={"concurrency": 2, "balance": 2})  # a kling-v1 task costs 1
    made = [replica.create().json()["code"] for replica in (a, b, a)]
    assert made == [0, 0, 1303]
    usage = b.http.get(f"{C}/limits").json()["usage"][DEFAULT_ACCESS_KEY]
    assert usage["running"] == 2 and usage["balance"] == 0.0
    a.backend.advance(10)  # both have ended: their slots are free, the balance stays spent
    refused = b.create()
    assert (refused.status_code, refused.json()["code"]) == (429, 1102)


def test_the_journal_shows_what_every_replica_answered(pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    made = a.create().json()["data"]["task_id"]
    b.query(made)
    entries = a.http.get(f"{C}/journal").json()["requests"]
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("POST", T2V, 200),
        ("GET", f"{T2V}/{made}", 200),
    ]
    assert entries[0]["headers"]["authorization"] == "Bearer ***"
    assert b.backend.journal.get(entries[1]["id"]) is not None
    b.http.delete(f"{C}/journal")
    assert len(a.backend.journal) == 0


def test_the_shared_journal_keeps_headers_to_header_bytes(url: str) -> None:
    replica = Replica(url, journal_header_bytes=200)
    try:
        replica.query("nope", **{"X-Padding": "p" * 5000, "X-After": "kept?"})
        entry = replica.backend.journal.last()
        assert entry is not None and entry.status == 404
        assert sum(len(name) + len(value) for name, value in entry.headers.items()) <= 200 + 16
        assert "x-after" not in entry.headers
    finally:
        replica.close()


def test_the_manual_clock_moved_on_one_moves_all(pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    before = b.http.get(f"{C}/clock").json()
    assert before == {"now_ms": 1_000_000, "manual": True}
    assert a.http.post(f"{C}/clock/advance", json={"seconds": 2.5}).json()["now_ms"] == 1_002_500
    assert b.http.get(f"{C}/clock").json()["now_ms"] == 1_002_500


def test_accounts_keys_and_webhook_secrets_added_on_one_work_on_the_other(
    pair: tuple[Replica, Replica],
) -> None:
    a, b = pair
    a.backend.add_account("team-ak", "team-sk-0123456789", api_keys=["sk-team"])
    token = make_jwt("team-ak", "team-sk-0123456789")
    assert b.http.get(T2V, headers={"Authorization": f"Bearer {token}"}).json()["code"] == 0
    gateway = b.http.get("/v1/video/generations/unknown", headers={"Authorization": "sk-team"})
    assert gateway.json()["code"] == "task_not_exist"  # a known key (an unknown one: unauthorized)
    secret = "whsec_" + "c2VjcmV0LXNoYXJlZC1ieS1yZXBsaWNhcyE="
    a.backend.set_webhook_secret(secret, account="team-ak")
    assert b.backend.webhook_secrets("team-ak") == (secret,)


def test_namespaces_on_redis_reset_independently(pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    made = {}
    for name in ("ci-1", "ci-2"):
        made[name] = a.http.post(T2V, json={"prompt": "x"}, headers={**a.auth, HEADER: name}).json()
        a.http.post(f"{C}/faults", json={"path": "/nowhere", "code": 1303}, headers={HEADER: name})
    b.http.post(f"{C}/reset", headers={HEADER: "ci-1"})
    gone = a.query(made["ci-1"]["data"]["task_id"], **{HEADER: "ci-1"})
    assert gone.status_code == 404
    kept = a.query(made["ci-2"]["data"]["task_id"], **{HEADER: "ci-2"})
    assert kept.json()["data"]["task_status"] == "submitted"
    assert b.http.get(f"{C}/faults", headers={HEADER: "ci-1"}).json()["faults"] == []
    assert len(b.http.get(f"{C}/faults", headers={HEADER: "ci-2"}).json()["faults"]) == 1
    assert a.query(made["ci-2"]["data"]["task_id"]).status_code == 404  # not in the default one
    assert set(a.backend.state.namespaces()) >= {"default", "ci-1", "ci-2"}
    with using("ci-2"):
        assert len(b.backend.tasks) == 1


def test_the_dashboard_reads_the_shared_state(pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    made = a.create().json()["data"]["task_id"]
    snapshot = Watcher(b.backend).snapshot()
    assert [t["task_id"] for t in snapshot["tasks"]["tasks"]] == [made]
    assert snapshot["journal"]["entries"][0]["path"] == T2V
    assert snapshot["clock"] == {"now_ms": 1_000_000, "manual": True}


def test_redis_away_is_503_then_the_mock_recovers(tmp_path: Path) -> None:
    """Nothing acknowledged is lost: Redis writes each command to disk before answering it."""
    server = RedisServer(tmp_path / "redis").start()
    replica = Replica(server.url, timing=Timing(0, 1))
    try:
        made = replica.create().json()["data"]["task_id"]
        server.kill()
        official = replica.create()
        assert official.status_code == 503
        assert official.json()["code"] == 5001
        assert "Redis" in official.json()["message"]
        assert replica.query(made).json()["code"] == 5001
        control = replica.http.get(f"{C}/tasks")
        assert (control.status_code, control.json()["error"]) == (503, "service_unavailable")
        health = replica.http.get(f"{C}/health")
        assert health.status_code == 503
        assert health.json()["store"]["reachable"] is False
        gateway = replica.http.get(
            "/v1/video/generations/x", headers={"Authorization": "sk-mockkling-local-key"}
        )
        assert gateway.status_code == 503
        assert replica.http.get(f"/media/videos/{made}.mp4").status_code == 503
        server = RedisServer(tmp_path / "redis", port=server.port).start()
        assert replica.http.get(f"{C}/health").json()["ready"] is True
        assert replica.query(made).json()["data"]["task_id"] == made
        assert replica.create().status_code == 200
    finally:
        replica.close()
        server.stop()


def test_redis_away_is_one_warning_in_the_log_not_a_traceback_per_look(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The callback sender looks at Redis twice a second: while Redis is away it says so once,
    and once more when Redis is back, instead of logging a traceback at every look."""
    caplog.set_level(logging.INFO, logger="mockkling")
    server = RedisServer(tmp_path / "redis").start()
    replica = Replica(server.url)
    try:
        replica.backend.callbacks.wake()  # its thread runs, looking for work
        server.kill()
        time.sleep(1.6)  # three looks or more
        assert [r for r in caplog.records if r.exc_info] == []
        paused = [r.getMessage() for r in caplog.records if "callbacks paused" in r.getMessage()]
        assert len(paused) == 1, caplog.text
        assert "Redis" in paused[0]
        server = RedisServer(tmp_path / "redis", port=server.port).start()
        deadline = time.monotonic() + 5
        while "callbacks resumed" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert caplog.text.count("callbacks resumed") == 1
        assert [r for r in caplog.records if r.exc_info] == []
    finally:
        replica.close()
        server.stop()


def test_a_callback_left_by_a_dead_replica_is_sent_by_another(url: str) -> None:
    """Replica a takes a task's lease and dies mid-delivery (its lease left in Redis); once the
    lease expires, replica b sends the notification again, then the rest, each once."""
    received: list[str] = []
    lock = threading.Condition()
    hang = threading.Event()

    async def hook(request: Request) -> Response:
        body = await request.json()
        with lock:
            received.append(body["task_status"])
            lock.notify_all()
        if len(received) == 1:
            await anyio.to_thread.run_sync(hang.wait, 10)  # the first attempt never gets an answer
        return Response(status_code=200)

    def wait_for(count: int) -> None:
        with lock:
            assert lock.wait_for(lambda: len(received) >= count, 15), received

    settings = {"callbacks": CallbackSettings(attempts=1, timeout_seconds=1, backoff_seconds=0)}
    with LiveServer(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as receiver:
        a, b = Replica(url, **settings), Replica(url, **settings)
        try:
            a.backend.use_manual_clock(1_000_000)
            a.backend.callbacks._lane_done = lambda task_id: None  # type: ignore[method-assign]  # dies holding it
            made = a.create(callback_url=f"{receiver.url}/hook").json()["data"]["task_id"]
            wait_for(1)  # a is sending "submitted", and gets no answer
            a.backend.callbacks.close()  # a is gone; its lease stays until it expires
            hang.set()
            b.backend.callbacks.wake()  # b looks for work (every half second)
            wait_for(2)
            assert received == ["submitted", "submitted"]
            b.backend.advance(10)
            wait_for(4)
            time.sleep(1.2)  # a few more looks: nothing more is sent
            assert received == ["submitted", "submitted", "processing", "succeed"]
            delivered = [d.status for d in b.backend.callbacks.deliveries(made) if d.outcome == "delivered"]
            assert delivered == ["submitted", "processing", "succeed"]
        finally:
            hang.set()
            a.close()
            b.close()
