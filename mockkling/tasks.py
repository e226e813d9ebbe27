"""Tasks and their lifecycle, and the store that holds them.

A task's status is never stored: it is derived from the task's schedule (when it starts
processing, when it ends, how it ends) and the clock. A read is O(1), no background timer runs,
and moving a controlled clock moves every task at once.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any, Final, Protocol, runtime_checkable

# The lifecycle, as data. Official spelling; surfaces translate with SPELLINGS.
SUBMITTED: Final = "submitted"
PROCESSING: Final = "processing"
SUCCEED: Final = "succeed"
FAILED: Final = "failed"

TRANSITIONS: Final[dict[str, tuple[str, ...]]] = {
    SUBMITTED: (PROCESSING,),
    PROCESSING: (SUCCEED, FAILED),
    SUCCEED: (),
    FAILED: (),
}
TERMINAL: Final = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
# What may change once a task is stored (a fate, a poll count, a session's selections, a
# deletion mark); the rest is fixed when it is created.
MUTABLE_FIELDS: Final = ("processing_ms", "done_ms", "outcome", "status_msg", "extra")
# Position in the lifecycle: a status only ever moves to a higher rank.
RANK: Final = {SUBMITTED: 0, PROCESSING: 1, SUCCEED: 2, FAILED: 2}

SPELLINGS: Final[dict[str, dict[str, str]]] = {
    "official": {SUBMITTED: SUBMITTED, PROCESSING: PROCESSING, SUCCEED: SUCCEED, FAILED: FAILED},
    "gateway": {SUBMITTED: SUBMITTED, PROCESSING: PROCESSING, SUCCEED: "succeeded", FAILED: FAILED},
    # The model-in-path design (/tasks, its callbacks) spells success with a d, as gateways do.
    "model_api": {SUBMITTED: SUBMITTED, PROCESSING: PROCESSING, SUCCEED: "succeeded", FAILED: FAILED},
}


class Task:
    """One generation task. Slots keep a stored task well under a kilobyte."""

    __slots__ = (
        "account",
        "action",
        "created_ms",
        "done_ms",
        "duration",
        "external_task_id",
        "extra",
        "mode",
        "model",
        "outcome",
        "processing_ms",
        "status_msg",
        "task_id",
    )

    def __init__(
        self,
        *,
        task_id: str,
        account: str,
        action: str,
        model: str,
        mode: str,
        duration: str,
        created_ms: int,
        processing_ms: int,
        done_ms: int,
        outcome: str = SUCCEED,
        status_msg: str = "",
        external_task_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.task_id = task_id
        self.account = account
        self.action = action
        self.model = model
        self.mode = mode
        self.duration = duration
        self.created_ms = created_ms
        self.processing_ms = processing_ms
        self.done_ms = done_ms
        self.outcome = outcome
        self.status_msg = status_msg
        self.external_task_id = external_task_id
        # Surface-specific details (callback URL, gateway metadata, ...); None for most tasks.
        self.extra = extra

    def copy(self) -> Task:
        """A copy whose ``extra`` can be changed without touching this task's."""
        twin = Task.__new__(Task)
        for name in Task.__slots__:
            setattr(twin, name, getattr(self, name))
        twin.extra = copy.deepcopy(self.extra)
        return twin

    def status(self, now_ms: int) -> str:
        if now_ms < self.processing_ms:
            return SUBMITTED
        if now_ms < self.done_ms:
            return PROCESSING
        return self.outcome

    def updated_ms(self, now_ms: int) -> int:
        """When the task entered the status it has at ``now_ms``."""
        if now_ms < self.processing_ms:
            return self.created_ms
        if now_ms < self.done_ms:
            return self.processing_ms
        return self.done_ms

    def __repr__(self) -> str:
        return f"Task(task_id={self.task_id!r}, action={self.action!r}, model={self.model!r})"


