"""Real per-account limits: request rate, concurrently running tasks, generation balance.

These are behaviour, not canned answers: a client is refused only when it really goes over
(429 / 1302 past its rate, 429 / 1303 past its running tasks, 429 / 1102 when its balance is
spent), and it recovers as the real service lets it (tokens refill, tasks end). Every time is
read from the backend's clock, so a test drives the limits with the manual clock.
"""

from __future__ import annotations

import heapq
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from . import catalogue
from .errors import KlingError
from .tasks import SUCCEED, Task

_FIELDS = ("rate", "per_seconds", "burst", "concurrency", "balance")


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-account limits; ``None`` means unlimited.

    ``rate`` requests per ``per_seconds`` (default 1) seconds, with bursts of up to ``burst``
    (default ``rate``) requests; ``concurrency`` tasks running at once; ``balance`` units to
    spend on generations (a task costs ``catalogue.units``; a task that fails costs nothing).
    ``accounts`` overrides any of these for one account, field by field.
    """

    rate: int | None = None
    per_seconds: float | None = None
    burst: int | None = None
    concurrency: int | None = None
    balance: float | None = None
    accounts: Mapping[str, Limits] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("rate", "burst", "concurrency"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"limits.{name} must be an integer >= 1 (or null), not {value!r}")
        for name in ("per_seconds", "balance"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
            ):
                raise ValueError(f"limits.{name} must be a number (or null), not {value!r}")
        if self.per_seconds is not None and not 0.001 <= self.per_seconds <= 86400:
            raise ValueError(f"limits.per_seconds must be between 0.001 and 86400, not {self.per_seconds!r}")
        if self.balance is not None and self.balance < 0:
            raise ValueError(f"limits.balance must be >= 0, not {self.balance!r}")
        for account, override in self.accounts.items():
            if not isinstance(override, Limits) or override.accounts:
                raise ValueError(f"limits.accounts.{account} must be a table of limits")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "limits") -> Limits:
        """Limits from a config table or a control-API body; ValueError names what is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{where} must be a table, not {data!r}")
        unknown = set(data) - {*_FIELDS, "accounts"}
        if unknown:
            raise ValueError(
                f"{where}: unknown keys {sorted(unknown)}; known: {', '.join(_FIELDS)}, accounts"
            )
        accounts = data.get("accounts") or {}
        if not isinstance(accounts, Mapping):
            raise ValueError(f"{where}.accounts must be a table of account -> limits")
        overrides = {}
        for account, table in accounts.items():
            if isinstance(table, Mapping) and "accounts" in table:
                raise ValueError(f"{where}.accounts.{account} cannot have accounts of its own")
            overrides[str(account)] = cls.from_dict(table, f"{where}.accounts.{account}")
        return cls(**{k: data[k] for k in _FIELDS if k in data}, accounts=overrides)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(self, name) for name in _FIELDS}
        out["accounts"] = {
            account: {k: v for k, v in limits.to_dict().items() if k != "accounts" and v is not None}
            for account, limits in self.accounts.items()
        }
        return out

    def for_account(self, account: str) -> Limits:
        """The limits that apply to ``account``: the defaults with its overrides on top."""
        override = self.accounts.get(account)
        if override is None:
            return self
        changes = {f.name: getattr(override, f.name) for f in fields(override) if f.name != "accounts"}
        return replace(self, **{k: v for k, v in changes.items() if v is not None}, accounts={})

    @property
    def any_rate(self) -> bool:
        return self.rate is not None or any(o.rate is not None for o in self.accounts.values())

    @property
    def any_concurrency(self) -> bool:
        return self.concurrency is not None or any(o.concurrency is not None for o in self.accounts.values())

    @property
    def any_limit(self) -> bool:
        """Whether any account is limited at all (rate, running tasks or balance)."""
        balances = (self.balance, *(o.balance for o in self.accounts.values()))
        return self.any_rate or self.any_concurrency or any(b is not None for b in balances)


