"""The state in Redis (``--state redis://HOST:PORT/DB``): any number of processes, on any hosts,
behave as one mock.

Everything that changes lives in Redis: tasks, fault and fate rules with their counters,
limits and their usage, the journal, the manual clock, id allocation, accounts and keys added
at run time, webhook secrets, and the callbacks still to send. The classes here are the domain
classes of the in-memory state (``FaultSet``, ``FateRules``, ``Limiter``, ``Journal``, the
task store) with their data in Redis; whatever must hold across processes at once is one Lua
script (a rule's ``times``, a rate bucket, running-task slots and balances, a unique
``external_task_id``, a journal entry's number), so Redis runs it atomically.

Keys: ``mk:{NAMESPACE}:...`` for a namespace's state (the braces keep a namespace on one
Redis Cluster slot), ``mk:...`` for what namespaces share.

A request reads its namespace's rules, limits and clock once (:meth:`RedisState.request`,
around each request): one round trip, however often the request looks at them. A change made
through any process is seen by the next request on every process. When Redis cannot be
reached, every operation raises KlingError 5001, which each surface answers as 503 in its own
envelope; the client reconnects by itself once Redis is back.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import math
import random
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, Final, ParamSpec, TypeVar

import anyio
import orjson
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from . import catalogue
from .callbacks import (
    CallbackDispatcher,
    DeliveryAttempt,
    Renderer,
    Secrets,
    _Notification,
    _Watch,
    lifecycle_path,
)
from .clock import Clock, ManualClock, SystemClock
from .config import CallbackSettings, Config, ConfigError
from .errors import KlingError
from .fates import ActiveFate, FateRule, FateRules, reschedule
from .fault_rules import ActiveFault, FaultRule, FaultSet, as_rule
from .journal import Journal, JournalEntry, Recorded
from .limits import Limiter, Limits, pack_kind, task_cost, task_slots
from .namespaces import DEFAULT as DEFAULT_NAMESPACE
from .state import Space
from .tasks import RANK, SUCCEED, TERMINAL, Task

logger = logging.getLogger("mockkling.redis")

P = ParamSpec("P")
T = TypeVar("T")

# A request that waits longer than this for Redis is answered 503 / 5001.
SOCKET_TIMEOUT_SECONDS: Final = 5.0
CONNECT_TIMEOUT_SECONDS: Final = 2.0
# Ids drawn from the shared counter at once (under a seed): one round trip per this many ids.
ID_BLOCK: Final = 256
# How often an idle callback sender looks for work another process left (a dead one's lease).
POLL_SECONDS: Final = 0.5
# The pack kinds a task can draw on (running slots are counted per account and kind).
PACK_KINDS: Final = tuple(sorted({"video", *(e.pack for e in catalogue.ENDPOINTS.values())}))
# Answers of a Redis that is up but cannot take writes now: the same 503 as a Redis gone.
_BUSY_REPLIES: Final = ("MISCONF", "LOADING", "READONLY", "NOREPLICAS", "MASTERDOWN", "TRYAGAIN", "OOM")


def unavailable(exc: Exception) -> KlingError:
    return KlingError(5001, f"The mock's state store (Redis) cannot be reached: {type(exc).__name__}")


def store_call(method: Callable[P, T]) -> Callable[P, T]:
    """Turn Redis being away (or unable to write) into KlingError 5001."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise unavailable(exc) from None
        except redis.ResponseError as exc:
            if str(exc).startswith(_BUSY_REPLIES):
                raise unavailable(exc) from None
            raise

    return wrapper


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


# -- Lua: what must hold across processes, done by Redis at once ---------------------------------

# KEYS: counts hash; ARGV: rule id, times ('' for unlimited). Takes one turn of a rule:
# -1 when it has none left, else how often it has been applied.
_TAKE: Final = """
if ARGV[2] ~= '' then
  local field = 'remaining:' .. ARGV[1]
  local left = redis.call('HGET', KEYS[1], field)
  left = left and tonumber(left) or tonumber(ARGV[2])
  if left <= 0 then return -1 end
  redis.call('HSET', KEYS[1], field, left - 1)
end
return redis.call('HINCRBY', KEYS[1], 'used:' .. ARGV[1], 1)
"""
# KEYS: counts hash; ARGV: rule id, times. Gives a turn back (its task was not stored).
_GIVE_BACK: Final = """
if ARGV[2] ~= '' then redis.call('HINCRBY', KEYS[1], 'remaining:' .. ARGV[1], 1) end
return redis.call('HINCRBY', KEYS[1], 'used:' .. ARGV[1], -1)
"""
# KEYS: rules hash, id counter; ARGV: rule JSON. A rule in force under a new id.
_ADD_RULE: Final = """
local id = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], string.format('%012d', id), ARGV[1])
return id
"""
# KEYS: init marker, faults hash, fault id counter, settings hash, namespaces set; ARGV:
# namespace, limits JSON, now, the configured fault rules' JSON. A namespace as configured,
# made once by whichever process uses it first.
_INIT: Final = """
if not redis.call('SET', KEYS[1], '1', 'NX') then return 0 end
redis.call('DEL', KEYS[2])
for i = 4, #ARGV do
  redis.call('HSET', KEYS[2], string.format('%012d', i - 3), ARGV[i])
end
redis.call('SET', KEYS[3], #ARGV - 3)
redis.call('HSET', KEYS[4], 'limits', ARGV[2], 'since', ARGV[3], 'faults_enabled', '1')
redis.call('SADD', KEYS[5], ARGV[1])
return 1
"""
# KEYS: tasks... ; a task with its indexes. KEYS: task, externals hash, owner list, all list;
# ARGV: task JSON, external field ('' for none), task id. 0 when the external id is taken.
_ADD_TASK: Final = """
if ARGV[2] ~= '' then
  if redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[3]) == 0 then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('RPUSH', KEYS[3], ARGV[3])
redis.call('RPUSH', KEYS[4], ARGV[3])
return 1
"""
# KEYS: buckets hash; ARGV: account, rate, period_ms, capacity, now. The token bucket of
# limits._Bucket: 0 when a token was taken, else the milliseconds until one is available.
_BUCKET: Final = """
local rate, period, capacity, now = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local credit, last = capacity, now
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held then
  local at = string.find(held, ':')
  credit, last = tonumber(string.sub(held, 1, at - 1)), tonumber(string.sub(held, at + 1))
end
if now > last then
  credit = math.min(capacity, credit + (now - last) * rate)
  last = now
end
local wait = 0
if credit >= period then credit = credit - period else wait = math.ceil((period - credit) / rate) end
redis.call('HSET', KEYS[1], ARGV[1], string.format('%d:%d', credit, last))
return wait
"""
# KEYS: running zset (account, kind), slots hash, balances hash, running-accounts set;
# ARGV: task id, concurrency ('' none), slots, balance ('' none), cost, succeeds (1/0), now,
# done_ms, account. Reserves a task's slots and its cost: {0 | 1303 | 1102, held, left}.
_ADMIT: Final = """
local now, slots = tonumber(ARGV[7]), tonumber(ARGV[3])
local held = 0
if ARGV[2] ~= '' then
  local ended = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
  for _, id in ipairs(ended) do redis.call('HDEL', KEYS[2], id) end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    held = held + tonumber(redis.call('HGET', KEYS[2], id) or '1')
  end
  if held + slots > tonumber(ARGV[2]) then return {1303, held, ''} end
end
local left = ''
if ARGV[4] ~= '' then
  local have = redis.call('HGET', KEYS[3], ARGV[9])
  have = have and tonumber(have) or tonumber(ARGV[4])
  left = tostring(have)
  if have < tonumber(ARGV[5]) then return {1102, held, left} end
  if ARGV[6] == '1' then
    redis.call('HSET', KEYS[3], ARGV[9], tostring(have - tonumber(ARGV[5])))
  end
end
if ARGV[2] ~= '' and tonumber(ARGV[8]) > now then
  redis.call('ZADD', KEYS[1], ARGV[8], ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], slots)
  redis.call('SADD', KEYS[4], ARGV[9])
end
return {0, held, left}
"""
# KEYS: journal list, id counter; ARGV: entry JSON, size. Numbers and keeps one entry.
_RECORD: Final = """
local id = redis.call('INCR', KEYS[2])
redis.call('RPUSH', KEYS[1], id .. ' ' .. ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
return id
"""
# KEYS: clock; ARGV: milliseconds. Moves a manual clock forward; nil when there is none.
_ADVANCE: Final = """
if not redis.call('GET', KEYS[1]) then return false end
return redis.call('INCRBY', KEYS[1], ARGV[1])
"""
# KEYS: clock; ARGV: time. Sets a manual clock, never backwards: {ok, now}.
_SET_CLOCK: Final = """
local now = redis.call('GET', KEYS[1])
if now and tonumber(now) > tonumber(ARGV[1]) then return {0, tonumber(now)} end
redis.call('SET', KEYS[1], ARGV[1])
return {1, tonumber(ARGV[1])}
"""
# KEYS: lease; ARGV: owner, ms. Renews a lease only its owner holds.
_RENEW: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
# KEYS: lease; ARGV: owner. Lets go of a lease only its owner holds.
_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


