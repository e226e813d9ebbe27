"""The request layer: a pure ASGI layer outside the whole app that journals every request,
applies the fault rules (:mod:`mockkling.fault_rules`) and the per-account request rate.

With nothing configured (no journal, fault rule or rate) it costs a few attribute reads per
request; with the journal alone, it writes one entry. Either way a task query or a create with a
small body is answered without the router, by the shortcut (``routes.official.shortcut``).
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final, NamedTuple

import anyio
import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import namespaces
from .backend import Backend
from .errors import KlingError
from .fault_rules import ActiveFault
from .journal import Journal, Recorded
from .routing import IndexedRouter

# What a shortcut answers a request with: status, headers and body to send, and the account the
# answer was made for (the journal's), or None if the credentials were refused (the journal then
# reads them, as for any request).
Answered = tuple[int, list[tuple[bytes, bytes]], bytes, str | None]
# What a shortcut answers a request whose answer needs its body: called with the body once it has
# come whole, it gives the answer, or None for the router to answer the request.
Finish = Callable[[bytes], Answered | None]
# A shortcut: given a request's scope and its ``Authorization``, the answer, a Finish, or None
# for the router to answer the request.
Shortcut = Callable[[Scope, bytes | None], Answered | Finish | None]
# Marks a request the layer has put in its namespace (issue 20), so it is not looked at twice.
_ENTERED: Final = "mockkling.namespace"
# The rate limit counts API calls. A result file is a CDN download, not an API call, even when
# the client sends its credentials along; nor is the OpenAPI document.
RATE_LIMITED_SURFACES: Final = frozenset({"official", "gateway", "model_api"})


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
    which would slow its start-up (docs/benchmarks.md)."""
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
            self._account = self._backend.account_of(self._authorization)
            self._account_known = True
        return self._account

    def account_label(self) -> str | None:
        """The account as the journal shows it (never a raw key)."""
        return self._backend.account_label(self.account())

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

    def prime(self, message: Message, capture_limit: int) -> None:
        """Take a message the layer has read already, for the app to get first."""
        self._buffered.append(message)
        self._note(message, capture_limit)

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


class RequestHead(NamedTuple):
    """What the layer reads from a request's headers, in one pass."""

    authorization: bytes | None
    declared: int  # Content-Length, or -1 (absent or not a number)
    chunked: bool
    namespaced: bool = False  # it names a namespace (issue 20)

    @classmethod
    def read(cls, headers: Iterable[tuple[bytes, bytes]]) -> RequestHead:
        authorization, length, chunked, namespaced = None, None, False, False
        for name, value in headers:
            if name == b"authorization":
                # Several make the credentials unreadable: no account to limit or match; the app
                # refuses the request (400 / 1200).
                authorization = value if authorization is None else b""
            elif name == b"content-length" and length is None:
                length = value  # the first, as Starlette reads it (a server refuses several)
            elif name == b"transfer-encoding":
                chunked = True
            elif name == namespaces.HEADER_BYTES:
                namespaced = True
        declared = int(length) if length is not None and length.isdigit() else -1
        return cls(authorization, declared, chunked, namespaced)

    @property
    def bodyless(self) -> bool:
        return not self.chunked and self.declared <= 0


