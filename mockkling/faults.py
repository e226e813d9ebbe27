"""Fault injection and task fates, as data, and the request layer that applies them.

A :class:`FaultRule` says which requests it matches (method, path glob, surface, model,
account, prompt text) and what happens to them: an official error (its HTTP status comes
from the business-code table), added latency, a dropped connection or a malformed body. It
fires always, for the next ``times`` matching requests, or with a ``probability`` drawn from
its own seeded generator, so a run replays exactly under the same seed.

A :class:`Fate` reschedules a task: statuses are derived from a task's schedule, so making a
task fail, hold a status for a while, or succeed at once is a change of schedule, and it is
refused whenever it would move the status a client has seen backwards.

:class:`FaultMiddleware` is a pure ASGI layer outside the app: it journals every request,
applies the fault rules and the per-account rate limit. With nothing configured it costs a
few attribute reads per request.
"""

from __future__ import annotations

import itertools
import logging
import random
import re
import shlex
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from fnmatch import translate
from typing import TYPE_CHECKING, Any, Final

import anyio
import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import BUSINESS_CODES, KlingError
from .journal import account_label
from .tasks import FAILED, PROCESSING, RANK, SUBMITTED, SUCCEED, TERMINAL, Task

if TYPE_CHECKING:
    from .backend import Backend

FAULT_KINDS: Final = ("drop", "malformed")
HTTP_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MAX_DELAY_MS: Final = 600_000
# A schedule time that is never reached: a task held "until further notice".
NEVER: Final = 2**62
DEFAULT_FAILURE_MESSAGE: Final = "Task failed"
# The surface whose requests the layer leaves alone (its own API must stay reachable).
CONTROL_SURFACE: Final = "control"
# The rate limit counts API calls. A result file is a CDN download, not an API call, even when
# the client sends its credentials along; nor is the OpenAPI document.
RATE_LIMITED_SURFACES: Final = frozenset({"official", "gateway"})


class RuleError(ValueError):
    """A fault rule, fate or fate rule that cannot be used; the message says why."""


class FateError(ValueError):
    """A fate that would move a task backwards, or change a task that has ended."""