# What the request in progress has read of each namespace (see RedisState.request).
_SNAPSHOT: ContextVar[dict[str, _Head] | None] = ContextVar("mockkling_redis_snapshot", default=None)


class _Head:
    """What a request reads of a namespace at once: its rules, their counters, the limits,
    and the manual clock (None on the system clock)."""

    __slots__ = ("clock", "fate_counts", "fates", "fault_counts", "faults", "settings")

    def __init__(self, replies: list[Any]) -> None:
        self.faults: dict[bytes, bytes] = replies[0]
        self.fates: dict[bytes, bytes] = replies[1]
        self.settings: dict[bytes, bytes] = replies[2]
        self.fault_counts: dict[bytes, bytes] = replies[3]
        self.fate_counts: dict[bytes, bytes] = replies[4]
        raw = replies[5]
        self.clock: int | None = None if raw is None else int(raw)


def _count(counts: Mapping[bytes, bytes], name: str, rule_id: int) -> int | None:
    value = counts.get(f"{name}:{rule_id}".encode())
    return None if value is None else int(value)


class RedisState:
    """The state in Redis (see the module's docstring)."""

    kind = "redis"

    def __init__(self, config: Config, clock: Clock | None = None) -> None:
        assert config.state_file is not None
        self.config = config
        self.url = config.state_file
        try:
            # Typed loosely: redis-py's replies are bytes here (no decode_responses), not str.
            self.redis: Any = redis.Redis.from_url(
                self.url,
                socket_timeout=SOCKET_TIMEOUT_SECONDS,
                socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
                # One quick retry on a new connection (Redis restarted); past that, 503 at once.
                retry=Retry(NoBackoff(), 1),
            )
        except ValueError as exc:
            raise ConfigError(f"--state {self.url}: {exc}") from None
        self._spaces: dict[str, RedisSpace] = {}
        self._lock = threading.Lock()
        self._seed: int | str | None = None
        self._ids: Iterator[int] = iter(())
        self._id_lock = threading.Lock()
        self.scripts = {
            name: self.redis.register_script(source)
            for name, source in (
                ("take", _TAKE),
                ("give_back", _GIVE_BACK),
                ("add_rule", _ADD_RULE),
                ("init", _INIT),
                ("add_task", _ADD_TASK),
                ("bucket", _BUCKET),
                ("admit", _ADMIT),
                ("record", _RECORD),
                ("advance", _ADVANCE),
                ("set_clock", _SET_CLOCK),
                ("renew", _RENEW),
                ("release", _RELEASE),
            )
        }
        try:
            self.redis.ping()
        except redis.RedisError as exc:
            raise ConfigError(f"cannot reach Redis at {self.url}: {exc}") from None
        space = self.space(DEFAULT_NAMESPACE)
        if isinstance(clock, ManualClock):  # Backend(config, clock=ManualClock(...)), in process
            space.use_manual_clock(clock.now_ms())

    def __repr__(self) -> str:
        return f"RedisState({self.url!r})"

    # -- namespaces ---------------------------------------------------------------------------

    def space(self, name: str) -> RedisSpace:
        space = self._spaces.get(name)
        if space is None:
            with self._lock:
                space = self._spaces.get(name)
                if space is None:
                    space = RedisSpace(self, name)
                    space.make()  # as configured, unless a process made it already
                    self._spaces[name] = space
        return space

    @store_call
    def namespaces(self) -> list[str]:
        names = sorted(name.decode() for name in self.redis.smembers("mk:namespaces"))
        return [DEFAULT_NAMESPACE, *(n for n in names if n != DEFAULT_NAMESPACE)]

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        token = _SNAPSHOT.set({})
        try:
            yield
        finally:
            _SNAPSHOT.reset(token)

    # -- ids --------------------------------------------------------------------------------------

    def draw_id(self) -> int:
        """Under a seed, the n-th id of a counter all processes share (reproducible, never the
        same twice); without one, 128 random bits."""
        if self._seed is None:
            return secrets.randbits(128)
        with self._id_lock:
            n = next(self._ids, None)
            if n is None:
                try:
                    last = int(self.redis.incrby("mk:ids", ID_BLOCK))
                except redis.RedisError:
                    return secrets.randbits(128)  # a request id in a 503 answer: any will do
                self._ids = iter(range(last - ID_BLOCK + 1, last + 1))
                n = next(self._ids)
        digest = hashlib.blake2b(f"{self._seed}:{n}".encode(), digest_size=16).digest()
        return int.from_bytes(digest, "big")

    def reseed(self, seed: int | str | None) -> None:
        """Ids go on from the shared counter (a reset of one namespace never repeats another's)."""
        self._seed = seed

    # -- accounts, keys and webhook secrets -------------------------------------------------------

    @store_call
    def accounts(self) -> tuple[dict[str, str], dict[str, str]]:
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall("mk:accounts")
            pipe.hgetall("mk:api_keys")
            accounts, keys = pipe.execute()
        return (
            {k.decode(): v.decode() for k, v in accounts.items()},
            {k.decode(): v.decode() for k, v in keys.items()},
        )

    @store_call
    def add_account(self, access_key: str, secret_key: str, api_keys: tuple[str, ...]) -> None:
        with self.redis.pipeline() as pipe:
            pipe.hset("mk:accounts", access_key, secret_key)
            for key in api_keys:
                pipe.hset("mk:api_keys", key, access_key)
            pipe.execute()

    @store_call
    def add_api_key(self, key: str, account: str) -> None:
        self.redis.hset("mk:api_keys", key, account)

    @store_call
    def webhook_secrets(self, account: str) -> tuple[str, ...]:
        own, every = self.redis.hmget("mk:webhook", [account, "*"])
        if own is not None:
            return tuple(orjson.loads(own))
        if every is not None:
            return tuple(orjson.loads(every))
        return self.config.webhook_secrets.get(account, self.config.webhook_secret or ())

    @store_call
    def set_webhook_secrets(self, account: str | None, secrets: tuple[str, ...]) -> None:
        if account is None:
            with self.redis.pipeline() as pipe:
                pipe.delete("mk:webhook")
                pipe.hset("mk:webhook", "*", orjson.dumps(secrets))
                pipe.execute()
        else:
            self.redis.hset("mk:webhook", account, orjson.dumps(secrets))

    # -- health -----------------------------------------------------------------------------------

    @store_call
    def ping(self) -> None:
        self.redis.ping()

    def close(self) -> None:
        self.redis.close()


