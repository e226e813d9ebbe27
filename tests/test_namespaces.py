"""Namespaces (issue 20): ``X-Mockkling-Namespace: NAME`` gives a request its own tasks, rules,
journal, limits and clock, on every state backend; a reset resets one namespace only. In
process, on the in-memory store and the SQLite file (the Redis store: test_redis_state.py)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mockkling import DEFAULT_ACCESS_KEY, Backend, Config, create_app
from mockkling.config import CallbackSettings
from mockkling.namespaces import HEADER, NamespaceError, check, using
from mockkling.storage import SCHEMA_VERSION, SQLiteTaskStore
from mockkling.transport import SyncASGITransport

T2V = "/v1/videos/text2video"
C = "/__mockkling"


@pytest.fixture(params=["memory", "sqlite"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """One backend, as one server serves it: in memory, or on a state file."""
    state = None if request.param == "memory" else str(tmp_path / "state.db")
    backend = Backend(Config(seed=5, state_file=state))
    backend.use_manual_clock()
    yield backend
    backend.close()


_open: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


class Namespace:
    """A client of one namespace (None: no header, the default namespace)."""

    def __init__(self, backend: Backend, auth: dict[str, str], name: str | None) -> None:
        headers = {**auth, **({HEADER: name} if name else {})}
        transport = SyncASGITransport(create_app(backend))
        self.http = httpx.Client(transport=transport, base_url="http://mock", headers=headers)
        _open.append(self.http)

    def create(self, **body: object) -> httpx.Response:
        return self.http.post(T2V, json={"prompt": "a cat", **body})

    def task_ids(self) -> list[str]:
        return [t["task_id"] for t in self.http.get(T2V, params={"pageSize": 100}).json()["data"]]


def test_each_namespace_sees_only_its_own_tasks(shared: Backend, auth: dict[str, str]) -> None:
    a, b, default = (Namespace(shared, auth, n) for n in ("team-a", "team-b", None))
    made_a = a.create(external_task_id="order-1").json()["data"]["task_id"]
    made_b = b.create(external_task_id="order-1").json()["data"]["task_id"]  # the same external id
    assert a.task_ids() == [made_a]
    assert b.task_ids() == [made_b]
    assert default.task_ids() == []
    # Another namespace's task is unknown, as another account's is; an external id finds the
    # namespace's own task.
    for client, ident in ((a, made_b), (default, made_a), (default, "order-1")):
        missing = client.http.get(f"{T2V}/{ident}")
        assert (missing.status_code, missing.json()["code"]) == (404, 1203)
    assert a.http.get(f"{T2V}/order-1").json()["data"]["task_id"] == made_a
    # The control API and the Python API see the same split.
    listed = a.http.get(f"{C}/tasks").json()["tasks"]
    assert [t["task_id"] for t in listed] == [made_a]
    with using("team-b"):
        assert [t.task_id for t in shared.tasks] == [made_b]
    assert len(shared.tasks) == 0


def test_a_reset_resets_only_its_own_namespace(shared: Backend, auth: dict[str, str]) -> None:
    a, b, default = (Namespace(shared, auth, n) for n in ("team-a", "team-b", None))
    for each in (a, b, default):
        each.create()
        each.http.post(f"{C}/faults", json={"method": "POST", "path": "/nowhere", "code": 1303, "times": 1})
        each.http.put(f"{C}/limits", json={"rate": 100})
    assert a.http.post(f"{C}/reset").json() == {"reset": True}
    assert a.http.get(f"{C}/journal").json()["requests"] == []
    assert a.task_ids() == []
    assert a.http.get(f"{C}/faults").json()["faults"] == []
    assert a.http.get(f"{C}/limits").json()["limits"]["rate"] is None
    for other in (b, default):
        assert len(other.task_ids()) == 1
        assert len(other.http.get(f"{C}/faults").json()["faults"]) == 1
        assert other.http.get(f"{C}/limits").json()["limits"]["rate"] == 100
    # And a reset without the header resets the default namespace only.
    default.http.post(f"{C}/reset")
    assert default.task_ids() == []
    assert len(b.task_ids()) == 1


def test_rules_journal_limits_and_clock_are_per_namespace(shared: Backend, auth: dict[str, str]) -> None:
    a, b = Namespace(shared, auth, "a"), Namespace(shared, auth, "b")
    a.http.post(f"{C}/faults", json={"path": T2V, "method": "POST", "code": 1303})
    a.http.post(f"{C}/fates", json={"fate": {"status": "failed", "message": "in a"}, "times": None})
    assert a.create().status_code == 429
    created = b.create().json()["data"]["task_id"]
    assert b.http.get(f"{C}/tasks/{created}").json()["outcome"] == "succeed"  # a's fate is not b's
    # The journal: each namespace records its own requests.
    paths_a = [(e["method"], e["status"]) for e in a.http.get(f"{C}/journal").json()["requests"]]
    paths_b = [(e["method"], e["status"]) for e in b.http.get(f"{C}/journal").json()["requests"]]
    assert ("POST", 429) in paths_a and ("POST", 429) not in paths_b
    # Limits: a rate of 1 in a leaves b free.
    a.http.delete(f"{C}/faults")
    a.http.put(f"{C}/limits", json={"rate": 1})
    assert [a.http.get(T2V).status_code for _ in range(2)] == [200, 429]
    assert [b.http.get(T2V).status_code for _ in range(2)] == [200, 200]
    # The clock: a manual clock moved in b, while a keeps the system clock.
    moved = b.http.post(f"{C}/clock/advance", json={"seconds": 3600}).json()
    assert moved["manual"] is True
    assert a.http.get(f"{C}/clock").json()["manual"] is False
    assert b.http.get(f"{T2V}/{created}").json()["data"]["task_status"] == "succeed"


@pytest.mark.parametrize("name", ["", "-leading-dash", "a" * 65, "with space", "ünicode", "a/b", "a:b"])
def test_a_bad_namespace_is_refused_in_the_surfaces_envelope(
    backend: Backend, auth: dict[str, str], name: str
) -> None:
    with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock") as http:
        headers: dict[str, str | bytes] = {**auth, HEADER: name.encode()}
        official = http.get(T2V, headers=headers)
        assert official.status_code == 400
        assert official.json()["code"] == 1201
        assert HEADER in official.json()["message"]
        control = http.post(f"{C}/reset", headers=headers)
        assert control.status_code == 400
        assert control.json()["error"] == "bad_request"
    with pytest.raises(NamespaceError):
        check(name)
    assert len(backend.tasks) == 0


def test_the_namespace_header_is_documented(backend: Backend) -> None:
    document = backend.spec.document
    parameter = document["components"]["parameters"]["Namespace"]
    assert parameter["name"] == HEADER
    assert HEADER in document["info"]["description"]
    reset = document["paths"]["/__mockkling/reset"]["post"]
    assert {"$ref": "#/components/parameters/Namespace"} in reset["parameters"]


def test_health_says_the_store_is_reachable(client: httpx.Client) -> None:
    answer = client.get(f"{C}/health")
    assert answer.status_code == 200
    assert answer.json() == {"ready": True, "store": {"kind": "memory", "reachable": True}}


def test_the_health_check_needs_no_admin_token_nor_loopback() -> None:
    backend = Backend(Config(admin_token="s3cret"))
    transport = SyncASGITransport(create_app(backend), client=("10.1.2.3", 5000))
    with httpx.Client(transport=transport, base_url="http://mock") as http:
        assert http.get(f"{C}/health").json()["ready"] is True
        assert http.get(f"{C}/clock").status_code == 403  # the rest of the control API is closed


def test_callbacks_follow_the_clock_of_their_namespace() -> None:
    """A watched task of namespace b is due by b's clock: moving the default one sends nothing."""
    backend = Backend(Config(seed=2, callbacks=CallbackSettings(attempts=1)))
    backend.use_manual_clock(1_000_000)
    with using("b"):
        backend.use_manual_clock(1_000_000)
        body = {"prompt": "x", "callback_url": "http://127.0.0.1:9/hook"}
        task = backend.create_task(DEFAULT_ACCESS_KEY, "text2video", body)
    watched = backend.callbacks._watched
    assert watched[task.task_id].namespace == "b"
    backend.advance(3600)
    assert watched[task.task_id].clock().now_ms() == 1_000_000
    backend.callbacks.clear("a")
    assert task.task_id in watched
    backend.callbacks.clear("b")
    assert task.task_id not in watched
    backend.close()