class _Recording:
    """A request's journal entry, written once: when the answer's last body message goes out
    (before the client can read it, so a client that reads the journal right after its
    answer finds its request there), or at the end when no answer was completed. On the way it
    keeps the answer's status, headers and size, and the first ``keep`` bytes of a text body:
    a reference to the one body message of a JSON answer, so no copy is made."""

    __slots__ = ("_keep", "_record", "_send", "body", "done", "headers", "size", "status")

    def __init__(self, send: Send, record: Callable[[_Recording], None], keep: int) -> None:
        self._send, self._record, self._keep = send, record, keep
        self.status: int | None = None
        self.headers: Iterable[tuple[bytes, bytes]] = ()
        self.body = b""
        self.size = 0
        self.done = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = message.get("headers") or ()
            if self._keep and not _is_text(self.headers):
                self._keep = 0  # a video or an image: its bytes say nothing to a reader
        else:
            chunk = message.get("body", b"")
            self.size += len(chunk)
            if chunk and len(self.body) < self._keep:
                room = self._keep - len(self.body)
                part = chunk if len(chunk) <= room else chunk[:room]
                self.body = self.body + part if self.body else part
            if not self.done and not message.get("more_body", False):
                self.finish()
        await self._send(message)

    async def answer(self, response: Response, scope: Scope, receive: Receive) -> None:
        """Send ``response``. One whose whole body is in hand (any but a file or a stream, the
        answer to nearly every request) is sent and kept from the object, not from its two
        messages on their way through :meth:`send`."""
        if type(response).__call__ is not Response.__call__ or response.background is not None:
            await response(scope, receive, self.send)
            return
        body = bytes(response.body)  # the same object when it is bytes (no copy)
        self.status = response.status_code
        self.headers = response.raw_headers
        await self._send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        # As send() keeps them: the body once it is on its way, the entry just before it goes.
        if self._keep and _is_text(self.headers):
            self.body = body[: self._keep]
        self.size = len(body)
        self.finish()
        await self._send({"type": "http.response.body", "body": body})

    def finish(self) -> None:
        if not self.done:
            self.done = True
            self._record(self)


# Content-Type value -> whether the journal keeps such a body; an app sends few distinct ones.
_text_types: dict[bytes, bool] = {}


def _is_text(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether an answer's body is text (JSON, YAML, XML, text/*), by its Content-Type."""
    for name, value in headers:
        if name == b"content-type":  # ASGI names are lower-case (Starlette's always are)
            text = _text_types.get(value)
            if text is None:
                media = value.split(b";", 1)[0].strip().lower()
                text = media.startswith(b"text/") or media.endswith((b"json", b"yaml", b"xml"))
                if len(_text_types) < 64:
                    _text_types[value] = text
            return text
    return False


def _entry(
    now_ms: int,
    scope: Scope,
    head: RequestHead,
    body: bytes,
    started: float,
    account: str | None,
    status: int | None,
    headers: Iterable[tuple[bytes, bytes]],
    kept: bytes,
    size: int,
) -> Recorded:
    """The journal entry of a request served with no fault rule in force."""
    return Recorded(  # positional: keywords cost as much as the rest of this call
        now_ms,
        scope["method"],
        scope["path"],
        scope.get("query_string", b""),
        scope["headers"],
        body,
        max(len(body), head.declared),
        status,
        account,
        None,
        (time.perf_counter() - started) * 1000,
        headers,
        kept,
        size,
    )


_DROP_START: Final[Message] = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"1024")],
}