class SharedManualClock(ManualClock):
    """A namespace's manual clock, in Redis: moved by any process, read by all."""

    def __init__(self, space: RedisSpace, now_ms: int) -> None:
        super().__init__(now_ms)
        self._space = space

    def now_ms(self) -> int:
        return self._space.now_ms()

    @store_call
    def advance(self, seconds: float = 0.0, *, ms: int = 0) -> int:
        delta = round(seconds * 1000) + int(ms)
        if delta < 0:
            raise ValueError("a ManualClock only moves forward")
        moved = self._space.state.scripts["advance"](keys=[self._space.key("clock")], args=[delta])
        self._space.forget()
        if moved is None:
            raise TypeError("this namespace is on the system clock: use_manual_clock() first")
        self._now = int(moved)
        return self._now

    @store_call
    def set(self, now_ms: int) -> int:
        ok, now = self._space.state.scripts["set_clock"](keys=[self._space.key("clock")], args=[int(now_ms)])
        self._space.forget()
        if not ok:
            raise ValueError("a ManualClock only moves forward")
        self._now = int(now)
        return self._now

    def __repr__(self) -> str:
        return f"SharedManualClock(namespace={self._space.name!r})"


_SYSTEM_CLOCK: Final = SystemClock()


class RedisSpace(Space):
    """One namespace's state in Redis."""

    def __init__(self, state: RedisState, name: str) -> None:  # no super(): nothing held here
        self.state = state
        self.name = name
        self.redis: Any = state.redis
        self.prefix = f"mk:{{{name}}}:"
        config = state.config
        self.tasks = RedisTaskStore(self)
        self.faults = RedisFaultSet(self, config.faults, seed=config.seed)
        self.fates = RedisFateRules(self)
        self.limits = RedisLimiter(self, config.limits)
        self.journal = RedisJournal(
            self, config.journal_size, config.journal_body_bytes, config.journal_header_bytes
        )

    def key(self, name: str) -> str:
        return self.prefix + name

    # -- what a request reads once -------------------------------------------------------------

    @store_call
    def head(self) -> _Head:
        """The namespace's rules, counters, limits and clock: read once per request (and on
        every call outside one); the namespace is made as configured on first use."""
        snapshot = _SNAPSHOT.get()
        if snapshot is not None:
            found = snapshot.get(self.name)
            if found is not None:
                return found
        head = self._read()
        if not head.settings:
            self._init()
            head = self._read()
        if snapshot is not None:
            snapshot[self.name] = head
        return head

    def _read(self) -> _Head:
        with self.redis.pipeline(transaction=False) as pipe:
            for name in ("faults", "fates", "settings", "fault_counts", "fate_counts"):
                pipe.hgetall(self.key(name))
            pipe.get(self.key("clock"))
            return _Head(pipe.execute())

    @store_call
    def make(self) -> None:
        self._init()

    def _init(self) -> None:
        config = self.state.config
        rules = [orjson.dumps(rule.to_dict()) for rule in config.faults]
        limits = orjson.dumps(config.limits.to_dict())
        keys = [self.key(k) for k in ("init", "faults", "fault_ids", "settings")] + ["mk:namespaces"]
        self.state.scripts["init"](keys=keys, args=[self.name, limits, _wall_ms(), *rules])

    def forget(self) -> None:
        """Read afresh on the next look: this request changed the namespace."""
        snapshot = _SNAPSHOT.get()
        if snapshot is not None:
            snapshot.pop(self.name, None)

    # -- the clock ----------------------------------------------------------------------------

    @property
    def clock(self) -> Clock:
        now = self._clock_ms()
        return _SYSTEM_CLOCK if now is None else SharedManualClock(self, now)

    @clock.setter
    def clock(self, clock: Clock) -> None:
        if not isinstance(clock, ManualClock):
            raise TypeError("a shared namespace's clock is set with use_manual_clock()")
        self.use_manual_clock(clock.now_ms())

    @store_call
    def _clock_ms(self) -> int | None:
        snapshot = _SNAPSHOT.get()
        if snapshot is not None:
            return self.head().clock
        raw = self.redis.get(self.key("clock"))
        return None if raw is None else int(raw)

    def now_ms(self) -> int:
        now = self._clock_ms()
        return _wall_ms() if now is None else now

    @store_call
    def use_manual_clock(self, start_ms: int) -> ManualClock:
        self.redis.set(self.key("clock"), int(start_ms))
        self.forget()
        return SharedManualClock(self, int(start_ms))

    # -- reset --------------------------------------------------------------------------------

    @store_call
    def reset(self) -> None:
        """Everything of the namespace but its clock and the journal's numbering goes; then it
        is made as configured again."""
        kept = {self.key("clock").encode(), self.key("journal_ids").encode()}
        doomed = [
            k for k in self.redis.scan_iter(match=_glob(self.prefix) + "*", count=1000) if k not in kept
        ]
        for start in range(0, len(doomed), 500):
            self.redis.unlink(*doomed[start : start + 500])
        self._init()
        self.forget()

    def close(self) -> None:
        """Nothing held: the connections belong to the state."""