# -- the SQLite file ----------------------------------------------------------------------------


def test_a_state_file_keeps_namespaces_apart_across_stores(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first, second = SQLiteTaskStore(path, "a"), SQLiteTaskStore(path, "b")
    backend = Backend(Config(seed=1, state_file=str(path)))
    with using("a"):
        task = backend.create_task(DEFAULT_ACCESS_KEY, "text2video", {"prompt": "x", "external_task_id": "e"})
    assert first.get(task.task_id) is not None
    assert second.get(task.task_id) is None
    assert second.get_external(DEFAULT_ACCESS_KEY, "e") is None
    second.clear()
    assert len(first) == 1
    for store in (first, second):
        store.close()
    backend.close()


def test_a_layout_1_state_file_is_brought_up_to_date(tmp_path: Path) -> None:
    """A file written before namespaces keeps its tasks, in the default namespace."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
            CREATE TABLE tasks (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL UNIQUE,
                account TEXT NOT NULL, action TEXT NOT NULL, model TEXT NOT NULL, mode TEXT NOT NULL,
                duration TEXT NOT NULL, created_ms INTEGER NOT NULL, processing_ms INTEGER NOT NULL,
                done_ms INTEGER NOT NULL, outcome TEXT NOT NULL, status_msg TEXT NOT NULL,
                external_task_id TEXT, extra TEXT);
            CREATE UNIQUE INDEX tasks_external ON tasks (account, external_task_id);
            CREATE INDEX tasks_owner ON tasks (account, action, seq);
            INSERT INTO meta VALUES ('schema', 1), ('opens', 3);
            INSERT INTO tasks (task_id, account, action, model, mode, duration, created_ms,
                processing_ms, done_ms, outcome, status_msg, external_task_id, extra)
            VALUES ('old-1', 'acct', 'text2video', 'kling-v1', 'std', '5', 1, 2, 3, 'succeed', '',
                'order-9', '{"watermark": true}');
            """
        )
    db.close()
    store = SQLiteTaskStore(path)
    task = store.get("old-1")
    assert task is not None and task.extra == {"watermark": True}
    assert store.get_external("acct", "order-9") is not None
    assert store.salt == 4
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()


