"""Fault injection, as data: which requests a fault rule disturbs, how, and how often.

A :class:`FaultRule` says which requests it matches (method, path glob, surface, model,
account, prompt text) and what happens to them: an official error (its HTTP status comes
from the business-code table), added latency, a dropped connection or a malformed body. It
fires always, for the next ``times`` matching requests, or with a ``probability`` drawn from
its own seeded generator, so a run replays exactly under the same seed. The request layer
(:mod:`mockkling.request_layer`) applies them.
"""

from __future__ import annotations

import random
import re
import shlex
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from fnmatch import translate
from typing import Any, Final, Protocol

import anyio

from . import catalogue
from .errors import BUSINESS_CODES
from .rules import RuleError, RuleRegistry, known_fields

FAULT_KINDS: Final = ("drop", "malformed")
# The surfaces a rule can name (the route modules that answer them; the control API is never
# disturbed): the legacy official API, the gateways, the model-in-path design, result files.
SURFACES: Final = ("official", "gateway", "model_api", "media")
HTTP_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MAX_DELAY_MS: Final = 600_000


class RequestFacts(Protocol):
    """What a rule matches a request on; the body and the account are read only when a rule
    needs them, and at most once."""

    method: str
    path: str
    surface: str | None

    def account(self) -> str | None: ...

    async def json_body(self) -> Mapping[str, Any] | None: ...


# -- fault rules ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FaultRule:
    """Which requests to disturb, and how. Every match field left ``None`` matches anything.

    Match: ``method``; ``path``, a glob where ``*`` matches anything (``/`` included);
    ``surface`` (one of SURFACES); ``model`` (the body's ``model_name`` or ``model``, or the
    model in a model-in-path create's path); ``account``; ``prompt``, a case-insensitive
    substring of the body's prompt.

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
        if self.surface is not None and self.surface not in SURFACES:
            raise RuleError(f"surface must be one of {', '.join(SURFACES)}, not {self.surface!r}")
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
        return cls(**known_fields(cls, data, "fault rule"))

    @classmethod
    def parse(cls, spec: str) -> FaultRule:
        """A rule from the compact syntax of ``--fault`` (see docs/faults-and-control.md)::

            [METHOD] [/path/glob] [CODE|STATUS] [drop|malformed] [xN] [key=value ...]

        e.g. ``"POST /v1/videos/* 1303 x2"``, ``"503 p=0.25 seed=7"``, ``"delay=2s"``.
        """
        return cls.from_dict(_parse_compact(spec))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


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

    def matches_body(self, body: Mapping[str, Any] | None, path: str) -> bool:
        rule = self.rule
        if rule.model is not None:
            model = catalogue.model_in_path(path)
            if model is None and body is not None:
                model = body.get("model_name") or body.get("model")
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


class FaultSet(RuleRegistry[FaultRule, ActiveFault]):
    """The fault rules in force, checked in the order they were added; the first one that
    matches a request and fires decides what happens to it (ids as :mod:`mockkling.rules`
    says: never reused, from 1 again on :meth:`reset`, the configured rules first).

    ``enabled = False`` keeps the rules but fires none (what the schemathesis run uses).
    ``sleep`` is how latency waits; a test may replace it to observe delays without waiting.
    """

    def __init__(self, rules: Iterable[FaultRule] = (), *, seed: int | None = None) -> None:
        self.enabled = True
        self.sleep: Callable[[float], Awaitable[None]] = anyio.sleep
        self._seed = seed or 0
        super().__init__(lambda rule_id, rule: ActiveFault(rule_id, rule, self._seed), rules)

    def add(self, rule: FaultRule | str | Mapping[str, Any] | None = None, /, **fields: Any) -> ActiveFault:
        """Add a rule (a FaultRule, the compact syntax, a dict, or its fields as keywords)."""
        if rule is None:
            rule = FaultRule.from_dict(fields)
        elif fields:
            raise TypeError("give a rule or keyword fields, not both")
        return super().add(as_rule(rule))

    @property
    def live(self) -> bool:
        """Whether any rule could fire (the request layer's fast path reads this)."""
        return self.enabled and bool(self._rules)

    def __repr__(self) -> str:
        return f"FaultSet(rules={len(self._rules)}, enabled={self.enabled})"

    async def pick(self, exchange: RequestFacts) -> ActiveFault | None:
        """The rule that disturbs this request, if any (reads the body only if a rule needs it)."""
        for active in self._rules:
            if active.remaining == 0:
                continue
            if not active.matches_route(exchange.method, exchange.path, exchange.surface):
                continue
            if active.rule.account is not None and exchange.account() != active.rule.account:
                continue
            if active.needs_body and not active.matches_body(await exchange.json_body(), exchange.path):
                continue
            if active.fire():
                return active
        return None