def _glob(text: str) -> str:
    """``text`` as a literal in a Redis MATCH pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\{}" else c for c in text)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


# -- tasks ------------------------------------------------------------------------------------


def _encode_task(task: Task) -> bytes:
    return orjson.dumps(
        [
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
            task.extra,
        ]
    )


def _decode_task(raw: bytes) -> Task:
    (tid, account, action, model, mode, duration, created, processing, done, outcome, msg, ext, extra) = (
        orjson.loads(raw)
    )
    return Task(
        task_id=tid,
        account=account,
        action=action,
        model=model,
        mode=mode,
        duration=duration,
        created_ms=created,
        processing_ms=processing,
        done_ms=done,
        outcome=outcome,
        status_msg=msg,
        external_task_id=ext,
        extra=extra,
    )


class RedisTaskStore:
    """A namespace's tasks in Redis: each task a key, with its account's list per endpoint and
    the namespace's list in creation order; the uniqueness of ``external_task_id`` per account
    is a hash field set only if absent, in the same script as the task."""

    salt = 0  # ids come from the shared counter: never the same twice

    def __init__(self, space: RedisSpace) -> None:
        self._space = space
        self._redis: Any = space.redis

    def _task_key(self, task_id: str) -> str:
        return self._space.key(f"t:{task_id}")

    def _owner_key(self, account: str, action: str) -> str:
        return self._space.key(f"o:{account}\n{action}")

    @store_call
    def add(self, task: Task) -> bool:
        external = "" if task.external_task_id is None else f"{task.account}\n{task.external_task_id}"
        keys = [
            self._task_key(task.task_id),
            self._space.key("externals"),
            self._owner_key(task.account, task.action),
            self._space.key("all"),
        ]
        added = self._space.state.scripts["add_task"](
            keys=keys, args=[_encode_task(task), external, task.task_id]
        )
        return bool(added)

    @store_call
    def update(self, task: Task) -> None:
        self._redis.set(self._task_key(task.task_id), _encode_task(task), xx=True)

    @store_call
    def modify(self, task_id: str, change: Callable[[Task], None]) -> Task | None:
        """Read, change and write back under WATCH: a write by another replica in between
        makes the transaction fail, and it runs again on the task as that write left it."""
        key = self._task_key(task_id)
        changed: list[Task | None] = [None]

        def step(pipe: Any) -> None:
            raw = pipe.get(key)
            changed[0] = None
            if raw is None:
                return
            task = _decode_task(raw)
            change(task)
            pipe.multi()
            pipe.set(key, _encode_task(task), xx=True)
            changed[0] = task

        self._redis.transaction(step, key)
        return changed[0]

    @store_call
    def get(self, task_id: str) -> Task | None:
        raw = self._redis.get(self._task_key(task_id))
        return None if raw is None else _decode_task(raw)

    @store_call
    def get_external(self, account: str, external_task_id: str) -> Task | None:
        task_id = self._redis.hget(self._space.key("externals"), f"{account}\n{external_task_id}")
        return None if task_id is None else self.get(task_id.decode())

    def _many(self, ids: list[bytes]) -> list[Task]:
        if not ids:
            return []
        raws = self._redis.mget([self._task_key(i.decode()) for i in ids])
        return [_decode_task(raw) for raw in raws if raw is not None]

    @store_call
    def page(self, account: str, action: str, page_num: int, page_size: int) -> list[Task]:
        start, stop = -page_num * page_size, -(page_num - 1) * page_size - 1
        ids = self._redis.lrange(self._owner_key(account, action), start, stop)
        return self._many(ids)[::-1]

    @store_call
    def owned(self, account: str, action: str) -> list[Task]:
        return self._many(self._redis.lrange(self._owner_key(account, action), 0, -1))

    @store_call
    def recent(self, limit: int) -> list[Task]:
        if limit <= 0:
            return []
        return self._many(self._redis.lrange(self._space.key("all"), -limit, -1))[::-1]

    @store_call
    def __iter__(self) -> Iterator[Task]:
        ids = self._redis.lrange(self._space.key("all"), 0, -1)
        return iter([task for at in range(0, len(ids), 1000) for task in self._many(ids[at : at + 1000])])

    @store_call
    def __len__(self) -> int:
        return int(self._redis.llen(self._space.key("all")))

    @store_call
    def clear(self) -> None:
        pattern = _glob(self._space.prefix)
        doomed = [
            *self._redis.scan_iter(match=pattern + "t:*", count=1000),
            *self._redis.scan_iter(match=pattern + "o:*", count=1000),
            self._space.key("externals"),
            self._space.key("all"),
        ]
        for start in range(0, len(doomed), 500):
            self._redis.unlink(*doomed[start : start + 500])

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"RedisTaskStore(namespace={self._space.name!r})"


# -- rules ------------------------------------------------------------------------------------


class _SharedRules:
    """A kind of rule in Redis: a hash of rule JSON by zero-padded id (so, in the order they
    were added), an id counter, and a hash of each rule's counters."""

    def __init__(self, space: RedisSpace, kind: str) -> None:
        self.space = space
        self.rules_key = space.key(kind)
        self.ids_key = space.key(f"{kind[:-1]}_ids")
        self.counts_key = space.key(f"{kind[:-1]}_counts")

    def rows(self, raw: Mapping[bytes, bytes]) -> list[tuple[int, bytes]]:
        return sorted((int(k), v) for k, v in raw.items())

    @store_call
    def add(self, rule_json: bytes) -> int:
        rule_id = self.space.state.scripts["add_rule"](keys=[self.rules_key, self.ids_key], args=[rule_json])
        self.space.forget()
        return int(rule_id)

    @store_call
    def remove(self, rule_id: int) -> bool:
        removed = self.space.redis.hdel(self.rules_key, f"{rule_id:012d}")
        self.space.forget()
        return bool(removed)

    @store_call
    def clear(self) -> int:
        with self.space.redis.pipeline() as pipe:
            pipe.hlen(self.rules_key)
            pipe.delete(self.rules_key)
            count = pipe.execute()[0]
        self.space.forget()
        return int(count)

    @store_call
    def reset(self, configured: list[bytes]) -> None:
        with self.space.redis.pipeline() as pipe:
            pipe.delete(self.rules_key, self.counts_key)
            for n, rule in enumerate(configured, 1):
                pipe.hset(self.rules_key, f"{n:012d}", rule)
            pipe.set(self.ids_key, len(configured))
            pipe.execute()
        self.space.forget()

    @store_call
    def take(self, rule_id: int, times: int | None) -> int:
        """A turn of the rule: -1 if it has none left, else how often it has been used."""
        args: list[Any] = [rule_id, "" if times is None else times]
        used = self.space.state.scripts["take"](keys=[self.counts_key], args=args)
        self.space.forget()
        return int(used)

    @store_call
    def give_back(self, rule_id: int, times: int | None) -> None:
        args: list[Any] = [rule_id, "" if times is None else times]
        self.space.state.scripts["give_back"](keys=[self.counts_key], args=args)
        self.space.forget()

    @store_call
    def draw(self, rule_id: int) -> int:
        """The number of this draw of a rule's probability, counted across processes."""
        return int(self.space.redis.hincrby(self.counts_key, f"draws:{rule_id}", 1))