# -- fault rules ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FaultRule:
    """Which requests to disturb, and how. Every match field left ``None`` matches anything.

    Match: ``method``; ``path``, a glob where ``*`` matches anything (``/`` included);
    ``surface`` (``official``, ``gateway``, ...); ``model`` (the body's ``model_name`` or
    ``model``); ``account``; ``prompt``, a case-insensitive substring of the body's prompt.

    Act: ``code`` answers that official business code with its HTTP status (``status`` alone
    picks the code when the status has only one, and must agree with ``code`` otherwise),
    with ``message`` if given; ``delay_ms`` waits first (alone, the request then proceeds);
    ``fault`` ``drop`` closes the connection mid-answer without handling the request, and
    ``malformed`` handles it and cuts its body in half.

    Fire: ``times`` (None: every time), ``probability`` drawn from a generator seeded with
    ``seed`` (default: derived from the backend's seed and the rule's id).
    """

    method: str | None = None
    path: str | None = None
    surface: str | None = None
    model: str | None = None
    account: str | None = None
    prompt: str | None = None
    code: int | None = None
    status: int | None = None
    message: str | None = None
    delay_ms: int = 0
    fault: str | None = None
    times: int | None = None
    probability: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("method", "path", "surface", "model", "account", "prompt", "message", "fault"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise RuleError(f"{name} must be a non-empty string, not {value!r}")
        for name in ("code", "status", "times", "seed", "delay_ms"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise RuleError(f"{name} must be an integer, not {value!r}")
        if self.method is not None:
            if self.method.upper() not in HTTP_METHODS:
                raise RuleError(
                    f"method must be one of {', '.join(sorted(HTTP_METHODS))}, not {self.method!r}"
                )
            object.__setattr__(self, "method", self.method.upper())
        if self.path is not None and not self.path.startswith(("/", "*")):
            raise RuleError(f"path must start with '/' (or '*'), not {self.path!r}")
        if self.fault is not None and self.fault not in FAULT_KINDS:
            raise RuleError(f"fault must be one of {', '.join(FAULT_KINDS)}, not {self.fault!r}")
        if not 0 <= self.delay_ms <= MAX_DELAY_MS:
            raise RuleError(f"delay_ms must be between 0 and {MAX_DELAY_MS}, not {self.delay_ms}")
        if self.times is not None and self.times < 1:
            raise RuleError(f"times must be >= 1 (or omitted for always), not {self.times}")
        probability = self.probability
        if (
            isinstance(probability, bool)
            or not isinstance(probability, int | float)
            or not 0 < probability <= 1
        ):
            raise RuleError(f"probability must be a number in (0, 1], not {probability!r}")
        object.__setattr__(self, "probability", float(probability))
        self._resolve_code()
        if self.code is not None and self.fault is not None:
            raise RuleError("a rule answers with an error code or a fault, not both")
        if self.message is not None and self.code is None:
            raise RuleError("message goes with an error code")
        if self.code is None and self.fault is None and not self.delay_ms:
            raise RuleError("a fault rule needs an action: code (or status), fault, or delay_ms")

    def _resolve_code(self) -> None:
        code, status = self.code, self.status
        if code is not None and code not in BUSINESS_CODES:
            raise RuleError(f"code {code} is not an official business code; known: {_known_codes()}")
        if status is None:
            if code is not None:
                object.__setattr__(self, "status", BUSINESS_CODES[code].http_status)
            return
        codes = [c.code for c in BUSINESS_CODES.values() if c.http_status == status]
        if not codes:
            statuses = sorted({c.http_status for c in BUSINESS_CODES.values()})
            raise RuleError(f"status {status} has no official business code; statuses: {statuses}")
        if code is None:
            if len(codes) > 1:
                raise RuleError(f"status {status} has several business codes ({codes}): give code=")
            object.__setattr__(self, "code", codes[0])
        elif BUSINESS_CODES[code].http_status != status:
            raise RuleError(f"code {code} answers HTTP {BUSINESS_CODES[code].http_status}, not {status}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultRule:
        """A rule from a config table or a control-API body (null means "left out")."""
        return cls(**_known_fields(cls, data, "fault rule"))

    @classmethod
    def parse(cls, spec: str) -> FaultRule:
        """A rule from the compact syntax of ``--fault`` (see README, "Faults")::

            [METHOD] [/path/glob] [CODE|STATUS] [drop|malformed] [xN] [key=value ...]

        e.g. ``"POST /v1/videos/* 1303 x2"``, ``"503 p=0.25 seed=7"``, ``"delay=2s"``.
        """
        return cls.from_dict(_parse_compact(spec))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _known_fields(cls: type, data: Mapping[str, Any], what: str) -> dict[str, Any]:
    """``data``'s fields for ``cls`` (a dataclass), nulls dropped; RuleError for other keys."""
    if not isinstance(data, Mapping):
        raise RuleError(f"a {what} must be a table/object, not {data!r}")
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise RuleError(f"unknown {what} keys {sorted(unknown)}; known: {', '.join(sorted(known))}")
    return {k: v for k, v in data.items() if v is not None}


def _known_codes() -> str:
    return ", ".join(str(c) for c in BUSINESS_CODES)


_ALIASES: Final = {"p": "probability", "prompt_contains": "prompt", "delay": "delay_ms"}
_INT_KEYS: Final = frozenset({"code", "status", "times", "seed"})


def _parse_delay(value: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)?", value.strip())
    if match is None:
        raise RuleError(f"delay must be like 250ms, 2s or 250 (ms), not {value!r}")
    number, unit = float(match.group(1)), match.group(2) or "ms"
    return round(number * 1000) if unit == "s" else round(number)


def _parse_compact(spec: str) -> dict[str, Any]:
    try:
        tokens = shlex.split(spec)
    except ValueError as exc:
        raise RuleError(f"fault rule {spec!r}: {exc}") from None
    if not tokens:
        raise RuleError("a fault rule cannot be empty")
    out: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        if key in out:
            raise RuleError(f"fault rule {spec!r} gives {key} twice")
        out[key] = value

    for token in tokens:
        key, sep, raw = token.partition("=")
        if sep:
            key = _ALIASES.get(key, key)
            if key == "delay_ms":
                put(key, _parse_delay(raw))
            elif key in _INT_KEYS:
                if not re.fullmatch(r"-?\d+", raw):
                    raise RuleError(f"{key} must be an integer, not {raw!r}")
                put(key, int(raw))
            elif key == "probability":
                try:
                    put(key, float(raw))
                except ValueError:
                    raise RuleError(f"probability must be a number, not {raw!r}") from None
            else:
                put(key, raw)
        elif token.upper() in HTTP_METHODS:
            put("method", token.upper())
        elif token.startswith("/"):
            put("path", token)
        elif token in FAULT_KINDS:
            put("fault", token)
        elif re.fullmatch(r"x\d+", token):
            put("times", int(token[1:]))
        elif re.fullmatch(r"\d{3}", token):
            put("status", int(token))
        elif re.fullmatch(r"\d{4}", token):
            put("code", int(token))
        else:
            raise RuleError(
                f"cannot read {token!r} in fault rule {spec!r}: expected a method, a /path, a code, "
                "drop, malformed, xN or key=value"
            )
    return out


def as_rule(rule: FaultRule | str | Mapping[str, Any]) -> FaultRule:
    """A FaultRule from a FaultRule, the compact syntax or a dict of its fields."""
    if isinstance(rule, FaultRule):
        return rule
    if isinstance(rule, str):
        return FaultRule.parse(rule)
    return FaultRule.from_dict(rule)


class ActiveFault:
    """A rule in force: its id, how often it may still fire, and its own random generator."""

    __slots__ = ("_lock", "_path", "_rng", "fired", "id", "remaining", "rule")

    def __init__(self, rule_id: int, rule: FaultRule, base_seed: int) -> None:
        self.id = rule_id
        self.rule = rule
        self.remaining = rule.times
        self.fired = 0
        self._path = None if rule.path is None else re.compile(translate(rule.path)).match
        seed: int | str = rule.seed if rule.seed is not None else f"{base_seed}:{rule_id}"
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    @property
    def needs_body(self) -> bool:
        return self.rule.model is not None or self.rule.prompt is not None

    def matches_route(self, method: str, path: str, surface: str | None) -> bool:
        rule = self.rule
        return (
            (rule.method is None or rule.method == method)
            and (self._path is None or self._path(path) is not None)
            and (rule.surface is None or rule.surface == surface)
        )

    def matches_body(self, body: Mapping[str, Any] | None) -> bool:
        rule = self.rule
        if rule.model is not None:
            model = None if body is None else body.get("model_name") or body.get("model")
            if model != rule.model:
                return False
        if rule.prompt is not None:
            prompt = None if body is None else body.get("prompt")
            if not isinstance(prompt, str) or rule.prompt.lower() not in prompt.lower():
                return False
        return True

    def fire(self) -> bool:
        """Draw whether a matching request is disturbed; counts down ``times``."""
        with self._lock:
            if self.remaining == 0:
                return False
            if self.rule.probability < 1.0 and self._rng.random() >= self.rule.probability:
                return False
            if self.remaining is not None:
                self.remaining -= 1
            self.fired += 1
            return True

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, **self.rule.to_dict(), "remaining": self.remaining, "fired": self.fired}

    def __repr__(self) -> str:
        return f"ActiveFault(id={self.id}, fired={self.fired}, remaining={self.remaining}, {self.rule!r})"


class FaultSet:
    """The fault rules in force, checked in the order they were added; the first one that
    matches a request and fires decides what happens to it.

    ``enabled = False`` keeps the rules but fires none (what the schemathesis run uses).
    ``sleep`` is how latency waits; a test may replace it to observe delays without waiting.
    """

    def __init__(self, rules: Iterable[FaultRule] = (), *, seed: int | None = None) -> None:
        self.enabled = True
        self.sleep: Callable[[float], Awaitable[None]] = anyio.sleep
        self._configured = tuple(rules)
        self._seed = seed or 0
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Back to the configured rules, with fresh counters and generators."""
        with self._lock:
            self._ids = itertools.count(1)
            self._rules: list[ActiveFault] = [
                ActiveFault(next(self._ids), r, self._seed) for r in self._configured
            ]

    def add(self, rule: FaultRule | str | Mapping[str, Any] | None = None, /, **fields: Any) -> ActiveFault:
        """Add a rule (a FaultRule, the compact syntax, a dict, or its fields as keywords)."""
        if rule is None:
            rule = FaultRule.from_dict(fields)
        elif fields:
            raise TypeError("give a rule or keyword fields, not both")
        rule = as_rule(rule)
        with self._lock:
            active = ActiveFault(next(self._ids), rule, self._seed)
            self._rules = [*self._rules, active]
        return active

    def remove(self, rule_id: int) -> bool:
        with self._lock:
            kept = [r for r in self._rules if r.id != rule_id]
            removed = len(kept) != len(self._rules)
            self._rules = kept
        return removed

    def clear(self) -> None:
        with self._lock:
            self._rules = []

    def get(self, rule_id: int) -> ActiveFault | None:
        return next((r for r in self._rules if r.id == rule_id), None)

    @property
    def live(self) -> bool:
        """Whether any rule could fire (the request layer's fast path reads this)."""
        return self.enabled and bool(self._rules)

    def __iter__(self) -> Iterator[ActiveFault]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def __repr__(self) -> str:
        return f"FaultSet(rules={len(self._rules)}, enabled={self.enabled})"

    async def pick(self, exchange: Exchange) -> ActiveFault | None:
        """The rule that disturbs this request, if any (reads the body only if a rule needs it)."""
        for active in self._rules:
            if active.remaining == 0:
                continue
            if not active.matches_route(exchange.method, exchange.path, exchange.surface):
                continue
            if active.rule.account is not None and exchange.account() != active.rule.account:
                continue
            if active.needs_body and not active.matches_body(await exchange.json_body()):
                continue
            if active.fire():
                return active
        return None


# -- task fates -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fate:
    """A new schedule for a task.

    ``status`` ``succeed``/``failed``: the task ends so, now. ``status``
    ``submitted``/``processing``: the task is in that status from now for ``seconds``
    (``None``: until another fate), then ends as ``outcome`` says (default: as planned).
    ``outcome`` alone keeps the timing and changes only how the task ends. A failure carries
    ``message`` (``task_status_msg``) and, for the gateway surface, ``error_code``.
    """

    status: str | None = None
    seconds: float | None = None
    outcome: str | None = None
    message: str | None = None
    error_code: int | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in RANK:
            raise RuleError(f"status must be one of {', '.join(RANK)}, not {self.status!r}")
        if self.outcome is not None and self.outcome not in TERMINAL:
            raise RuleError(f"outcome must be one of {', '.join(sorted(TERMINAL))}, not {self.outcome!r}")
        if self.status is None and self.outcome is None:
            raise RuleError("a fate needs a status or an outcome")
        if self.status in TERMINAL:
            if self.seconds is not None:
                raise RuleError(f"seconds holds a task in submitted or processing, not in {self.status}")
            if self.outcome not in (None, self.status):
                raise RuleError(f"a task that ends {self.status} cannot have outcome {self.outcome}")
        seconds = self.seconds
        if seconds is not None and (
            isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= 10**8
        ):
            raise RuleError(f"seconds must be a number between 0 and 1e8, not {seconds!r}")
        if self.message is not None and not isinstance(self.message, str):
            raise RuleError(f"message must be a string, not {self.message!r}")
        code = self.error_code
        if code is not None and (isinstance(code, bool) or not isinstance(code, int)):
            raise RuleError(f"error_code must be an integer, not {code!r}")
        if (self.message is not None or code is not None) and self.ending != FAILED:
            raise RuleError("message and error_code go with a fate that ends failed")

    @property
    def ending(self) -> str | None:
        """How the task ends under this fate (None: as planned)."""
        return self.status if self.status in TERMINAL else self.outcome

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fate:
        return cls(**_known_fields(cls, data, "fate"))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def reschedule(task: Task, fate: Fate, now_ms: int, *, new: bool = False) -> None:
    """Give ``task`` a new schedule from ``now_ms``; FateError if that would move the status a
    client may have seen backwards, or change a task that has ended. A ``new`` task (not yet
    stored, so never seen) counts as submitted whatever its timings."""
    current = SUBMITTED if new else task.status(now_ms)
    if current in TERMINAL:
        raise FateError(f"task {task.task_id} has already ended ({current}); its fate cannot change")
    target = fate.status
    if target is not None and RANK[target] < RANK[current]:
        raise FateError(f"task {task.task_id} is {current}: a fate never moves a status back to {target}")
    hold_ms = NEVER if fate.seconds is None else now_ms + round(fate.seconds * 1000)
    if target == SUBMITTED:
        run_ms = task.done_ms - task.processing_ms
        task.processing_ms = hold_ms
        task.done_ms = NEVER if hold_ms >= NEVER or task.done_ms >= NEVER else hold_ms + run_ms
    elif target == PROCESSING:
        if current == SUBMITTED:
            task.processing_ms = now_ms
        task.done_ms = hold_ms
    elif target in TERMINAL:
        if current == SUBMITTED:
            task.processing_ms = now_ms
        task.done_ms = now_ms
    ending = fate.ending
    if ending == FAILED:
        if task.outcome != FAILED or fate.message is not None:
            task.status_msg = fate.message or DEFAULT_FAILURE_MESSAGE
        task.outcome = FAILED
        if fate.error_code is not None:
            task.extra = {**(task.extra or {}), "error_code": fate.error_code}
    elif ending == SUCCEED:
        task.outcome = SUCCEED
        task.status_msg = ""


@dataclass(frozen=True, slots=True)
class FateRule:
    """A fate for the next ``times`` new tasks (None: every one) matching account, action
    (endpoint), model and mode."""

    fate: Fate
    account: str | None = None
    action: str | None = None
    model: str | None = None
    mode: str | None = None
    times: int | None = 1

    def __post_init__(self) -> None:
        if not isinstance(self.fate, Fate):
            raise RuleError("a fate rule needs a fate")
        for name in ("account", "action", "model", "mode"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise RuleError(f"{name} must be a non-empty string, not {value!r}")
        times = self.times
        if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
            raise RuleError(f"times must be an integer >= 1 (or null for every task), not {times!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FateRule:
        values = _known_fields(cls, data, "fate rule")
        values["fate"] = Fate.from_dict(values.get("fate") or {})
        if "times" in data and data["times"] is None:
            values["times"] = None  # null here means "every task", not "left out"
        return cls(**values)

    def matches(self, task: Task) -> bool:
        return (
            (self.account is None or self.account == task.account)
            and (self.action is None or self.action == task.action)
            and (self.model is None or self.model == task.model)
            and (self.mode is None or self.mode == task.mode)
        )


class ActiveFate:
    __slots__ = ("applied", "id", "remaining", "rule")

    def __init__(self, rule_id: int, rule: FateRule) -> None:
        self.id = rule_id
        self.rule = rule
        self.remaining = rule.times
        self.applied = 0

    def to_dict(self) -> dict[str, Any]:
        rule = self.rule
        return {
            "id": self.id,
            "fate": rule.fate.to_dict(),
            "account": rule.account,
            "action": rule.action,
            "model": rule.model,
            "mode": rule.mode,
            "times": rule.times,
            "remaining": self.remaining,
            "applied": self.applied,
        }


class FateRules:
    """Fates waiting for the next new tasks that match them, in the order they were added."""

    def __init__(self) -> None:
        self._rules: list[ActiveFate] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, rule: FateRule | Fate | None = None, /, **match: Any) -> ActiveFate:
        """Add a rule: a FateRule, or a Fate with the match fields (and ``times``) as keywords."""
        if isinstance(rule, Fate):
            rule = FateRule(rule, **match)
        elif rule is None:
            rule = FateRule.from_dict(match)
        elif match:
            raise TypeError("give a FateRule, or a Fate with keyword match fields")
        with self._lock:
            active = ActiveFate(next(self._ids), rule)
            self._rules = [*self._rules, active]
        return active

    def apply(self, task: Task, now_ms: int) -> ActiveFate | None:
        """Reschedule a new task by the first rule that matches it; the rule is spent only
        when :meth:`consume` confirms the task was stored."""
        for active in self._rules:
            if active.remaining != 0 and active.rule.matches(task):
                reschedule(task, active.rule.fate, now_ms, new=True)
                return active
        return None

    def consume(self, active: ActiveFate | None) -> None:
        if active is None:
            return
        with self._lock:
            if active.remaining is not None:
                active.remaining = max(0, active.remaining - 1)
            active.applied += 1

    def remove(self, rule_id: int) -> bool:
        with self._lock:
            kept = [r for r in self._rules if r.id != rule_id]
            removed = len(kept) != len(self._rules)
            self._rules = kept
        return removed

    def clear(self) -> None:
        with self._lock:
            self._rules = []
            self._ids = itertools.count(1)

    def __iter__(self) -> Iterator[ActiveFate]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)


def as_fate(fate: Fate | str | Mapping[str, Any] | None, values: Mapping[str, Any]) -> Fate:
    """A Fate from what ``Backend.set_fate`` accepts: a Fate, a status plus keywords, or a dict."""
    if isinstance(fate, Fate):
        if values:
            raise TypeError("give a Fate, or a status with keyword fields, not both")
        return fate
    if isinstance(fate, str):
        return Fate(fate, **values)
    if fate is None:
        return Fate(**values)
    return Fate.from_dict({**fate, **values})


# -- the request layer ------------------------------------------------------------------------


class DroppedConnection(ConnectionError):
    """Raised through the server on purpose, after the answer has started, so the server
    closes the connection mid-answer. The in-process transports (``mockkling.transport``) turn
    it into ``httpx.RemoteProtocolError``, what an httpx client on a socket gets; the server
    itself does not import httpx, which would cost its start-up a tenth of a second."""


class _QuietDrops(logging.Filter):
    """Keeps uvicorn from logging a traceback for a connection dropped on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


def _quiet_uvicorn() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in logger.filters):
        logger.addFilter(_QuietDrops())


class Exchange:
    """One request as the layer sees it: what the rules match on (method, path, surface,
    account, JSON body, resolved lazily and once), and a ``receive`` for the app that replays
    whatever the layer has read ahead and records the body's first bytes for the journal."""

    __slots__ = (
        "_account",
        "_account_known",
        "_authorization",
        "_backend",
        "_buffered",
        "_complete",
        "_declared",
        "_json",
        "_json_known",
        "_receive",
        "captured",
        "journal_reads",
        "method",
        "path",
        "scope",
        "seen",
        "surface",
        "wants_body",
    )

    def __init__(self, scope: Scope, receive: Receive, surface: str | None, backend: Backend) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.surface = surface
        self._backend = backend
        self._receive = receive
        self._authorization: bytes | None = None
        self._declared = -1
        chunked = False
        for name, value in scope["headers"]:
            if name == b"authorization":
                self._authorization = value
            elif name == b"content-length":
                self._declared = int(value) if value.isdigit() else -1
            elif name == b"transfer-encoding":
                chunked = True
        self.wants_body = chunked or self._declared > 0
        # The app refuses a body declared over the limit unread (413); the journal must not read
        # ahead into it either, or a client announcing 10 GB would wait for its first bytes.
        self.journal_reads = self.wants_body and self._declared <= backend.config.max_body_bytes
        self._complete = not self.wants_body
        self._buffered: list[Message] = []
        self.captured = bytearray()
        self.seen = 0
        self._account: str | None = None
        self._account_known = False
        self._json: Mapping[str, Any] | None = None
        self._json_known = False

    @property
    def raw_receive(self) -> Receive:
        return self._receive

    @property
    def body_size(self) -> int:
        return max(self.seen, self._declared)

    def account(self) -> str | None:
        """The account the request's credentials act for (None if they are missing or bad)."""
        if not self._account_known:
            self._account = account_for(self._backend, self._authorization)
            self._account_known = True
        return self._account

    def account_label(self, labels: dict[bytes, str]) -> str | None:
        """The account for the journal: :meth:`account` (never a raw key: see
        ``journal.account_label``), remembered in ``labels`` by the credentials that named it,
        so a client reusing its token costs one dict lookup."""
        if self._account_known or self._authorization is None:
            return account_label(self.account(), self._backend.auth.api_keys)
        label = labels.get(self._authorization)
        if label is None:
            label = account_label(self.account(), self._backend.auth.api_keys)
            if label is not None:
                if len(labels) >= _LABELS_SIZE:
                    labels.clear()
                labels[self._authorization] = label
        return label

    def _note(self, message: Message, capture_limit: int) -> None:
        if message["type"] != "http.request":
            self._complete = True
            return
        body = message.get("body", b"")
        self.seen += len(body)
        if len(self.captured) < capture_limit:
            self.captured += body[: capture_limit - len(self.captured)]
        if not message.get("more_body", False):
            self._complete = True

    def journal_share(self, capture: int) -> int:
        """How far to read ahead for the journal: its capture, but never past the body limit,
        so a body over the limit is still refused by the app within a chunk of it."""
        return min(capture, self._backend.config.max_body_bytes + 1)

    async def read_ahead(self, limit: int, capture_limit: int) -> None:
        """Read the body until ``limit`` bytes or its end, keeping it for the app."""
        while not self._complete and self.seen < limit:
            message = await self._receive()
            self._buffered.append(message)
            self._note(message, capture_limit)

    async def json_body(self) -> Mapping[str, Any] | None:
        """The body as a JSON object, read ahead (up to the configured body limit) if need be."""
        if not self._json_known:
            limit = self._backend.config.max_body_bytes
            await self.read_ahead(limit + 1, self._backend.journal.body_bytes)
            parsed: Any = None
            if self._complete and self.seen <= limit:
                try:
                    parsed = orjson.loads(b"".join(m.get("body", b"") for m in self._buffered))
                except orjson.JSONDecodeError:
                    parsed = None
            self._json = parsed if isinstance(parsed, dict) else None
            self._json_known = True
        return self._json

    def receive_for_app(self, capture_limit: int) -> Receive:
        """The receive to hand the app: the read-ahead messages first, then the client's,
        with the body's first ``capture_limit`` bytes kept for the journal."""
        if not self.wants_body and not self._buffered:
            return self._receive
        buffered, receive = self._buffered, self._receive

        async def replay() -> Message:
            if buffered:
                return buffered.pop(0)
            message = await receive()
            self._note(message, capture_limit)
            return message

        return replay

    async def wait_unless_gone(self, seconds: float, sleep: Callable[[float], Awaitable[None]]) -> bool:
        """Sleep ``seconds``; True if the client went away meanwhile (the wait then stops).

        The disconnect is watched only once the body has been read ahead in full; a request
        message that arrives meanwhile is kept for the app."""
        if not self._complete:
            await sleep(seconds)
            return False
        gone = False
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                nonlocal gone
                while True:
                    message = await self._receive()
                    if message["type"] == "http.disconnect":
                        gone = True
                        group.cancel_scope.cancel()
                        return
                    self._buffered.append(message)

            group.start_soon(watch)
            await sleep(seconds)
            group.cancel_scope.cancel()
        return gone


def account_for(backend: Backend, authorization: bytes | None) -> str | None:
    """The account behind an ``Authorization`` value, with or without ``Bearer`` (the gateway
    surface takes a bare key); None if there is none or it is refused. Reuses the token cache."""
    if not authorization:
        return None
    token = authorization.decode("latin-1").strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    if not token:
        return None
    try:
        return backend.auth.verify_token(token)
    except KlingError:
        return None


_LABELS_SIZE: Final = 4096

_DROP_START: Final[Message] = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"1024")],
}


