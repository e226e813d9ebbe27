"""Durable task storage: the tasks of ``--state FILE`` in an embedded SQLite database.

The store keeps exactly what the in-memory :class:`~mockkling.tasks.TaskStore` keeps, behind the
same interface, so the Backend works the same on either. A task is committed before ``add``
returns, hence before its create is acknowledged. Statuses are never stored: they are derived
from each task's stored schedule and the clock, so after a restart every lifecycle carries on
where its schedule says it is.

The file is in WAL mode: readers never block the writer, and several processes (uvicorn
workers) can share it. ``synchronous=NORMAL`` makes every commit survive the death of the
process (SIGKILL, a crash); an operating-system crash or power cut may lose the last commits,
which a mock's state can afford. Uniqueness of ``external_task_id`` per account is a unique
index, so it holds across processes too.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final, TypeVar

import orjson

from .config import ConfigError
from .namespaces import DEFAULT as DEFAULT_NAMESPACE
from .tasks import Task

# Bump when the layout changes; a file of another version is refused, never misread (version 1,
# before namespaces, is brought up to date when opened: its tasks go to the default namespace).
SCHEMA_VERSION: Final = 2
# How long a write waits for another process's write to finish before giving up.
BUSY_TIMEOUT_SECONDS: Final = 10.0
T = TypeVar("T")

_COLUMNS: Final = (
    "task_id",
    "account",
    "action",
    "model",
    "mode",
    "duration",
    "created_ms",
    "processing_ms",
    "done_ms",
    "outcome",
    "status_msg",
    "external_task_id",
    "extra",
)
# Every statement reads and writes one namespace's tasks (the first parameter).
_SELECT: Final = f"SELECT {', '.join(_COLUMNS)} FROM tasks WHERE namespace = ?"
_UPDATE: Final = (
    "UPDATE tasks SET processing_ms = ?, done_ms = ?, outcome = ?, status_msg = ?, extra = ?"
    " WHERE namespace = ? AND task_id = ?"
)
_INSERT: Final = (
    f"INSERT INTO tasks (namespace, {', '.join(_COLUMNS)}) VALUES (?, {', '.join('?' * len(_COLUMNS))})"
)

# seq keeps creation order (the order of a list page); AUTOINCREMENT never reuses a number, so
# the order holds after a clear too. The unique index on (namespace, account, external_task_id)
# holds the per-account uniqueness for every process (NULLs never collide).
_TASKS: Final = """CREATE TABLE IF NOT EXISTS tasks (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        namespace TEXT NOT NULL,
        task_id TEXT NOT NULL,
        account TEXT NOT NULL,
        action TEXT NOT NULL,
        model TEXT NOT NULL,
        mode TEXT NOT NULL,
        duration TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        processing_ms INTEGER NOT NULL,
        done_ms INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        status_msg TEXT NOT NULL,
        external_task_id TEXT,
        extra TEXT,
        UNIQUE (namespace, task_id)
    )"""
_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    _TASKS,
    "CREATE UNIQUE INDEX IF NOT EXISTS tasks_external ON tasks (namespace, account, external_task_id)",
    "CREATE INDEX IF NOT EXISTS tasks_owner ON tasks (namespace, account, action, seq)",
    f"INSERT OR IGNORE INTO meta VALUES ('schema', {SCHEMA_VERSION})",
    "INSERT OR IGNORE INTO meta VALUES ('opens', 0)",
)
# Version 1 -> 2: the same tasks, in the default namespace.
_FROM_V1: Final = (
    "ALTER TABLE tasks RENAME TO tasks_v1",
    "DROP INDEX IF EXISTS tasks_external",
    "DROP INDEX IF EXISTS tasks_owner",
    _TASKS,
    f"INSERT INTO tasks (seq, namespace, {', '.join(_COLUMNS)})"
    f" SELECT seq, 'default', {', '.join(_COLUMNS)} FROM tasks_v1 ORDER BY seq",
    "DROP TABLE tasks_v1",
    "UPDATE meta SET value = 2 WHERE key = 'schema'",
)


class SQLiteTaskStore:
    """Tasks in a SQLite file, shared by every process that opens it."""

    salt: int

    def __init__(self, path: str | os.PathLike[str], namespace: str = DEFAULT_NAMESPACE) -> None:
        self.path = Path(path)
        self.namespace = namespace
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = self._open(first=True)

    def _open(self, *, first: bool = False) -> sqlite3.Connection:
        """A connection to the file; the first one also creates or checks the layout and takes
        this store's salt."""
        where = f"state file {self.path}"
        if self.path.is_dir():
            raise ConfigError(f"{where} is a directory, not a file")
        try:
            # Autocommit: each statement is its own transaction, committed when it returns. No
            # busy timeout: _patiently waits for other processes' writes in finer steps.
            db = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open {where}: {exc}") from None
        try:
            mode = _patiently(lambda: db.execute("PRAGMA journal_mode=WAL").fetchone()[0])
            if mode != "wal":
                raise ConfigError(f"{where}: SQLite cannot keep it in WAL mode (got {mode!r})")
            db.execute("PRAGMA synchronous=NORMAL")
            if first:
                self._prepare(db, where)
        except sqlite3.DatabaseError as exc:
            db.close()
            raise ConfigError(f"{where} is not a usable mockkling state: {exc}") from None
        except BaseException:
            db.close()
            raise
        return db

    def _prepare(self, db: sqlite3.Connection, where: str) -> None:
        # One transaction, so that processes opening a new file together create it once.
        _patiently(lambda: db.execute("BEGIN IMMEDIATE"))
        db.execute(_SCHEMA[0])
        found = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if found is not None and found[0] == 1:
            for statement in _FROM_V1:
                db.execute(statement)
        for statement in _SCHEMA:
            db.execute(statement)
        version = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0]
        # Each store opened on this file gets a salt of its own: one more than the last.
        opened = db.execute("UPDATE meta SET value = value + 1 WHERE key = 'opens' RETURNING value")
        self.salt = int(opened.fetchone()[0])
        db.execute("COMMIT")
        if version != SCHEMA_VERSION:
            raise ConfigError(
                f"{where} holds mockkling state of layout version {version}; this mockkling reads "
                f"version {SCHEMA_VERSION}: use another file"
            )

    def _conn(self) -> sqlite3.Connection:
        """The open connection (caller holds the lock); opened again after :meth:`close`."""
        if self._db is None:
            self._db = self._open()
        return self._db

    def __repr__(self) -> str:
        return f"SQLiteTaskStore({str(self.path)!r}, namespace={self.namespace!r})"

    # -- the TaskStorage interface -------------------------------------------------------------

    def add(self, task: Task) -> bool:
        """Store and commit ``task``; False (and nothing stored) if its external_task_id is taken."""
        extra = None if task.extra is None else orjson.dumps(task.extra).decode()
        row = (
            self.namespace,
            task.task_id,
            task.account,
            task.action,
            task.model,
            task.mode,
            task.duration,
            task.created_ms,
            task.processing_ms,
            task.done_ms,
            task.outcome,
            task.status_msg,
            task.external_task_id,
            extra,
        )
        try:
            self._run(lambda db: db.execute(_INSERT, row))
        except sqlite3.IntegrityError as exc:
            if "external_task_id" in str(exc):
                return False
            raise
        return True

    def update(self, task: Task) -> None:
        """Write back what may change once a task is stored: its schedule, outcome and extra."""
        row = _update_row(task, self.namespace)
        self._run(lambda db: db.execute(_UPDATE, row))

    def modify(self, task_id: str, change: Callable[[Task], None]) -> Task | None:
        """Read, change and write back in one write transaction: other threads wait on the lock,
        other processes on the file's write lock (BEGIN IMMEDIATE)."""
        params = (self.namespace, task_id)

        def step(db: sqlite3.Connection) -> Task | None:
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(f"{_SELECT} AND task_id = ?", params).fetchone()
                task = None if row is None else _task(row)
                if task is not None:
                    change(task)
                    db.execute(_UPDATE, _update_row(task, self.namespace))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return task

        return self._run(step)

    def get(self, task_id: str) -> Task | None:
        return self._one(f"{_SELECT} AND task_id = ?", (task_id,))

    def get_external(self, account: str, external_task_id: str) -> Task | None:
        return self._one(f"{_SELECT} AND account = ? AND external_task_id = ?", (account, external_task_id))

    def page(self, account: str, action: str, page_num: int, page_size: int) -> list[Task]:
        """Page ``page_num`` (from 1) of an account's tasks on one endpoint, newest first."""
        query = f"{_SELECT} AND account = ? AND action = ? ORDER BY seq DESC LIMIT ? OFFSET ?"
        return self._all(query, (account, action, page_size, (page_num - 1) * page_size))

    def owned(self, account: str, action: str) -> list[Task]:
        """An account's tasks on one endpoint, oldest first."""
        return self._all(f"{_SELECT} AND account = ? AND action = ? ORDER BY seq", (account, action))

    def recent(self, limit: int) -> list[Task]:
        """The newest ``limit`` tasks, newest first."""
        return self._all(f"{_SELECT} ORDER BY seq DESC LIMIT ?", (max(limit, 0),))

    def __iter__(self) -> Iterator[Task]:
        return iter(self._all(f"{_SELECT} ORDER BY seq", ()))

    def __len__(self) -> int:
        query = "SELECT count(*) FROM tasks WHERE namespace = ?"
        return int(self._run(lambda db: db.execute(query, (self.namespace,)).fetchone()[0]))

    def clear(self) -> None:
        self._run(lambda db: db.execute("DELETE FROM tasks WHERE namespace = ?", (self.namespace,)))

    def close(self) -> None:
        """Close the file (the last connection to close folds the WAL back into the database).
        Idempotent; the store opens it again if it is used after."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # -- statements and rows ---------------------------------------------------------------------

    def _run(self, call: Callable[[sqlite3.Connection], T]) -> T:
        def attempt() -> T:
            with self._lock:
                return call(self._conn())

        return _patiently(attempt)

    def _one(self, query: str, params: tuple[Any, ...]) -> Task | None:
        params = (self.namespace, *params)
        row = self._run(lambda db: db.execute(query, params).fetchone())
        return None if row is None else _task(row)

    def _all(self, query: str, params: tuple[Any, ...]) -> list[Task]:
        params = (self.namespace, *params)
        return [_task(row) for row in self._run(lambda db: db.execute(query, params).fetchall())]


def _patiently(call: Callable[[], T]) -> T:
    """``call()``, again while another process holds the file's write lock (SQLITE_BUSY), with
    pauses from 0.1 ms up to BUSY_TIMEOUT_SECONDS in all. SQLite's own busy handler sleeps in
    steps of milliseconds, which halves what two workers writing at once can store."""
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    pause = 0.0001
    while True:
        try:
            return call()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.005)


def _update_row(task: Task, namespace: str) -> tuple[Any, ...]:
    """_UPDATE's parameters: what may change of a stored task (MUTABLE_FIELDS), then its key."""
    extra = None if task.extra is None else orjson.dumps(task.extra).decode()
    return (task.processing_ms, task.done_ms, task.outcome, task.status_msg, extra, namespace, task.task_id)


def _task(row: tuple[Any, ...]) -> Task:
    extra = row[12]
    return Task(
        task_id=row[0],
        account=row[1],
        action=row[2],
        model=row[3],
        mode=row[4],
        duration=row[5],
        created_ms=row[6],
        processing_ms=row[7],
        done_ms=row[8],
        outcome=row[9],
        status_msg=row[10],
        external_task_id=row[11],
        extra=None if extra is None else orjson.loads(extra),
    )