class SharedFault(ActiveFault):
    """A fault rule in force in Redis: its counters are Redis's, its draws the n-th values of
    its seeded generator, n counted across processes, so a run replays under the same seed."""

    __slots__ = ("_drawn", "_store")

    def __init__(self, rule_id: int, rule: FaultRule, base_seed: int, store: _SharedRules) -> None:
        super().__init__(rule_id, rule, base_seed)
        self._store = store
        self._drawn = 0

    def _value(self, n: int) -> float:
        """The n-th value of this rule's generator."""
        with self._lock:
            if n <= self._drawn:  # the counters were reset: from the start again
                rule = self.rule
                self._rng = random.Random(rule.seed if rule.seed is not None else f"{self._base}:{self.id}")
                self._drawn = 0
            value = 0.0
            while self._drawn < n:
                value = self._rng.random()
                self._drawn += 1
            return value

    @property
    def _base(self) -> int:
        return self._store.space.state.config.seed or 0

    def fire(self) -> bool:
        if self.rule.probability < 1.0:
            if self.remaining == 0:
                return False
            if self._value(self._store.draw(self.id)) >= self.rule.probability:
                return False
        used = self._store.take(self.id, self.rule.times)
        if used < 0:
            self.remaining = 0
            return False
        self.fired = used
        return True


class RedisFaultSet(FaultSet):
    """Fault rules in force, in Redis (see FaultSet)."""

    def __init__(
        self, space: RedisSpace, rules: Iterable[FaultRule] = (), *, seed: int | None = None
    ) -> None:
        # No FaultSet.__init__: it would reset the rules other processes are using.
        self.space = space
        self.sleep = anyio.sleep
        self._seed = seed or 0
        self._configured = tuple(rules)
        self._store = _SharedRules(space, "faults")
        self._cache: dict[tuple[int, bytes], SharedFault] = {}

    @property
    def _rules(self) -> list[ActiveFault]:  # type: ignore[override]
        head = self.space.head()
        out: list[ActiveFault] = []
        for rule_id, raw in self._store.rows(head.faults):
            active = self._cache.get((rule_id, raw))
            if active is None:
                if len(self._cache) > 1024:
                    self._cache.clear()
                rule = FaultRule.from_dict(orjson.loads(raw))
                active = self._cache[(rule_id, raw)] = SharedFault(rule_id, rule, self._seed, self._store)
            used = _count(head.fault_counts, "used", rule_id) or 0
            left = _count(head.fault_counts, "remaining", rule_id)
            active.fired, active.remaining = used, active.rule.times if left is None else left
            out.append(active)
        return out

    @property
    def enabled(self) -> bool:
        return self.space.head().settings.get(b"faults_enabled", b"1") == b"1"

    @enabled.setter
    def enabled(self, value: bool) -> None:
        store_call(self.space.redis.hset)(self.space.key("settings"), "faults_enabled", "1" if value else "0")
        self.space.forget()

    def reset(self) -> None:
        self._store.reset([orjson.dumps(rule.to_dict()) for rule in self._configured])

    def add(self, rule: FaultRule | str | Mapping[str, Any] | None = None, /, **fields: Any) -> ActiveFault:
        if rule is None:
            rule = FaultRule.from_dict(fields)
        elif fields:
            raise TypeError("give a rule or keyword fields, not both")
        parsed = as_rule(rule)
        rule_id = self._store.add(orjson.dumps(parsed.to_dict()))
        return SharedFault(rule_id, parsed, self._seed, self._store)

    def get(self, rule_id: int) -> ActiveFault | None:
        return next((r for r in self._rules if r.id == rule_id), None)

    def remove(self, rule_id: int) -> bool:
        return self._store.remove(rule_id)

    def clear(self) -> int:
        return self._store.clear()

    def __iter__(self) -> Iterator[ActiveFault]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)


class SharedFate(ActiveFate):
    __slots__ = ()


def _fate_rule_json(rule: FateRule) -> bytes:
    return orjson.dumps(
        {
            "fate": rule.fate.to_dict(),
            "account": rule.account,
            "action": rule.action,
            "model": rule.model,
            "mode": rule.mode,
            "times": rule.times,
        }
    )


class RedisFateRules(FateRules):
    """Fate rules in Redis (see FateRules). A rule's turn is taken when it is applied, in one
    script, so two processes creating at once never both spend the last turn; it is given back
    if the task is not stored after all."""

    def __init__(self, space: RedisSpace) -> None:  # no FateRules.__init__: see RedisFaultSet
        self.space = space
        self._store = _SharedRules(space, "fates")
        self._cache: dict[tuple[int, bytes], SharedFate] = {}

    @property
    def _rules(self) -> list[ActiveFate]:  # type: ignore[override]
        head = self.space.head()
        out: list[ActiveFate] = []
        for rule_id, raw in self._store.rows(head.fates):
            active = self._cache.get((rule_id, raw))
            if active is None:
                if len(self._cache) > 1024:
                    self._cache.clear()
                active = self._cache[(rule_id, raw)] = SharedFate(
                    rule_id, FateRule.from_dict(orjson.loads(raw))
                )
            used = _count(head.fate_counts, "used", rule_id) or 0
            left = _count(head.fate_counts, "remaining", rule_id)
            active.applied, active.remaining = used, active.rule.times if left is None else left
            out.append(active)
        return out

    def reset(self) -> None:
        self._store.reset([])

    def add(self, rule: FateRule | Any = None, /, **match: Any) -> ActiveFate:
        parsed = FateRules().add(rule, **match).rule
        rule_id = self._store.add(_fate_rule_json(parsed))
        return SharedFate(rule_id, parsed)

    def get(self, rule_id: int) -> ActiveFate | None:
        return next((r for r in self._rules if r.id == rule_id), None)

    def remove(self, rule_id: int) -> bool:
        return self._store.remove(rule_id)

    def clear(self) -> int:
        return self._store.clear()

    def __iter__(self) -> Iterator[ActiveFate]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def apply(self, task: Task, now_ms: int) -> ActiveFate | None:
        for active in self._rules:
            if active.remaining != 0 and active.rule.matches(task):
                if self._store.take(active.id, active.rule.times) < 0:
                    continue  # another process spent its last turn meanwhile
                reschedule(task, active.rule.fate, now_ms, new=True)
                return active
        return None

    def consume(self, active: ActiveFate | None) -> None:
        """Spent in :meth:`apply` already."""

    def cancel(self, active: ActiveFate | None) -> None:
        if active is not None:
            self._store.give_back(active.id, active.rule.times)