class RequestLayer:
    """The request layer, outside the whole app: it journals every request (but the control
    API's), applies the fault rules and the per-account request rate.

    ``left_alone`` are the path prefixes it passes straight to the app (the control API's, which
    must stay reachable whatever the rules); ``surface_of`` names the surface of a path, for the
    rules to match on; ``render`` answers a KlingError in the format of the surface a path
    belongs to; ``shortcut`` may answer a request without the router (``routes.official.shortcut``:
    task queries and creates) with the answer and the account it was made for, or, when the
    answer needs the body, with a function to call with the body once it has come whole; or
    leave it to the router with None.
    """

    def __init__(
        self,
        app: IndexedRouter,
        backend: Backend,
        *,
        left_alone: tuple[str, ...],
        surface_of: Callable[[str], str | None],
        render: Callable[[str, KlingError], Response],
        shortcut: Shortcut | None = None,
    ) -> None:
        self.app = app
        self.backend = backend
        self.left_alone = left_alone
        self.surface_of = surface_of
        self.render = render
        self.shortcut = shortcut
        # Shared by other processes (Redis): every request goes through _in_namespace.
        self.shared = backend.state.kind == "redis"
        _quiet_uvicorn()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = RequestHead.read(scope["headers"])
        # A request that names a namespace, or any on a shared state, is served in it (issue 20).
        if (head.namespaced or self.shared) and _ENTERED not in scope:
            await self._in_namespace(scope, receive, send)
            return
        backend = self.backend
        space = backend.space()
        journal, faults, limits = space.journal, space.faults, space.limits
        if not (journal.size or faults.live or limits.rate_on):
            await self._unjournaled(scope, receive, send, head)
            return
        if scope["path"].startswith(self.left_alone):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        if head.bodyless and not (faults.live or limits.rate_on):
            # Most requests (queries, lists, downloads): nothing to capture, replay or match,
            # so none of the set-up below, which costs twice as much; only the journal entry.
            await self._journal_only(scope, receive, send, journal, head, started, b"")
            return
        first: Message | None = None
        if not (faults.live or limits.rate_on) and head.declared <= backend.config.max_body_bytes:
            # The journal's share of the body, read before the app may answer unread (a 401).
            first = await receive()
            if first["type"] == "http.request" and not first.get("more_body", False):
                # The whole body in one message (nearly every request): kept as it came, and
                # handed to the app first; none of the Exchange's set-up below.
                body = first.get("body", b"")
                await self._journal_only(scope, _replay(first, receive), send, journal, head, started, body)
                return
        exchange = Exchange(scope, receive, self.surface_of(scope["path"]), backend, head)
        if first is not None:
            exchange.prime(first, journal.body_bytes)
        fired: ActiveFault | None = None

        def record(answer: _Recording) -> None:
            if not journal.size:
                return
            dropped = fired is not None and fired.rule.fault == "drop"
            journal.record(
                Recorded(
                    time=backend.now_ms(),
                    method=exchange.method,
                    path=exchange.path,
                    query=scope.get("query_string", b""),
                    headers=scope["headers"],
                    body=bytes(exchange.captured) if exchange.captured else b"",
                    body_size=exchange.body_size,
                    # A dropped connection answered nothing the client could read.
                    status=None if dropped else answer.status,
                    account=exchange.account_label(),
                    fault=None if fired is None else fired.id,
                    duration_ms=(time.perf_counter() - started) * 1000,
                    response_headers=() if dropped else answer.headers,
                    response_body=b"" if dropped else answer.body,
                    response_size=0 if dropped else answer.size,
                )
            )

        recording = _Recording(send, record, journal.body_bytes)
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

    async def _unjournaled(self, scope: Scope, receive: Receive, send: Send, head: RequestHead) -> None:
        """Serve a request with nothing to journal or apply: one the shortcut answers goes out
        as it is. The body is read here only when the shortcut asks for it (a create that has
        passed the checks its route makes before reading it), and replayed to the app if the
        shortcut leaves the request after all."""
        answered = None if self.shortcut is None else self.shortcut(scope, head.authorization)
        if callable(answered):  # a create: its answer needs the body (declared, so not bodyless)
            first = await receive()
            receive = _replay(first, receive)
            whole = first["type"] == "http.request" and not first.get("more_body", False)
            answered = answered(first.get("body", b"")) if whole else None
        if answered is None:
            await self.app(scope, receive, send)
            return
        status, headers, content, _account = answered
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    def _journal_only(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        journal: Journal,
        head: RequestHead,
        started: float,
        body: bytes,
    ) -> Awaitable[None]:
        """Serve a request with no fault rule or rate limit in force, whose ``body`` is known
        whole (b"" for none): the journal entry is all there is to do. Not a coroutine itself:
        the caller awaits the one that sends the answer (a coroutine less per request)."""
        answered = self._shortcut_answer(scope, head, body)
        if answered is not None:
            return self._send_answered(scope, send, journal, head, started, body, answered)
        return self._through_app(scope, receive, send, journal, head, started, body)

    def _shortcut_answer(self, scope: Scope, head: RequestHead, body: bytes) -> Answered | None:
        """The shortcut's answer to a request whose ``body`` has come whole, or None."""
        answered = None if self.shortcut is None else self.shortcut(scope, head.authorization)
        return answered(body) if callable(answered) else answered

    async def _through_app(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        journal: Journal,
        head: RequestHead,
        started: float,
        body: bytes,
    ) -> None:
        """:meth:`_journal_only` for a request the shortcut leaves to the app."""
        backend = self.backend

        def record(answer: _Recording) -> None:
            account = backend.account_label(backend.account_of(head.authorization))
            journal.record(
                _entry(
                    backend.now_ms(),
                    scope,
                    head,
                    body,
                    started,
                    account,
                    answer.status,
                    answer.headers,
                    answer.body,
                    answer.size,
                )
            )

        recording = _Recording(send, record, journal.body_bytes)
        try:
            response: Response | None = await self.app.respond(scope, receive, recording.send)
            if response is not None:
                await recording.answer(response, scope, receive)
        finally:
            recording.finish()  # if no answer was completed: a client gone, a crash

    async def _send_answered(
        self,
        scope: Scope,
        send: Send,
        journal: Journal,
        head: RequestHead,
        started: float,
        body: bytes,
        answered: Answered,
    ) -> None:
        """Send the shortcut's answer and journal it as :meth:`_Recording.answer` would: the
        entry is written once the head is on its way, before the body goes."""
        status, headers, content, _account = answered
        sent = False
        try:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            sent = True
        finally:
            self._journal_answered(scope, journal, head, started, body, answered, sent)
        await send({"type": "http.response.body", "body": content})

    def _journal_answered(
        self,
        scope: Scope,
        journal: Journal,
        head: RequestHead,
        started: float,
        body: bytes,
        answered: Answered,
        sent: bool,
    ) -> None:
        """Journal the shortcut's answer, with the account it was made for, and its body if
        it went out (the journal keeps what it keeps of it: Journal.record)."""
        status, headers, content, account = answered
        if account is None:  # credentials refused: read as for any request (a bare key may pass)
            account = self.backend.account_of(head.authorization)
        label = self.backend.account_label(account)
        kept, size = (content, len(content)) if sent else (b"", 0)
        journal.record(
            _entry(self.backend.now_ms(), scope, head, body, started, label, status, headers, kept, size)
        )

    def answer_at_once(self, scope: Scope, body: bytes) -> Answered | None:
        """The answer to a request that has come whole (``body``, b"" for none) and that the
        shortcut answers with nothing else to apply (no fault rule, rate limit or namespace),
        journaled as :meth:`__call__` journals it; None for any other, which the caller then
        hands to the app as ever.

        The in-process transports ask this first (transport.py): a task query or create is
        then answered with no turn of an event loop and no ASGI message, which takes about a
        fifth off an in-process client's time (docs/benchmarks.md)."""
        if self.shortcut is None or self.shared or scope["type"] != "http":
            return None
        head = RequestHead.read(scope["headers"])
        space = self.backend.space()
        journal = space.journal
        if head.namespaced or space.faults.live or space.limits.rate_on:
            return None
        if head.declared > self.backend.config.max_body_bytes:
            return None  # journaled as __call__ journals it: without reading the body
        started = time.perf_counter()
        if head.bodyless:  # as __call__ reads it: no Content-Length (or 0), not chunked
            body = b""
        answered = self._shortcut_answer(scope, head, body)
        if answered is not None and journal.size:
            self._journal_answered(scope, journal, head, started, body, answered, sent=True)
        return answered

    # -- namespaces and a shared state (issue 20; namespaces.py, state.py) ----------------------

    async def _in_namespace(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request in the namespace it names (400 for a bad name), and on a shared
        state with what it reads once per request; a store that cannot be reached is 503 / 5001
        in the surface's envelope, wherever the layer meets it."""
        named = next((value for name, value in scope["headers"] if name == namespaces.HEADER_BYTES), None)
        token = None
        if named is not None:
            try:
                name = namespaces.check(named.decode("latin-1"))
            except namespaces.NamespaceError as exc:
                await self.render(scope["path"], KlingError(1201, str(exc)))(scope, receive, send)
                return
            token = namespaces.CURRENT.set(name)
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            with self.backend.state.request():
                await self({**scope, _ENTERED: True}, receive, watched)
        except KlingError as error:
            if started:
                raise
            await self.render(scope["path"], error)(scope, receive, send)
        finally:
            if token is not None:
                namespaces.CURRENT.reset(token)

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


def _replay(first: Message, receive: Receive) -> Receive:
    """A ``receive`` that gives ``first``, a message read already, then the client's."""
    pending = [first]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


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
