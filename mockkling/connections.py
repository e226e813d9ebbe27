"""What one connection may ask of the server, so no client can exhaust it for the others: the
bytes of a request's head (431 past them), the time to send a complete request, head and body
(the connection is closed past it, with a 408 if it had started), and the connections open at
once (503 past them).

uvicorn bounds none of these for its fast parser (httptools) and only the head's size for h11,
so both of its protocols are extended here by the same few lines: :func:`bounded` makes the
protocol class ``mockkling serve`` and the live servers run.
"""

from __future__ import annotations

import asyncio
import os
from http import HTTPStatus
from typing import Any, ClassVar, Final, NamedTuple

import orjson

from .errors import KlingError

# What real clients need is a fraction of each: a Kling request's head is well under 2 KB.
DEFAULT_MAX_HEADER_BYTES: Final = 16 * 1024
DEFAULT_REQUEST_TIMEOUT_SECONDS: Final = 10.0
DEFAULT_MAX_CONNECTIONS: Final = 1000


class Bounds(NamedTuple):
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    request_timeout_seconds: float = DEFAULT_REQUEST_TIMEOUT_SECONDS
    max_connections: int = DEFAULT_MAX_CONNECTIONS


def _answer(status: int, reason: str, code: int, message: str) -> bytes:
    """A complete answer in the official envelope, then the connection is closed (the request's
    path, hence its surface, is not known yet)."""
    body = orjson.dumps({"code": code, "message": message, "request_id": "", "data": None})
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


class _Coalesced(asyncio.Transport):
    """The connection's transport, writing an answer's head and a small body as one packet.

    uvicorn writes the head of an answer, then its body: two system calls and two packets per
    answer, a good part of the server's time for a small JSON answer (docs/benchmarks.md). A
    small write is held until the next write or the end of the event loop's turn, whichever
    comes first, so nothing waits longer than that; every other use goes to the transport.

    Every other method is spelled out, not forwarded by ``__getattr__``: each forwarded call
    (``is_closing``, twice a request) first raised and caught an AttributeError, and a class
    with ``__getattr__`` reads even its own attributes through a slower hook. Together they cost
    a create about 14,000 of its 389,000 machine instructions (docs/benchmarks.md)."""

    __slots__ = ("_held", "_loop", "_transport")

    HOLD_BYTES: ClassVar[int] = 1024  # an answer's head (~130 bytes) is held, a body rarely is
    JOIN_BYTES: ClassVar[int] = 16 * 1024  # joined only to a body this small: no large copy

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport, self._loop, self._held = transport, loop, b""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._transport.is_closing():
            # The client reset the connection, or the server is closing it: nobody can read
            # this, and uvloop's transport would raise, logged as the app's error.
            self._held = b""
            return
        held = self._held
        if held:
            self._held = b""
            if len(data) <= self.JOIN_BYTES:
                self._transport.write(held + bytes(data))
                return
            self._transport.write(held)
        elif len(data) <= self.HOLD_BYTES:
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
            return
        self._transport.write(data)

    def flush(self) -> None:
        if self._held:
            held, self._held = self._held, b""
            if not self._transport.is_closing():  # else the client is gone: nobody to read it
                self._transport.write(held)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = b""
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()