# -- limits -----------------------------------------------------------------------------------


class RedisLimiter(Limiter):
    """Limits and their usage in Redis (see Limiter): a rate bucket, an account's running
    slots and its balance are each changed by one script, so they hold across processes."""

    def __init__(self, space: RedisSpace, limits: Limits | None = None) -> None:
        # No Limiter.__init__: it would start every account's usage afresh for every process.
        self.space = space
        self._configured = limits or Limits()
        self._cache: tuple[bytes, Limits] | None = None

    def _now(self) -> int:
        return self.space.now_ms()

    @property
    def _limits(self) -> Limits:  # type: ignore[override]
        raw = self.space.head().settings.get(b"limits", b"{}")
        cached = self._cache
        if cached is None or cached[0] != raw:
            cached = self._cache = (raw, Limits.from_dict(orjson.loads(raw)))
        return cached[1]

    @property
    def rate_on(self) -> bool:  # type: ignore[override]
        return self._limits.any_rate

    def _key(self, name: str) -> str:
        return self.space.key(name)

    def _running_key(self, account: str, kind: str) -> str:
        return self._key(f"run:{account}\n{kind}")

    @store_call
    def set(self, limits: Limits | None = None, **values: Any) -> Limits:
        if limits is None:
            limits = Limits.from_dict(values) if values else Limits()
        elif values:
            raise TypeError("give either a Limits or keyword fields, not both")
        space, now = self.space, self.space.now_ms()
        redis_ = space.redis
        doomed = [
            *redis_.scan_iter(match=_glob(space.prefix) + "run:*", count=1000),
            self._key("buckets"),
            self._key("balances"),
            self._key("slots"),
            self._key("running_accounts"),
        ]
        with redis_.pipeline() as pipe:
            pipe.unlink(*doomed)
            pipe.hset(self._key("settings"), mapping={"limits": orjson.dumps(limits.to_dict()), "since": now})
            if limits.any_concurrency:
                for task in space.tasks:
                    if task.done_ms > now:
                        pipe.zadd(
                            self._running_key(task.account, pack_kind(task)), {task.task_id: task.done_ms}
                        )
                        pipe.hset(self._key("slots"), task.task_id, task_slots(task))
                        pipe.sadd(self._key("running_accounts"), task.account)
            pipe.execute()
        space.forget()
        return limits

    def reset(self) -> None:
        self.set(self._configured)

    @store_call
    def hit(self, account: str) -> KlingError | None:
        limits = self._limits.for_account(account)
        if limits.rate is None:
            return None
        period_ms = max(1, round((limits.per_seconds or 1.0) * 1000))
        capacity = (limits.burst or limits.rate) * period_ms
        args: list[Any] = [account, limits.rate, period_ms, capacity, self.space.now_ms()]
        wait_ms = int(self.space.state.scripts["bucket"](keys=[self._key("buckets")], args=args))
        if not wait_ms:
            return None
        return KlingError(
            1302,
            f"Request rate exceeds the limit of {limits.rate} per {limits.per_seconds or 1:g}s",
            headers={"Retry-After": str(max(1, math.ceil(wait_ms / 1000)))},
        )

    @store_call
    def admit(self, task: Task) -> None:
        limits = self._limits.for_account(task.account)
        if limits.concurrency is None and limits.balance is None:
            return
        concurrency = limits.concurrency if self._limits.any_concurrency else None
        kind, slots = pack_kind(task), task_slots(task)
        keys = [
            self._running_key(task.account, kind),
            self._key("slots"),
            self._key("balances"),
            self._key("running_accounts"),
        ]
        args: list[Any] = [
            task.task_id,
            "" if concurrency is None else concurrency,
            slots,
            "" if limits.balance is None else repr(float(limits.balance)),
            repr(task_cost(task)),
            1 if task.outcome == SUCCEED else 0,
            self.space.now_ms(),
            task.done_ms,
            task.account,
        ]
        code, held, left = self.space.state.scripts["admit"](keys=keys, args=args)
        if code == 1303:
            raise KlingError(
                1303,
                f"parallel task over resource pack limit: {held} of {concurrency} "
                f"{kind} slots in use, the task needs {slots}",
            )
        if code == 1102:
            raise KlingError(
                1102,
                f"Resource pack depleted: {float(left):g} units left, the task needs {task_cost(task):g}",
            )

    @store_call
    def release(self, task: Task) -> None:
        redis_ = self.space.redis
        with redis_.pipeline() as pipe:
            pipe.zrem(self._running_key(task.account, pack_kind(task)), task.task_id)
            pipe.hdel(self._key("slots"), task.task_id)
            pipe.hexists(self._key("balances"), task.account)
            tracked = pipe.execute()[2]
        if tracked and task.outcome == SUCCEED:
            redis_.hincrbyfloat(self._key("balances"), task.account, task_cost(task))

    @store_call
    def rescheduled(self, task: Task, old_outcome: str) -> None:
        redis_, now = self.space.redis, self.space.now_ms()
        limits = self._limits
        with redis_.pipeline() as pipe:
            if limits.any_concurrency and limits.for_account(task.account).concurrency is not None:
                running = self._running_key(task.account, pack_kind(task))
                if task.done_ms > now:
                    pipe.zadd(running, {task.task_id: task.done_ms})
                    pipe.hset(self._key("slots"), task.task_id, task_slots(task))
                    pipe.sadd(self._key("running_accounts"), task.account)
                else:
                    pipe.zrem(running, task.task_id)
            pipe.execute()
        since = int(self.space.head().settings.get(b"since", b"0"))
        if task.created_ms < since or not redis_.hexists(self._key("balances"), task.account):
            return
        if old_outcome == SUCCEED and task.outcome != SUCCEED:
            redis_.hincrbyfloat(self._key("balances"), task.account, task_cost(task))
        elif old_outcome != SUCCEED and task.outcome == SUCCEED:
            redis_.hincrbyfloat(self._key("balances"), task.account, -task_cost(task))

    @store_call
    def usage(self, account: str) -> dict[str, Any]:
        limits = self._limits.for_account(account)
        now = self.space.now_ms()
        redis_ = self.space.redis
        tokens = None
        if limits.rate is not None:
            period_ms = max(1, round((limits.per_seconds or 1.0) * 1000))
            capacity = (limits.burst or limits.rate) * period_ms
            held = redis_.hget(self._key("buckets"), account)
            if held is None:
                tokens = float(limits.burst or limits.rate)
            else:
                credit, last = (int(x) for x in held.split(b":"))
                tokens = min(capacity, credit + max(0, now - last) * limits.rate) / period_ms
        running = None
        if self._limits.any_concurrency and limits.concurrency is not None:
            running = 0
            for kind in PACK_KINDS:
                ids = redis_.zrangebyscore(self._running_key(account, kind), f"({now}", "+inf")
                if ids:
                    running += sum(int(s or 1) for s in redis_.hmget(self._key("slots"), ids))
        balance = None
        if limits.balance is not None:
            left = redis_.hget(self._key("balances"), account)
            balance = float(limits.balance) if left is None else float(left)
        return {"tokens": tokens, "running": running, "balance": balance}

    @store_call
    def accounts_in_use(self) -> list[str]:
        redis_ = self.space.redis
        with redis_.pipeline(transaction=False) as pipe:
            pipe.hkeys(self._key("buckets"))
            pipe.hkeys(self._key("balances"))
            pipe.smembers(self._key("running_accounts"))
            found = pipe.execute()
        return sorted({name.decode() for names in found for name in names})

    def __repr__(self) -> str:
        return f"RedisLimiter(namespace={self.space.name!r})"