@runtime_checkable
class TaskStorage(Protocol):
    """What the Backend needs from a task store: the in-memory :class:`TaskStore` (the default)
    and the SQLite store of ``--state FILE`` (mockkling/storage.py) both provide it."""

    # Distinct for every store opened on one shared state (0 in memory): seeded ids mix it in,
    # so that workers and restarts sharing a state file never draw the same ids.
    salt: int

    def add(self, task: Task) -> bool:
        """Store ``task``; False (and nothing stored) if its external_task_id is taken."""
        ...

    def update(self, task: Task) -> None:
        """Keep the changes made to a stored task's schedule, outcome or extra (a fate that
        delays or fails it). Call it after changing a task: a durable store holds a copy."""
        ...

    def modify(self, task_id: str, change: Callable[[Task], None]) -> Task | None:
        """Apply ``change`` to the stored task as one step no other writer can interleave with:
        it is handed the task as stored now, and what it changes of the schedule, outcome and
        extra is kept. If ``change`` raises, nothing is kept. The task after the change; None
        (and ``change`` not called) for an unknown id. ``change`` may be called more than once
        (a store that retries), so it must change only the task it is handed."""
        ...

    def get(self, task_id: str) -> Task | None: ...

    def get_external(self, account: str, external_task_id: str) -> Task | None: ...

    def page(self, account: str, action: str, page_num: int, page_size: int) -> list[Task]:
        """Page ``page_num`` (from 1) of an account's tasks on one endpoint, newest first."""
        ...

    def owned(self, account: str, action: str) -> list[Task]:
        """An account's tasks on one endpoint, oldest first (a copy)."""
        ...

    def recent(self, limit: int) -> list[Task]:
        """The newest ``limit`` tasks of every account and endpoint, newest first (what the
        dashboard shows, without reading the whole store)."""
        ...

    def __iter__(self) -> Iterator[Task]: ...

    def __len__(self) -> int: ...

    def clear(self) -> None: ...

    def close(self) -> None:
        """Release the store's resources (a durable store flushes and closes its file); the
        store stays usable, and opens them again if it is used."""
        ...


class TaskStore:
    """In-memory task index: by id, by (account, external_task_id), and per account and action
    in creation order, so a page of a list costs O(page size) however many tasks are stored.

    It holds at most ``max_tasks`` (0: no bound): past that, the oldest go first, a hundredth
    of the bound at a time, so a long-running shared mock never grows without end."""

    def __init__(self, max_tasks: int = 0) -> None:
        self.max_tasks = max_tasks
        self._by_id: dict[str, Task] = {}
        self._by_external: dict[tuple[str, str], Task] = {}
        self._by_owner: dict[tuple[str, str], list[Task]] = {}
        self._lock = threading.Lock()

    salt = 0  # one process's memory: seeded ids need no salt

    def add(self, task: Task) -> bool:
        """Store ``task``; False (and nothing stored) if its external_task_id is taken."""
        with self._lock:
            if task.external_task_id is not None:
                key = (task.account, task.external_task_id)
                if key in self._by_external:
                    return False
                self._by_external[key] = task
            self._by_id[task.task_id] = task
            self._by_owner.setdefault((task.account, task.action), []).append(task)
            if self.max_tasks and len(self._by_id) > self.max_tasks:
                self._evict(max(1, self.max_tasks // 100))
            return True

    def _evict(self, count: int) -> None:
        """Forget the ``count`` oldest tasks (the caller holds the lock)."""
        oldest = [self._by_id.pop(task_id) for task_id in list(itertools.islice(self._by_id, count))]
        per_owner: dict[tuple[str, str], int] = {}
        for task in oldest:
            if task.external_task_id is not None:
                self._by_external.pop((task.account, task.external_task_id), None)
            key = (task.account, task.action)
            per_owner[key] = per_owner.get(key, 0) + 1
        for key, gone in per_owner.items():  # the oldest of the store are the oldest of each list
            del self._by_owner[key][:gone]

    def update(self, task: Task) -> None:
        """Nothing to do: the stored task is the very object that was changed."""

    def modify(self, task_id: str, change: Callable[[Task], None]) -> Task | None:
        with self._lock:
            task = self._by_id.get(task_id)
            if task is None:
                return None
            # Changed on a copy, then kept: a change that raises halfway leaves no trace.
            draft = task.copy()
            change(draft)
            for name in MUTABLE_FIELDS:
                setattr(task, name, getattr(draft, name))
            return task

    def get(self, task_id: str) -> Task | None:
        return self._by_id.get(task_id)

    def get_external(self, account: str, external_task_id: str) -> Task | None:
        return self._by_external.get((account, external_task_id))

    def page(self, account: str, action: str, page_num: int, page_size: int) -> list[Task]:
        """Page ``page_num`` (from 1) of an account's tasks on one endpoint, newest first."""
        tasks = self._by_owner.get((account, action), [])
        stop = len(tasks) - (page_num - 1) * page_size
        if stop <= 0:
            return []
        return tasks[max(0, stop - page_size) : stop][::-1]

    def owned(self, account: str, action: str) -> list[Task]:
        """An account's tasks on one endpoint, oldest first (a copy)."""
        return list(self._by_owner.get((account, action), ()))

    def recent(self, limit: int) -> list[Task]:
        """The newest ``limit`` tasks, newest first: O(limit), the dict keeps creation order."""
        with self._lock:  # a dict may not change while it is iterated
            return list(itertools.islice(reversed(self._by_id.values()), max(limit, 0)))

    def __iter__(self) -> Iterator[Task]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    def clear(self) -> None:
        with self._lock:
            self._by_id.clear()
            self._by_external.clear()
            self._by_owner.clear()

    def close(self) -> None:
        """Nothing to release: the tasks live as long as the store."""
