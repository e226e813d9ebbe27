"""The state seam: where the Backend keeps what changes, per namespace.

The Backend talks to one :class:`State`. It hands out a :class:`Space` per namespace (the
tasks, fault and fate rules, limits, journal and clock one namespace sees) and keeps what all
namespaces share: id allocation, accounts and keys added at run time, webhook secrets.

Two implementations: :class:`MemoryState` here (this process's memory; the tasks in memory or,
with ``--state FILE``, in SQLite), and ``RedisState`` (mockkling/redis_state.py, ``--state
redis://...``), where every piece lives in Redis so that any number of processes behave as one
mock. The domain objects (``FaultSet``, ``FateRules``, ``Limiter``, ``Journal``) are the same
classes in both: the Redis ones are subclasses that keep their data in Redis.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from .clock import Clock, ManualClock, SystemClock
from .config import Config
from .fates import FateRules
from .fault_rules import FaultSet
from .journal import Journal
from .limits import Limiter
from .namespaces import DEFAULT as DEFAULT_NAMESPACE
from .tasks import TaskStorage, TaskStore


class Space:
    """One namespace's state. ``reset`` puts it back as configured (its clock stays)."""

    def __init__(
        self,
        name: str,
        tasks: TaskStorage,
        faults: FaultSet,
        fates: FateRules,
        limits: Limiter,
        journal: Journal,
        clock: Clock,
    ) -> None:
        self.name = name
        self.tasks = tasks
        self.faults = faults
        self.fates = fates
        self.limits = limits
        self.journal = journal
        self.clock = clock

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def use_manual_clock(self, start_ms: int) -> ManualClock:
        """Swap in a clock that moves only when told to, at ``start_ms``."""
        clock = ManualClock(start_ms)
        self.clock = clock
        return clock

    def reset(self) -> None:
        self.tasks.clear()
        self.faults.reset()
        self.fates.reset()
        self.limits.reset()
        self.journal.clear()

    def close(self) -> None:
        self.tasks.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class State(Protocol):
    """What the Backend keeps its state in (see the module's docstring)."""

    # "memory", "sqlite" or "redis": what the health endpoint and the banner say.
    kind: str

    def space(self, name: str) -> Space:
        """Namespace ``name``'s state, made as configured on first use."""
        ...

    def namespaces(self) -> list[str]:
        """The namespaces used so far (the default one first)."""
        ...

    def draw_id(self) -> int:
        """128 bits for a new id: reproducible under a seed, never the same twice in one state."""
        ...

    def reseed(self, seed: int | str | None) -> None:
        """Draw ids from ``seed`` again (a reset of a state that may repeat them)."""
        ...

    @contextmanager
    def request(self) -> Iterator[None]:
        """Around each request: a shared state reads what it needs once per request there."""
        ...

    def accounts(self) -> tuple[dict[str, str], dict[str, str]] | None:
        """Accounts and API keys added at run time by any process sharing this state (None: this
        process's own memory holds them all)."""
        ...

    def add_account(self, access_key: str, secret_key: str, api_keys: tuple[str, ...]) -> None: ...

    def add_api_key(self, key: str, account: str) -> None: ...

    def webhook_secrets(self, account: str) -> tuple[str, ...]: ...

    def set_webhook_secrets(self, account: str | None, secrets: tuple[str, ...]) -> None: ...

    def ping(self) -> None:
        """Raise KlingError 5001 when the store cannot be reached."""
        ...

    def close(self) -> None: ...


def make_space(
    config: Config,
    name: str,
    tasks: TaskStorage,
    clock: Clock,
    *,
    faults: Callable[[], FaultSet] | None = None,
) -> Space:
    """A namespace's state in this process's memory, around ``tasks``, as configured."""
    holder: list[Space] = []
    # Limits read the namespace's clock as it is at each call (a test may swap in a manual one).
    limits = Limiter(config.limits, now=lambda: (holder[0].clock if holder else clock).now_ms(), tasks=tasks)
    space = Space(
        name,
        tasks,
        faults() if faults else FaultSet(config.faults, seed=config.seed),
        FateRules(),
        limits,
        Journal(config.journal_size, config.journal_body_bytes, config.journal_header_bytes),
        clock,
    )
    holder.append(space)
    return space


class MemoryState:
    """State in this process: every namespace's rules, limits, journal and clock in memory, its
    tasks in memory or in the SQLite file of ``--state FILE``."""

    def __init__(self, config: Config, clock: Clock | None = None) -> None:
        self._config = config
        self.kind = "memory" if config.state_file is None else "sqlite"
        self._lock = threading.Lock()
        self._spaces: dict[str, Space] = {}
        self._first_clock = clock
        self._webhook = dict(config.webhook_secrets)
        self._all_webhook = config.webhook_secret or ()
        self._random = random.Random()
        self._id_lock = threading.Lock()
        self.space(DEFAULT_NAMESPACE)  # opens a state file now: a bad one stops the server at start

    def space(self, name: str) -> Space:
        space = self._spaces.get(name)
        if space is None:
            with self._lock:
                space = self._spaces.get(name)
                if space is None:
                    # The first namespace (the default one) takes the clock the Backend was given.
                    clock = self._first_clock or SystemClock()
                    self._first_clock = None
                    space = self._spaces[name] = make_space(self._config, name, self._store(name), clock)
        return space

    def _store(self, name: str) -> TaskStorage:
        if self._config.state_file is None:
            return TaskStore(self._config.max_tasks)
        from .storage import SQLiteTaskStore  # only a durable backend pays for sqlite3

        return SQLiteTaskStore(self._config.state_file, namespace=name)

    def namespaces(self) -> list[str]:
        return list(self._spaces)

    def draw_id(self) -> int:
        with self._id_lock:
            return self._random.getrandbits(128)

    def reseed(self, seed: int | str | None) -> None:
        with self._id_lock:
            self._random.seed(seed)

    @contextmanager
    def request(self) -> Iterator[None]:
        yield

    def accounts(self) -> tuple[dict[str, str], dict[str, str]] | None:
        return None

    def add_account(self, access_key: str, secret_key: str, api_keys: tuple[str, ...]) -> None:
        """Nothing to share: the Authenticator holds it."""

    def add_api_key(self, key: str, account: str) -> None:
        """Nothing to share: the Authenticator holds it."""

    def webhook_secrets(self, account: str) -> tuple[str, ...]:
        return self._webhook.get(account, self._all_webhook)

    def set_webhook_secrets(self, account: str | None, secrets: tuple[str, ...]) -> None:
        if account is None:
            self._all_webhook = secrets
            self._webhook.clear()
        else:
            self._webhook[account] = secrets

    def ping(self) -> None:
        """Memory is always there (a state file is checked when it is opened)."""

    def close(self) -> None:
        for space in list(self._spaces.values()):
            space.close()

    def __repr__(self) -> str:
        return f"MemoryState({self.kind}, namespaces={len(self._spaces)})"