# -- the journal ------------------------------------------------------------------------------


def _latin(value: bytes) -> str:
    return value.decode("latin-1")


def _encode_entry(entry: Recorded) -> bytes:
    return orjson.dumps(
        [
            entry.time,
            entry.method,
            entry.path,
            _latin(entry.query),
            [[_latin(n), _latin(v)] for n, v in entry.headers],
            _latin(entry.body),
            entry.body_size,
            entry.status,
            entry.account,
            entry.fault,
            entry.duration_ms,
            [[_latin(n), _latin(v)] for n, v in entry.response_headers],
            _latin(entry.response_body),
            entry.response_size,
        ]
    )


def _decode_entry(raw: bytes) -> tuple[int, Recorded]:
    number, _, payload = raw.partition(b" ")
    (when, method, path, query, headers, body, size, status, account, fault, took, rheaders, rbody, rsize) = (
        orjson.loads(payload)
    )
    latin = "latin-1"
    return int(number), Recorded(
        when,
        method,
        path,
        query.encode(latin),
        tuple((n.encode(latin), v.encode(latin)) for n, v in headers),
        body.encode(latin),
        size,
        status,
        account,
        fault,
        took,
        tuple((n.encode(latin), v.encode(latin)) for n, v in rheaders),
        rbody.encode(latin),
        rsize,
    )


class RedisJournal(Journal):
    """The journal in Redis: a list bounded to ``size`` entries, numbered by a shared counter,
    so the journal read through any process shows what every process answered."""

    def __init__(self, space: RedisSpace, size: int, body_bytes: int, header_bytes: int) -> None:
        super().__init__(size, body_bytes, header_bytes)
        self.space = space
        self._key = space.key("journal")

    def _append(self, kept: Recorded) -> None:
        if self._headers_over(kept):
            kept = self._bounded(kept)
        try:
            keys = [self._key, self.space.key("journal_ids")]
            store_call(self.space.state.scripts["record"])(keys=keys, args=[_encode_entry(kept), self.size])
        except KlingError:
            # The answer is on its way already: a journal entry is not worth failing it for.
            logger.warning("journal entry not kept: the state store cannot be reached")

    @store_call
    def _rows(self) -> list[tuple[int, Recorded]]:
        return [_decode_entry(raw) for raw in self.space.redis.lrange(self._key, 0, -1)]

    @store_call
    def newest(self, limit: int, *, after: int = 0) -> tuple[int | None, list[JournalEntry]]:
        """As Journal.newest, reading only the newest ``limit`` entries."""
        with self.space.redis.pipeline(transaction=False) as pipe:
            pipe.lindex(self._key, 0)
            pipe.lrange(self._key, -max(limit, 1), -1)
            first, newest = pipe.execute()
        rows = [_decode_entry(raw) for raw in newest] if limit > 0 else []
        first_id = None if first is None else int(first.partition(b" ")[0])
        return first_id, [JournalEntry(*row) for row in rows if row[0] > after]

    @store_call
    def clear(self) -> None:
        self.space.redis.delete(self._key)

    @store_call
    def __len__(self) -> int:
        return int(self.space.redis.llen(self._key))

    def __repr__(self) -> str:
        return f"RedisJournal(namespace={self.space.name!r}, size={self.size})"


# -- callbacks --------------------------------------------------------------------------------


def _constant(clock: Clock) -> Callable[[], Clock]:
    return lambda: clock


def _due(status: str, notified: bytes | None) -> list[str]:
    """The statuses to send to reach ``status``, after the last one sent."""
    last = _text(notified)
    done = RANK[last] if last is not None else -1
    return [s for s in lifecycle_path(status) if RANK[s] > done]


_WATCH: Final = "mk:callbacks:watch"  # "{namespace}\n{task_id}" -> callback URL
# "...:notified:{namespace}:{task_id}" -> the last status sent; kept a while after the last
# one, so a process that read the task as watched just before still finds it all sent.
_NOTIFIED: Final = "mk:callbacks:notified:"
NOTIFIED_SECONDS: Final = 7 * 24 * 3600
_LOG: Final = "mk:callbacks:log"


