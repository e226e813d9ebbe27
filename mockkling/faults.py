"""Fault injection, as data, and the request layer that applies it.

A :class:`FaultRule` says which requests it matches (method, path glob, surface, model,
account, prompt text) and what happens to them: an official error (its HTTP status comes
from the business-code table), added latency, a dropped connection or a malformed body. It
fires always, for the next ``times`` matching requests, or with a ``probability`` drawn from
its own seeded generator, so a run replays exactly under the same seed.

:class:`FaultMiddleware` is a pure ASGI layer outside the app: it journals every request,
applies the fault rules and the per-account rate limit. With nothing configured it costs a
few attribute reads per request.
"""

from __future__ import annotations

import functools
import logging
import random
import re
import shlex
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from fnmatch import translate
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import anyio
import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import BUSINESS_CODES, KlingError
from .journal import account_label
from .rules import RuleError, RuleRegistry, known_fields

if TYPE_CHECKING:
    from .backend import Backend

FAULT_KINDS: Final = ("drop", "malformed")
HTTP_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MAX_DELAY_MS: Final = 600_000
# The surface whose requests the layer leaves alone (its own API must stay reachable).
CONTROL_SURFACE: Final = "control"
# The rate limit counts API calls. A result file is a CDN download, not an API call, even when
# the client sends its credentials along; nor is the OpenAPI document.
RATE_LIMITED_SURFACES: Final = frozenset({"official", "gateway"})


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
        return cls(**known_fields(cls, data, "fault rule"))

    @classmethod
    def parse(cls, spec: str) -> FaultRule:
        """A rule from the compact syntax of ``--fault`` (see README, "Faults")::

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


# -- the request layer ------------------------------------------------------------------------


class DroppedConnection(ConnectionError):
    """Raised through the server on purpose, after the answer has started, so the server
    closes the connection mid-answer. Raised by :func:`dropped_connection`."""


@functools.cache
def _dropped_for_httpx(httpx_error: type[Exception]) -> type[DroppedConnection]:
    return type("DroppedConnection", (DroppedConnection, httpx_error), {"__module__": __name__})


def dropped_connection(message: str) -> DroppedConnection:
    """The exception that drops a connection. Where httpx is loaded (an in-process httpx client,
    httpx's own ASGITransport, Starlette's TestClient), it is also ``httpx.RemoteProtocolError``,
    the error an httpx client on a socket gets; the server itself never imports httpx for it,
    which would cost its start-up a tenth of a second."""
    httpx = sys.modules.get("httpx")
    if httpx is None:
        return DroppedConnection(message)
    return _dropped_for_httpx(httpx.RemoteProtocolError)(message)


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

    def __init__(
        self, scope: Scope, receive: Receive, surface: str | None, backend: Backend, head: RequestHead
    ) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.surface = surface
        self._backend = backend
        self._receive = receive
        self._authorization = head.authorization
        self._declared = head.declared
        self.wants_body = not head.bodyless
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

    def account_label(self) -> str | None:
        """The account as the journal shows it (never a raw key: see ``journal.account_label``)."""
        return account_label(self.account(), self._backend.auth.api_keys)

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


class RequestHead(NamedTuple):
    """What the layer reads from a request's headers, in one pass."""

    authorization: bytes | None
    declared: int  # Content-Length, or -1 (absent or not a number)
    chunked: bool

    @classmethod
    def read(cls, headers: Iterable[tuple[bytes, bytes]]) -> RequestHead:
        authorization, declared, chunked = None, -1, False
        for name, value in headers:
            if name == b"authorization":
                authorization = value
            elif name == b"content-length":
                declared = int(value) if value.isdigit() else -1
            elif name == b"transfer-encoding":
                chunked = True
        return cls(authorization, declared, chunked)

    @property
    def bodyless(self) -> bool:
        return not self.chunked and self.declared <= 0


class _Recording:
    """A request's journal entry, written once: when the answer's last body message goes out
    (before the client can read it, so a client that reads the journal right after its
    answer finds its request there), or at the end when no answer was completed."""

    __slots__ = ("_record", "_send", "done", "status")

    def __init__(self, send: Send, record: Callable[[int | None], None]) -> None:
        self._send, self._record = send, record
        self.status: int | None = None
        self.done = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif not self.done and not message.get("more_body", False):
            self.finish()
        await self._send(message)

    def finish(self) -> None:
        if not self.done:
            self.done = True
            self._record(self.status)


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
        head = RequestHead.read(scope["headers"])
        started = time.perf_counter()
        if head.bodyless and not (faults.live or limits.rate_on):
            # Most requests (queries, lists, downloads): nothing to capture, replay or match,
            # so none of the set-up below, which costs twice as much; only the journal entry.
            def record_bodyless(status: int | None) -> None:
                journal.record(
                    backend.now_ms(),
                    scope["method"],
                    scope["path"],
                    scope.get("query_string", b""),
                    scope["headers"],
                    b"",
                    0,
                    status,
                    account_label(account_for(backend, head.authorization), backend.auth.api_keys),
                    None,
                    (time.perf_counter() - started) * 1000,
                )

            recording = _Recording(send, record_bodyless)
            try:
                await self.app(scope, receive, recording.send)
            finally:
                recording.finish()  # if no answer was completed: a client gone, a crash
            return
        exchange = Exchange(scope, receive, surface, backend, head)
        fired: ActiveFault | None = None

        def record(status: int | None) -> None:
            if not journal.size:
                return
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
                exchange.account_label(),
                None if fired is None else fired.id,
                (time.perf_counter() - started) * 1000,
            )

        recording = _Recording(send, record)
        try:
            fired = await faults.pick(exchange) if faults.live else None
            if fired is None and not limits.rate_on:  # the common case: just pass it on
                if exchange.journal_reads and journal.size:
                    # Read the journal's share of the body now: the app may answer unread (401).
                    await exchange.read_ahead(exchange.journal_share(journal.body_bytes), journal.body_bytes)
                await self.app(scope, exchange.receive_for_app(journal.body_bytes), recording.send)
            else:
                await self._handle(exchange, fired, recording.send)
        finally:
            recording.finish()  # if no answer was completed: a drop, a client gone, a crash

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
            raise dropped_connection(f"connection dropped on purpose by fault rule {rule}")
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
