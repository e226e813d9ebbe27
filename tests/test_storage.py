"""The task stores: the in-memory default and the SQLite store of ``--state FILE`` keep the same
tasks behind one interface; the SQLite one keeps them across restarts and processes."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from mockkling import Backend, Config, ConfigError, create_app, make_jwt
from mockkling.cli import main
from mockkling.storage import SCHEMA_VERSION, SQLiteTaskStore
from mockkling.tasks import Task, TaskStorage, TaskStore
from mockkling.transport import SyncASGITransport

T2V = "/v1/videos/text2video"
AK, SK = "store-ak", "store-secret-key-with-plenty-of-bytes"
HEADERS = {"Authorization": f"Bearer {make_jwt(AK, SK)}"}


def task(task_id: str, account: str = "a", action: str = "text2video", **fields: object) -> Task:
    values: dict[str, object] = {
        "model": "kling-v1",
        "mode": "std",
        "duration": "5",
        "created_ms": 1_000,
        "processing_ms": 2_000,
        "done_ms": 6_000,
    }
    values.update(fields)
    return Task(task_id=task_id, account=account, action=action, **values)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TaskStorage]:
    made: TaskStorage = TaskStore() if request.param == "memory" else SQLiteTaskStore(tmp_path / "state.db")
    yield made
    made.close()


def fields(t: Task) -> tuple[object, ...]:
    return tuple(getattr(t, name) for name in Task.__slots__)


def test_both_stores_speak_the_protocol(store: TaskStorage) -> None:
    assert isinstance(store, TaskStorage)


def test_a_stored_task_reads_back_field_for_field(store: TaskStorage) -> None:
    original = task(
        "t1",
        external_task_id="ext-1",
        outcome="failed",
        status_msg="Failure to pass the risk control system",
        extra={"callback_url": "https://example.com/cb", "watermark": True, "meta": {"n": [1, 2.5, None]}},
    )
    assert store.add(original)
    for found in (store.get("t1"), store.get_external("a", "ext-1")):
        assert found is not None
        assert fields(found) == fields(original)
        # The status is derived from the stored schedule, never stored.
        assert [found.status(ms) for ms in (1_500, 2_000, 5_999, 6_000)] == [
            "submitted",
            "processing",
            "processing",
            "failed",
        ]
    assert store.get("missing") is None
    assert store.get_external("b", "ext-1") is None


def test_external_task_id_is_unique_per_account(store: TaskStorage) -> None:
    assert store.add(task("t1", external_task_id="same"))
    assert not store.add(task("t2", external_task_id="same"))
    assert store.add(task("t3", account="b", external_task_id="same"))
    assert store.add(task("t4")) and store.add(task("t5"))  # tasks without one never collide
    assert store.get("t2") is None
    assert sorted(t.task_id for t in store) == ["t1", "t3", "t4", "t5"]
    assert len(store) == 4


def test_pages_are_per_account_and_action_newest_first(store: TaskStorage) -> None:
    for i in range(7):
        store.add(task(f"a{i}"))
        store.add(task(f"b{i}", account="b"))
        store.add(task(f"i{i}", action="image2video"))
    page = lambda n, size: [t.task_id for t in store.page("a", "text2video", n, size)]  # noqa: E731
    assert page(1, 3) == ["a6", "a5", "a4"]
    assert page(3, 3) == ["a0"]
    assert page(4, 3) == []
    assert page(1, 500) == [f"a{i}" for i in range(6, -1, -1)]
    assert [t.task_id for t in store.page("a", "image2video", 1, 2)] == ["i6", "i5"]
    assert [t.task_id for t in store.owned("b", "text2video")] == [f"b{i}" for i in range(7)]
    assert store.owned("c", "text2video") == []
    assert [t.task_id for t in store][:3] == ["a0", "b0", "i0"]  # iteration in creation order


def test_the_newest_tasks_of_every_account_newest_first(store: TaskStorage) -> None:
    assert store.recent(5) == []
    for i in range(4):
        store.add(task(f"a{i}"))
        store.add(task(f"b{i}", account="b", action="image2video"))
    assert [t.task_id for t in store.recent(3)] == ["b3", "a3", "b2"]
    assert len(store.recent(100)) == 8 and store.recent(0) == []


def test_a_changed_schedule_is_kept(store: TaskStorage) -> None:
    """What a fate does: delay a stored task and make it fail, then store the change."""
    store.add(task("t1", extra={"n": 1}))
    changed = store.get("t1")
    assert changed is not None
    changed.processing_ms, changed.done_ms = 60_000, 90_000
    changed.outcome, changed.status_msg, changed.extra = "failed", "delayed, then refused", {"n": 2}
    store.update(changed)
    found = store.get("t1")
    assert found is not None and fields(found) == fields(changed)
    assert found.status(59_999) == "submitted" and found.status(90_000) == "failed"


def test_a_closed_store_is_still_usable(store: TaskStorage) -> None:
    """Backend.close() stops background work and flushes the store; the backend stays usable."""
    store.add(task("t1"))
    store.close()
    store.close()  # idempotent
    assert store.get("t1") is not None and store.add(task("t2"))
    assert len(store) == 2


def test_clear_forgets_every_task(store: TaskStorage) -> None:
    store.add(task("t1", external_task_id="x"))
    store.clear()
    assert (len(store), list(store), store.get("t1")) == (0, [], None)
    assert store.add(task("t2", external_task_id="x"))  # the external id is free again


# -- the SQLite store --------------------------------------------------------------------------


def test_tasks_survive_reopening_and_the_file_is_left_whole(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = SQLiteTaskStore(path)
    first.add(task("t1", external_task_id="e", extra={"k": "v"}))
    first.close()
    assert not Path(f"{path}-wal").exists()  # closing folded the write-ahead log into the file
    second = SQLiteTaskStore(path)
    found = second.get_external("a", "e")
    assert found is not None and (found.task_id, found.extra) == ("t1", {"k": "v"})
    assert not second.add(task("t2", external_task_id="e"))
    assert second.salt == first.salt + 1
    second.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_two_stores_on_one_file_share_tasks(tmp_path: Path) -> None:
    one, two = SQLiteTaskStore(tmp_path / "s.db"), SQLiteTaskStore(tmp_path / "s.db")
    assert one.add(task("t1", external_task_id="e"))
    assert two.get("t1") is not None and [t.task_id for t in two.page("a", "text2video", 1, 10)] == ["t1"]
    assert not two.add(task("t2", external_task_id="e"))
    two.clear()
    assert one.get("t1") is None
    one.close()
    two.close()


# A writer process: opens the store, says it is ready, waits for "go", adds 100 tasks (one in
# ten with the contested external_task_id) and prints how many adds it won.
_WRITER = """
import sys
from mockkling.storage import SQLiteTaskStore
from mockkling.tasks import Task