class SharedCallbackDispatcher(CallbackDispatcher):
    """Callbacks sent by whichever process sees a status change first: a task's notifications
    are sent under a lease in Redis (one process at a time), each recorded once sent; a
    process that dies lets its lease expire and another one carries on from the last status
    sent. Every process looks for such work every POLL_SECONDS."""

    def __init__(
        self,
        state: RedisState,
        settings: CallbackSettings,
        clock: Callable[[], Clock],
        render: Renderer,
        *,
        secrets: Secrets = lambda account: (),
    ) -> None:
        super().__init__(settings, clock, render, secrets=secrets)
        self.state = state
        self.owner = uuid.uuid4().hex
        # Long enough for one notification's every attempt and backoff, then a little more.
        attempts, backoff = settings.attempts, settings.backoff_seconds
        self.lease_ms = round((attempts * settings.timeout_seconds + backoff * (2**attempts - 1) + 2) * 1000)
        self._fields: dict[str, str] = {}  # task id -> its watch field (the loop thread only)
        self._store_away = False  # Redis was unreachable at the last tick (the loop thread only)

    @store_call
    def watch(
        self, task: Task, namespace: str = DEFAULT_NAMESPACE, clock: Callable[[], Clock] | None = None
    ) -> None:
        url = self.allowed_url(task)
        if url is None:
            return
        self.state.redis.hset(_WATCH, f"{namespace}\n{task.task_id}", url)
        self.wake()

    def start(self) -> None:
        """Look for work from start-up: a replica that has sent nothing yet must still carry on
        the deliveries of one that died."""
        self.wake()

    def wake(self) -> None:
        """Tick now; starts the thread (it also looks for other processes' work)."""
        with self._lock:
            self._dirty = True
            if self._thread is None:
                self._start()
            loop, event = self._loop, self._wake
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    def clear(self, namespace: str | None = None) -> None:
        super().clear(namespace)
        with contextlib.suppress(KlingError):
            self._forget_namespace(namespace)

    @store_call
    def _forget_namespace(self, namespace: str | None) -> None:
        fields = [
            f
            for f in self.state.redis.hkeys(_WATCH)
            if namespace is None or f.startswith(f"{namespace}\n".encode())
        ]
        if fields:
            self.state.redis.hdel(_WATCH, *fields)
            self.state.redis.delete(*(self._notified(f) for f in fields))

    def _tick(self, client: Any, semaphore: Any) -> float | None:
        with self._lock:
            self._dirty = False
        try:
            wait = self._shared_tick(client, semaphore)
        except KlingError as exc:  # Redis is away: say so once, and look again soon
            if not self._store_away:
                self._store_away = True
                logger.warning("callbacks paused: %s", exc.message)
            return POLL_SECONDS
        except Exception:
            logger.exception("callback tick failed")
            return POLL_SECONDS
        finally:
            with self._idle:
                self._idle.notify_all()
        if self._store_away:
            self._store_away = False
            logger.warning("callbacks resumed: Redis is reachable again")
        return wait

    @store_call
    def _shared_tick(self, client: Any, semaphore: Any) -> float:
        redis_ = self.state.redis
        watched = redis_.hgetall(_WATCH)
        if not watched:
            return POLL_SECONDS
        entries = [(field, url, *field.decode().partition("\n")[::2]) for field, url in watched.items()]
        entries = [entry for entry in entries if entry[3] not in self._lanes]  # this process sends those
        # One round trip for what each watched task has been sent, one for the tasks, and a
        # clock per namespace: a tick costs the same however many tasks are watched.
        with redis_.pipeline(transaction=False) as pipe:
            for field, _url, namespace, task_id in entries:
                pipe.get(self._notified(field))
                pipe.get(self.state.space(namespace).key(f"t:{task_id}"))
            replies = pipe.execute()
        clocks: dict[str, Clock] = {}
        wait = POLL_SECONDS
        for (field, url, namespace, task_id), notified, raw in zip(
            entries, replies[::2], replies[1::2], strict=True
        ):
            if raw is None:  # reset away
                redis_.hdel(_WATCH, field)
                redis_.delete(self._notified(field))
                continue
            task = _decode_task(raw)
            clock = clocks.get(namespace)
            if clock is None:
                clock = clocks[namespace] = self.state.space(namespace).clock
            now = clock.now_ms()
            status = task.status(now)
            lease = self._lease(field)
            if _due(status, notified) and redis_.set(lease, self.owner, nx=True, px=self.lease_ms):
                # Under the lease, what was sent is read again: another process may have sent
                # some between the first look and its letting go of the lease.
                reached = _due(status, redis_.get(self._notified(field)))
                if not reached:
                    self.state.scripts["release"](keys=[lease], args=[self.owner])
                    continue
                self._fields[task_id] = field.decode()
                watch = _Watch(task, url.decode(), namespace, _constant(clock))
                for each in reached:
                    self._queue(client, semaphore, watch, each)
            if status not in TERMINAL and not isinstance(clock, ManualClock):
                due = task.processing_ms if now < task.processing_ms else task.done_ms
                wait = min(wait, max(due - now, 0) / 1000 + 0.001)
        return wait

    @staticmethod
    def _notified(field: bytes | str) -> str:
        text = field.decode() if isinstance(field, bytes) else field
        return _NOTIFIED + text.replace("\n", ":")

    @staticmethod
    def _lease(field: bytes | str) -> str:
        text = field.decode() if isinstance(field, bytes) else field
        return "mk:callbacks:lease:" + text.replace("\n", ":")

    def _sent(self, note: _Notification) -> None:
        field = self._fields.get(note.task_id)
        if field is None:
            return
        try:
            self._note_sent(field, note.status)
        except KlingError:
            logger.warning(
                "callback %s of task %s sent, but Redis could not record it", note.status, note.task_id
            )

    @store_call
    def _note_sent(self, field: str, status: str) -> None:
        redis_ = self.state.redis
        with redis_.pipeline() as pipe:
            if status in TERMINAL:
                pipe.hdel(_WATCH, field)
            pipe.set(self._notified(field), status, ex=NOTIFIED_SECONDS)
            pipe.execute()
        self.state.scripts["renew"](keys=[self._lease(field)], args=[self.owner, self.lease_ms])

    def _lane_done(self, task_id: str) -> None:
        field = self._fields.pop(task_id, None)
        if field is None:
            return
        with contextlib.suppress(KlingError):
            store_call(self.state.scripts["release"])(keys=[self._lease(field)], args=[self.owner])
        self.wake()  # statuses that came due meanwhile

    def _record(self, attempt: DeliveryAttempt) -> None:
        super()._record(attempt)
        try:
            with self.state.redis.pipeline() as pipe:
                pipe.rpush(_LOG, orjson.dumps(attempt.to_dict()))
                pipe.ltrim(_LOG, -10_000, -1)
                pipe.execute()
        except redis.RedisError:
            logger.warning("callback attempt not logged in Redis (unreachable)")

    @store_call
    def deliveries(self, task_id: str | None = None) -> list[DeliveryAttempt]:
        """Every process's delivery log, oldest first (optionally one task's)."""
        attempts = [DeliveryAttempt(**orjson.loads(raw)) for raw in self.state.redis.lrange(_LOG, 0, -1)]
        return [a for a in attempts if task_id is None or a.task_id == task_id]