class _Bucket:
    """A token bucket in exact integer arithmetic: one token is ``period_ms`` units and every
    millisecond adds ``rate`` units, so it admits exactly ``rate`` requests per period."""

    __slots__ = ("capacity", "credit", "last_ms", "period_ms", "rate")

    def __init__(self, rate: int, period_ms: int, burst: int, now_ms: int) -> None:
        self.rate = rate
        self.period_ms = period_ms
        self.capacity = burst * period_ms
        self.credit = self.capacity
        self.last_ms = now_ms

    def take(self, now_ms: int) -> int:
        """0 if a token was taken, else the milliseconds until one is available."""
        if now_ms > self.last_ms:
            self.credit = min(self.capacity, self.credit + (now_ms - self.last_ms) * self.rate)
            self.last_ms = now_ms
        if self.credit >= self.period_ms:
            self.credit -= self.period_ms
            return 0
        return -(-(self.period_ms - self.credit) // self.rate)

    def tokens(self, now_ms: int) -> float:
        credit = min(self.capacity, self.credit + max(0, now_ms - self.last_ms) * self.rate)
        return credit / self.period_ms


class _Running:
    """One account's non-terminal tasks of one resource-pack kind: when each ends and how many
    slots it holds, with a min-heap of the ends, so counting what still runs costs O(log n)
    per task however many tasks are stored."""

    __slots__ = ("ends", "heap", "slots")

    def __init__(self) -> None:
        self.ends: dict[str, tuple[int, int]] = {}  # task_id -> (done_ms, slots)
        self.heap: list[tuple[int, str]] = []
        self.slots = 0

    def count(self, now_ms: int) -> int:
        """Slots held at ``now_ms``."""
        heap, ends = self.heap, self.ends
        while heap and heap[0][0] <= now_ms:
            done_ms, task_id = heapq.heappop(heap)
            entry = ends.get(task_id)
            if entry is not None and entry[0] == done_ms:  # else stale: the task was rescheduled
                self.forget(task_id)
        return self.slots

    def track(self, task_id: str, done_ms: int, slots: int) -> None:
        self.forget(task_id)
        self.ends[task_id] = (done_ms, slots)
        self.slots += slots
        heapq.heappush(self.heap, (done_ms, task_id))

    def forget(self, task_id: str) -> None:
        entry = self.ends.pop(task_id, None)
        if entry is not None:
            self.slots -= entry[1]


def pack_kind(task: Task) -> str:
    """The resource-pack kind a task draws on (video, image, virtual_try_on): slots are
    counted per account and kind, as the official concurrency rules say."""
    endpoint = catalogue.ENDPOINTS.get(task.action)
    return "video" if endpoint is None else endpoint.pack


def task_slots(task: Task) -> int:
    """Slots a running task holds: an image task one per image (``n``), any other one."""
    n = (task.extra or {}).get("n", 1) if pack_kind(task) == "image" else 1
    return n if isinstance(n, int) and n > 0 else 1


def task_cost(task: Task) -> float:
    """Units a task deducts when it succeeds (``final_unit_deduction``)."""
    return float(catalogue.task_units(task))


class Limiter:
    """Applies :class:`Limits` to requests (rate) and new tasks (concurrency, balance)."""

    def __init__(
        self, limits: Limits | None = None, *, now: Callable[[], int], tasks: Iterable[Task] = ()
    ) -> None:
        self._now = now
        self._tasks = tasks
        self._lock = threading.Lock()
        self._configured = limits or Limits()
        self.set(self._configured)

    # -- settings ----------------------------------------------------------------------------

    @property
    def limits(self) -> Limits:
        return self._limits

    def set(self, limits: Limits | None = None, **values: Any) -> Limits:
        """Replace the limits (``Limits`` or its fields as keywords); usage starts afresh:
        full buckets, full balances, and the running tasks counted from the store."""
        if limits is None:
            limits = Limits.from_dict(values) if values else Limits()
        elif values:
            raise TypeError("give either a Limits or keyword fields, not both")
        now = self._now()
        with self._lock:
            self._limits = limits
            self.rate_on = limits.any_rate
            self._buckets: dict[str, _Bucket] = {}
            self._balances: dict[str, float] = {}
            self._balance_since = now
            self._running: dict[tuple[str, str], _Running] | None = None
            if limits.any_concurrency:
                running: dict[tuple[str, str], _Running] = {}
                for task in self._tasks:
                    if task.done_ms > now:
                        key = (task.account, pack_kind(task))
                        running.setdefault(key, _Running()).track(
                            task.task_id, task.done_ms, task_slots(task)
                        )
                self._running = running
        return limits

    def reset(self) -> None:
        """Back to the configured limits, with fresh usage."""
        self.set(self._configured)

    # -- request rate -----------------------------------------------------------------------

    def hit(self, account: str) -> KlingError | None:
        """Count one request by ``account``; the 429 / 1302 to answer if it is over its rate."""
        limits = self._limits.for_account(account)
        if limits.rate is None:
            return None
        now = self._now()
        with self._lock:
            bucket = self._buckets.get(account)
            if bucket is None:
                period_ms = max(1, round((limits.per_seconds or 1.0) * 1000))
                bucket = _Bucket(limits.rate, period_ms, limits.burst or limits.rate, now)
                self._buckets[account] = bucket
            wait_ms = bucket.take(now)
        if not wait_ms:
            return None
        return KlingError(
            1302,
            f"Request rate exceeds the limit of {limits.rate} per {limits.per_seconds or 1:g}s",
            headers={"Retry-After": str(max(1, math.ceil(wait_ms / 1000)))},
        )

    # -- new tasks -----------------------------------------------------------------------------

    def admit(self, task: Task) -> None:
        """Reserve a task's running slots and its cost, or raise 429 / 1303 or 1102."""
        limits = self._limits.for_account(task.account)
        if limits.concurrency is None and limits.balance is None:
            return
        now = self._now()
        with self._lock:
            running = None
            if limits.concurrency is not None and self._running is not None:
                kind, slots = pack_kind(task), task_slots(task)
                running = self._running.setdefault((task.account, kind), _Running())
                held = running.count(now)
                if held + slots > limits.concurrency:
                    raise KlingError(
                        1303,
                        f"parallel task over resource pack limit: {held} of {limits.concurrency} "
                        f"{kind} slots in use, the task needs {slots}",
                    )
            if limits.balance is not None:
                cost = task_cost(task)
                left = self._balances.get(task.account, limits.balance)
                if left < cost:
                    raise KlingError(
                        1102, f"Resource pack depleted: {left:g} units left, the task needs {cost:g}"
                    )
                if task.outcome == SUCCEED:
                    self._balances[task.account] = left - cost
            if running is not None and task.done_ms > now:
                running.track(task.task_id, task.done_ms, task_slots(task))

    def release(self, task: Task) -> None:
        """Undo :meth:`admit` for a task that was not stored after all."""
        with self._lock:
            running = None if self._running is None else self._running.get((task.account, pack_kind(task)))
            if running is not None:
                running.forget(task.task_id)
            if task.account in self._balances and task.outcome == SUCCEED:
                self._balances[task.account] += task_cost(task)

    def rescheduled(self, task: Task, old_outcome: str) -> None:
        """A fate moved the task's end or changed its outcome: update its slots and its charge."""
        now = self._now()
        tracked = self._limits.for_account(task.account).concurrency is not None
        with self._lock:
            if self._running is not None and tracked:
                running = self._running.setdefault((task.account, pack_kind(task)), _Running())
                if task.done_ms > now:
                    running.track(task.task_id, task.done_ms, task_slots(task))
                else:
                    running.forget(task.task_id)
            if task.account in self._balances and task.created_ms >= self._balance_since:
                if old_outcome == SUCCEED and task.outcome != SUCCEED:
                    self._balances[task.account] += task_cost(task)
                elif old_outcome != SUCCEED and task.outcome == SUCCEED:
                    self._balances[task.account] -= task_cost(task)

    # -- reading -------------------------------------------------------------------------------

    def usage(self, account: str) -> dict[str, Any]:
        """What ``account`` has left: request tokens, running tasks, balance (None: unlimited)."""
        limits = self._limits.for_account(account)
        now = self._now()
        with self._lock:
            bucket = self._buckets.get(account)
            tokens = None
            if limits.rate is not None:
                tokens = float(limits.burst or limits.rate) if bucket is None else bucket.tokens(now)
            running = None
            if self._running is not None and limits.concurrency is not None:
                running = sum(
                    entry.count(now) for (owner, _kind), entry in self._running.items() if owner == account
                )
            balance = None
            if limits.balance is not None:
                balance = self._balances.get(account, limits.balance)
        return {"tokens": tokens, "running": running, "balance": balance}

    def accounts_in_use(self) -> list[str]:
        with self._lock:
            seen = {*self._buckets, *self._balances, *(owner for owner, _kind in self._running or {})}
        return sorted(seen)

    def __repr__(self) -> str:
        return f"Limiter({self._limits!r})"