# -- --state redis://... : how it is configured (the store itself: test_redis_state.py) --------


def test_the_state_takes_a_redis_url_from_every_source(tmp_path: Path) -> None:
    from mockkling.cli import _banner, _parser, build_config

    url = "redis://:s3cret@127.0.0.1:6379/2"
    config_file = tmp_path / "mockkling.toml"
    config_file.write_text(f'state_file = "{url}"\n')
    from_file = build_config(_parser().parse_args(["serve", "--config", str(config_file)]), environ={})
    from_env = build_config(_parser().parse_args(["serve"]), environ={"MOCKKLING_STATE": url})
    from_flag = build_config(_parser().parse_args(["serve", "--state", url]), environ={})
    assert from_file.state_file == from_env.state_file == from_flag.state_file == url
    banner = _banner(from_flag)
    assert "in Redis at redis://***@127.0.0.1:6379/2" in banner
    assert "s3cret" not in banner


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis://127.0.0.1:1/0", "cannot reach Redis at redis://127.0.0.1:1/0"),
        ("redis://127.0.0.1:x/0", "--state"),
    ],
)
def test_a_redis_that_cannot_be_used_stops_the_mock_at_start(url: str, says: str) -> None:
    from mockkling.config import ConfigError

    with pytest.raises(ConfigError, match=re.escape(says)):
        Backend(Config(state_file=url))