store = SQLiteTaskStore(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
won = 0
for i in range(100):
    won += store.add(Task(
        task_id=f"w{sys.argv[2]}-{i}", account="a", action="text2video", model="kling-v1", mode="std",
        duration="5", created_ms=0, processing_ms=0, done_ms=0,
        external_task_id="contested" if i % 10 == 0 else None,
    ))
store.close()
print(won)
"""


@pytest.mark.slow
def test_processes_writing_one_file_keep_external_ids_unique(tmp_path: Path) -> None:
    """Four processes add 100 tasks each at once, ten of them with one external_task_id: every
    other task is stored, and exactly one of the forty contested adds wins."""
    path = str(tmp_path / "shared.db")
    SQLiteTaskStore(path).close()
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, path, str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    try:
        for writer in writers:  # all four have the file open before any writes
            assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
        outputs = [writer.communicate("go\n", timeout=60)[0] for writer in writers]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
    assert [writer.returncode for writer in writers] == [0] * 4
    store = SQLiteTaskStore(path)
    assert sum(int(out) for out in outputs) == len(store) == 4 * 90 + 1
    assert len({t.task_id for t in store}) == len(store)
    assert sum(1 for t in store if t.external_task_id == "contested") == 1
    store.close()


def _count(stored: Task) -> None:
    extra = stored.extra or {}
    stored.extra = {**extra, "n": extra.get("n", 0) + 1}


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_changes_made_at_once_are_all_kept(kind: str, tmp_path: Path) -> None:
    """Four threads change one stored task 100 times each, every change a read-modify-write of its
    extra; on SQLite each thread has a store of its own on one file, as workers do. None is lost."""
    import threading

    shared = TaskStore()
    stores: list[TaskStorage] = (
        [shared] * 4 if kind == "memory" else [SQLiteTaskStore(tmp_path / "state.db") for _ in range(4)]
    )
    stores[0].add(task("t1", extra={"n": 0}))
    start = threading.Barrier(4)

    def writer(store: TaskStorage) -> None:
        start.wait()
        for _ in range(100):
            assert store.modify("t1", _count) is not None

    threads = [threading.Thread(target=writer, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    got = stores[0].get("t1")
    assert got is not None and got.extra == {"n": 400}
    for store in stores:
        store.close()


def test_a_change_that_raises_keeps_nothing(store: TaskStorage) -> None:
    store.add(task("t1", extra={"n": 1, "kept": ["a"]}))

    def half_then_fail(stored: Task) -> None:
        assert stored.extra is not None
        stored.extra["kept"].append("b")
        stored.outcome = "failed"
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        store.modify("t1", half_then_fail)
    got = store.get("t1")
    assert got is not None and (got.outcome, got.extra) == ("succeed", {"n": 1, "kept": ["a"]})
    assert store.modify("nope", _count) is None


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: p.write_text("not a database, just words " * 100), "not a usable mockkling state"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: None, "cannot open"),
    ],
    ids=["text-file", "directory", "missing-folder"],
)
def test_an_unusable_state_file_is_a_clear_config_error(
    tmp_path: Path,
    make: Callable[[Path], object],
    words: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("uvicorn.Server.run", lambda *a, **k: pytest.fail("served on an unusable state file"))
    path = tmp_path / "state.db"
    if words == "cannot open":
        path = tmp_path / "no" / "such" / "folder" / "state.db"
    make(path)
    with pytest.raises(ConfigError, match=words):
        SQLiteTaskStore(path)
    assert main(["serve", "--state", str(path), "--port", "0"]) == 2
    assert words in capsys.readouterr().err


def test_a_state_file_of_another_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SQLiteTaskStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (SCHEMA_VERSION + 1,))
    with pytest.raises(ConfigError, match=f"layout version {SCHEMA_VERSION + 1}"):
        SQLiteTaskStore(path)


# -- the Backend on a state file ---------------------------------------------------------------


def _durable(path: Path, seed: int | None = 5) -> Backend:
    return Backend(Config(accounts={AK: SK}, seed=seed, state_file=str(path)))


def _client(backend: Backend) -> httpx.Client:
    return httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock")


def test_the_backend_picks_the_store_from_the_config(tmp_path: Path) -> None:
    assert type(Backend(Config()).tasks) is TaskStore
    backend = _durable(tmp_path / "s.db")
    assert type(backend.tasks) is SQLiteTaskStore
    backend.close()


def test_lifecycles_carry_on_after_a_restart(tmp_path: Path) -> None:
    """Tasks created before a restart move on from their stored schedules after it."""
    path = tmp_path / "state.db"
    before = _durable(path)
    clock = before.use_manual_clock()
    with _client(before) as client:
        first = client.post(T2V, json={"prompt": "a", "external_task_id": "ext-a"}, headers=HEADERS).json()
        before.advance(2)
        second = client.post(T2V, json={"prompt": "b"}, headers=HEADERS).json()
    before.close()  # the server stops

    after = _durable(path)
    after.use_manual_clock(clock.now_ms())
    with _client(after) as client:

        def status(ident: str) -> tuple[str, int]:
            data = client.get(f"{T2V}/{ident}", headers=HEADERS).json()["data"]
            return data["task_status"], data["updated_at"]

        t0 = first["data"]["created_at"]
        assert status("ext-a") == ("processing", t0 + 1_000)
        assert status(second["data"]["task_id"]) == ("submitted", t0 + 2_000)
        after.advance(3)
        assert status(first["data"]["task_id"]) == ("succeed", t0 + 5_000)
        assert status(second["data"]["task_id"]) == ("processing", t0 + 3_000)
        listed = client.get(T2V, headers=HEADERS).json()["data"]
        assert [t["task_id"] for t in listed] == [second["data"]["task_id"], first["data"]["task_id"]]
        again = client.post(T2V, json={"prompt": "c", "external_task_id": "ext-a"}, headers=HEADERS)
        assert (again.status_code, again.json()["code"]) == (400, 1201)
    after.close()


def test_seeded_ids_stay_reproducible_but_never_repeat_on_a_shared_state(tmp_path: Path) -> None:
    """The same seed on a fresh file gives the same ids; a restart or a second worker on the
    same file draws ids of its own, so nothing collides."""
    a, b = _durable(tmp_path / "a.db"), _durable(tmp_path / "b.db")
    assert [a.new_id() for _ in range(3)] == [b.new_id() for _ in range(3)]
    again = _durable(tmp_path / "a.db")  # a second process or a restart on a.db
    assert {again.new_id() for _ in range(50)}.isdisjoint({a.new_id() for _ in range(50)})
    memory = [Backend(Config(seed=5)).new_id() for _ in range(2)]
    assert memory[0] == memory[1]  # the in-memory default is untouched
    for backend in (a, b, again):
        backend.close()


def test_state_file_from_file_environment_and_flag(tmp_path: Path) -> None:
    from mockkling.cli import _parser, build_config

    toml = tmp_path / "mock.toml"
    toml.write_text('state_file = "from-file.db"\n')
    args = lambda *argv: _parser().parse_args(["serve", *argv])  # noqa: E731
    assert build_config(args(), environ={}).state_file is None
    assert build_config(args("--config", str(toml)), environ={}).state_file == "from-file.db"
    env = {"MOCKKLING_CONFIG": str(toml), "MOCKKLING_STATE": "from-env.db"}
    assert build_config(args(), environ=env).state_file == "from-env.db"
    assert build_config(args("--state", "flag.db"), environ=env).state_file == "flag.db"
    toml.write_text("state_file = 3\n")
    with pytest.raises(ConfigError, match="state_file"):
        build_config(args("--config", str(toml)), environ={})


def test_workers_need_a_state_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("served without a shared state"))
    assert main(["serve", "--workers", "2", "--port", "0"]) == 2
    assert "--workers needs --state" in capsys.readouterr().err
    assert main(["serve", "--workers", "0", "--port", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("limit", [["--rate-limit", "5"], ["--max-running", "1"], ["--balance", "10"]])
def test_workers_on_a_state_file_refuse_limits_they_could_not_hold(
    limit: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each worker would count its own share of the requests: --max-running 1 on 2 workers
    would let 2 run. A state file shares the tasks only; Redis shares the limits too."""
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("served limits it cannot hold"))
    state = str(tmp_path / "state.db")
    assert main(["serve", "--workers", "2", "--port", "0", "--state", state, *limit]) == 2
    assert "need --state redis://" in capsys.readouterr().err