class FaultMiddleware:
    """The request layer, outside the whole app: it journals every request (but the control
    API's), applies the fault rules and the per-account request rate.

    ``surface_of`` names the surface of a path; ``render`` answers a KlingError in the format
    of the surface a path belongs to.
    """

    def __init__(
        self,
        app: ASGIApp,
        backend: Backend,
        *,
        surface_of: Callable[[str], str | None],
        render: Callable[[str, KlingError], Response],
    ) -> None:
        self.app = app
        self.backend = backend
        self.surface_of = surface_of
        self.render = render
        self._labels: dict[bytes, str] = {}  # credentials -> account, for the journal
        _quiet_uvicorn()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        backend = self.backend
        journal, faults, limits = backend.journal, backend.faults, backend.limits
        if not (journal.size or faults.live or limits.rate_on):
            await self.app(scope, receive, send)
            return
        surface = self.surface_of(scope["path"])
        if surface == CONTROL_SURFACE:
            await self.app(scope, receive, send)
            return
        exchange = Exchange(scope, receive, surface, backend)
        started = time.perf_counter()
        status: int | None = None
        fired: ActiveFault | None = None
        recorded = not journal.size

        def record() -> None:
            nonlocal recorded
            recorded = True
            journal.record(
                backend.now_ms(),
                exchange.method,
                exchange.path,
                scope.get("query_string", b""),
                scope["headers"],
                bytes(exchange.captured) if exchange.captured else b"",
                exchange.body_size,
                # A dropped connection answered nothing the client could read.
                None if fired is not None and fired.rule.fault == "drop" else status,
                exchange.account_label(self._labels),
                None if fired is None else fired.id,
                (time.perf_counter() - started) * 1000,
            )

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif not recorded and not message.get("more_body", False):
                # Record before the answer completes, so a client that reads the journal
                # right after its answer always finds its request there.
                record()
            await send(message)

        try:
            fired = await faults.pick(exchange) if faults.live else None
            if fired is None and not limits.rate_on:  # the common case: just pass it on
                if exchange.journal_reads and journal.size:
                    # Read the journal's share of the body now: the app may answer unread (401).
                    await exchange.read_ahead(exchange.journal_share(journal.body_bytes), journal.body_bytes)
                await self.app(scope, exchange.receive_for_app(journal.body_bytes), send_and_note)
            else:
                await self._handle(exchange, fired, send_and_note)
        finally:
            if not recorded:  # no answer was completed: a drop, a client gone, a crash
                record()

    async def _handle(self, exchange: Exchange, fired: ActiveFault | None, send: Send) -> None:
        backend = self.backend
        capture = backend.journal.body_bytes if backend.journal.enabled else 0
        rule = None if fired is None else fired.rule
        if capture and exchange.journal_reads:  # the journal's share, whatever the answer
            await exchange.read_ahead(exchange.journal_share(capture), capture)
        if rule is not None and rule.delay_ms:
            await exchange.read_ahead(backend.config.max_body_bytes + 1, capture)
            if await exchange.wait_unless_gone(rule.delay_ms / 1000, backend.faults.sleep):
                return  # nobody is listening any more
        if rule is not None and rule.code is not None:
            await self._answer(exchange, KlingError(rule.code, rule.message), send)
            return
        if rule is not None and rule.fault == "drop":
            # Take the whole body first: closing on unread data would reset the connection
            # (ECONNRESET) instead of ending it, a different error on the client's side.
            await exchange.read_ahead(backend.config.max_body_bytes + 1, capture)
            await send(_DROP_START)
            raise DroppedConnection(f"connection dropped on purpose by fault rule {rule}")
        if backend.limits.rate_on and exchange.surface in RATE_LIMITED_SURFACES:
            account = exchange.account()
            refusal = None if account is None else backend.limits.hit(account)
            if refusal is not None:
                await self._answer(exchange, refusal, send)
                return
        receive = exchange.receive_for_app(capture)
        if rule is not None and rule.fault == "malformed":
            await _malformed(self.app, exchange.scope, receive, send)
        else:
            await self.app(exchange.scope, receive, send)

    async def _answer(self, exchange: Exchange, error: KlingError, send: Send) -> None:
        response = self.render(exchange.path, error)
        await response(exchange.scope, exchange.receive_for_app(0), send)


async def _malformed(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Handle the request, then send its answer with the body cut in half (never valid JSON)."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def keep(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, keep)
    if start is None:
        return
    body = b"".join(chunks)
    cut = body[: len(body) // 2] if len(body) > 1 else b"{"
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(cut)).encode()))
    await send({**start, "headers": headers})
    await send({"type": "http.response.body", "body": cut, "more_body": False})