class _Bounded:
    """Mixed into a uvicorn HTTP protocol class (which provides the attributes used here).

    A request's head must be complete ``request_timeout_seconds`` after it was awaited, and its
    body may pause no longer than that between two parts (a slow but steady upload goes on):
    each connection notes its deadline, and one sweep per server, every quarter of the timeout
    (at most a second), closes those past it. A timer per request cost more than the rest of
    this class together."""

    bounds: ClassVar[Bounds]
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    connections: set[Any]
    server_state: Any
    cycle: Any
    flow: Any

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(_Coalesced(transport, self.loop))  # type: ignore[misc]
        self._deadline: float | None = None
        self._in_head = True  # False once the head is complete and while its body is not
        if len(self.connections) > self.bounds.max_connections:
            message = f"More than {self.bounds.max_connections} connections are open; try again"
            self._close_with(_answer(503, "Service Unavailable", 5001, message))
            return
        self._await_head()
        state = self.server_state
        if not getattr(state, "mockkling_sweeping", False):
            state.mockkling_sweeping = True
            self.loop.call_later(self._sweep_period(), _sweep, self.loop, self.connections, state)

    @classmethod
    def _sweep_period(cls) -> float:
        return max(0.05, min(1.0, cls.bounds.request_timeout_seconds / 4))

    def _await_head(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._head_tail = b""  # the last bytes seen, in case the blank line is split
        self._deadline = self.loop.time() + self.bounds.request_timeout_seconds

    def data_received(self, data: bytes) -> None:
        if self._deadline is None:  # a whole request: the rest is the app's business
            super().data_received(data)  # type: ignore[misc]
            return
        if not self._in_head:  # the head is in, its body not yet: each part gives it more time
            self._deadline = self.loop.time() + self.bounds.request_timeout_seconds
            super().data_received(data)  # type: ignore[misc]
            self._check_body()
            return
        size = self._head_bytes + len(data)
        if size > self.bounds.max_header_bytes:
            # Past the bound counting every byte: measure the head itself, before the parser
            # sees a byte (where its blank line is, or how much has come without one).
            window = self._head_tail + data
            end = window.find(b"\r\n\r\n")
            if end >= 0:
                size = self._head_bytes + end + 4 - len(self._head_tail)
            if size > self.bounds.max_header_bytes:
                message = f"Request headers are larger than {self.bounds.max_header_bytes} bytes"
                self._close_with(_answer(431, "Request Header Fields Too Large", 1200, message))
                return
        self._head_bytes, self._head_tail = size, data[-3:]
        before = self.cycle
        super().data_received(data)  # type: ignore[misc]
        if self.cycle is not before:
            self._in_head = False
            self._check_body()

    def _check_body(self) -> None:
        if not self.cycle.more_body:
            self._deadline = None

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing():
            self._await_head()  # the next request's head, on a kept-alive connection

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        seconds = self.bounds.request_timeout_seconds
        message = f"No complete request in {seconds:g} s"
        if not self._in_head:  # a head, then not all of its body
            if self.flow.read_paused:  # the app has not read what came: it is the one waiting
                self._deadline = self.loop.time() + seconds
            elif self.cycle.response_started:
                self.transport.close()
            else:
                self._close_with(_timeout_answer(self.cycle.scope, message))
        elif self._head_bytes:  # it started a request and did not finish its head in time
            self._close_with(_answer(408, "Request Timeout", 1200, message))
        else:
            self.transport.close()

    def _close_with(self, answer: bytes) -> None:
        self._deadline = None
        self.transport.write(answer)
        self.transport.close()


def _timeout_answer(scope: dict[str, Any], message: str) -> bytes:
    """The 408 for a request whose head came but not all of its body, in the envelope of the
    surface it went to, as the mock's app words it (``render_path``, set by app.create_app);
    in the official envelope for any other app."""
    render = getattr(scope.get("app"), "render_path", None)
    if render is None:
        return _answer(408, "Request Timeout", 1200, message)
    try:
        response = render(scope["path"], KlingError(1200, message, http_status=408))
        head = [f"HTTP/1.1 {response.status_code} {HTTPStatus(response.status_code).phrase}\r\n".encode()]
    except Exception:  # this runs in the sweep, which must go on for the other connections
        return _answer(408, "Request Timeout", 1200, message)
    head += [name + b": " + value + b"\r\n" for name, value in response.raw_headers if name != b"connection"]
    return b"".join(head) + b"connection: close\r\n\r\n" + bytes(response.body)


def _sweep(loop: asyncio.AbstractEventLoop, connections: set[Any], state: Any) -> None:
    """Close the server's connections whose request is overdue; again while any is open."""
    now = loop.time()
    period = 1.0
    for connection in list(connections):
        deadline = getattr(connection, "_deadline", None)
        if isinstance(connection, _Bounded):
            period = connection._sweep_period()
            if deadline is not None and deadline <= now:
                connection._too_slow()
    if connections:
        loop.call_later(period, _sweep, loop, connections, state)
    else:
        state.mockkling_sweeping = False


def bounded(http: str, bounds: Bounds) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class (``http``: "httptools", else h11) with ``bounds`` applied."""
    base: type[asyncio.Protocol]
    if http == "httptools":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        base = HttpToolsProtocol
    else:
        from uvicorn.protocols.http.h11_impl import H11Protocol

        base = H11Protocol
    return type(f"Bounded{base.__name__}", (_Bounded, base), {"bounds": bounds})


# `mockkling serve --workers N` hands uvicorn's worker processes the protocol by its import path
# (a class made at run time cannot cross to another process); the bounds go in the environment.
BOUNDS_ENV: Final = "MOCKKLING_CONNECTION_BOUNDS"


def worker_protocol(http: str, bounds: Bounds) -> str:
    """The import path of the bounded protocol the workers build (see :func:`for_workers`)."""
    os.environ[BOUNDS_ENV] = orjson.dumps(list(bounds)).decode()
    return f"{__name__}:{'HttpTools' if http == 'httptools' else 'H11'}ForWorkers"


def _worker_bounds() -> Bounds:
    raw = os.environ.get(BOUNDS_ENV)
    return Bounds(*orjson.loads(raw)) if raw else Bounds()


def __getattr__(name: str) -> type[asyncio.Protocol]:
    # Built when a worker asks for it, from the bounds its parent put in the environment.
    if name in ("HttpToolsForWorkers", "H11ForWorkers"):
        return bounded("httptools" if name == "HttpToolsForWorkers" else "h11", _worker_bounds())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def fastest_http() -> str:
    """The parser uvicorn's "auto" would pick: httptools when installed, else h11."""
    import importlib.util

    return "httptools" if importlib.util.find_spec("httptools") is not None else "h11"