def test_the_worker_factory_rebuilds_the_configuration(tmp_path: Path) -> None:
    from mockkling.cli import SERVE_ARGV_ENV, config_from_env, create_app_from_env

    argv = ["serve", "--state", str(tmp_path / "w.db"), "--seed", "9", "--access-key", AK, "--secret-key", SK]
    env = {SERVE_ARGV_ENV: json.dumps(argv), "MOCKKLING_RUN_SECONDS": "7"}
    config = config_from_env(env)
    assert (config.state_file, config.seed, config.accounts, config.timing.run_seconds) == (
        str(tmp_path / "w.db"),
        9,
        {AK: SK},
        7,
    )
    assert config_from_env({"MOCKKLING_STATE": "plain.db"}).state_file == "plain.db"
    with pytest.raises(ConfigError, match=SERVE_ARGV_ENV):
        config_from_env({SERVE_ARGV_ENV: '{"serve": 1}'})
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        app = create_app_from_env()
    backend: Backend = app.state.backend
    assert type(backend.tasks) is SQLiteTaskStore and backend.config.seed == 9
    with httpx.Client(transport=SyncASGITransport(app), base_url="http://mock") as client:
        assert client.post(T2V, json={"prompt": "x"}, headers=HEADERS).status_code == 200
    backend.close()
