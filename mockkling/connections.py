"""What one connection may ask of the server, so no client can exhaust it for the others: the
bytes of a request's head (431 past them), the time to send a complete head (the connection is
closed past it, with a 408 if it had started), and the connections open at once (503 past them).

uvicorn bounds none of these for its fast parser (httptools) and only the head's size for h11,
so both of its protocols are extended here by the same few lines: :func:`bounded` makes the
protocol class ``mockkling serve`` and the live servers run.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, ClassVar, Final, NamedTuple

import orjson

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


class _Bounded:
    """Mixed into a uvicorn HTTP protocol class (which provides the attributes used here)."""

    bounds: ClassVar[Bounds]
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    connections: set[Any]
    cycle: Any

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        if len(self.connections) > self.bounds.max_connections:
            message = f"More than {self.bounds.max_connections} connections are open; try again"
            self._close_with(_answer(503, "Service Unavailable", 5001, message))
            return
        self._await_head()

    def _await_head(self) -> None:
        self._head_bytes = 0
        self._head_tail = b""  # the last bytes seen, in case the blank line is split
        self._head_timer = self.loop.call_later(self.bounds.request_timeout_seconds, self._too_slow)

    def _head_done(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None:  # a head is complete: its body is the app's business
            super().data_received(data)  # type: ignore[misc]
            return
        # Measured before the parser sees a byte: where the head ends (its blank line), or how
        # much has come without one.
        window = self._head_tail + data
        end = window.find(b"\r\n\r\n")
        size = self._head_bytes + (len(data) if end < 0 else end + 4 - len(self._head_tail))
        if size > self.bounds.max_header_bytes:
            message = f"Request headers are larger than {self.bounds.max_header_bytes} bytes"
            self._close_with(_answer(431, "Request Header Fields Too Large", 1200, message))
            return
        self._head_bytes, self._head_tail = size, window[-3:]
        before = self.cycle
        super().data_received(data)  # type: ignore[misc]
        if self.cycle is not before:
            self._head_done()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing():
            self._head_done()
            self._await_head()  # the next request's head, on a kept-alive connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_done()
        super().connection_lost(exc)  # type: ignore[misc]

    def _too_slow(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._head_bytes:  # it started a request and did not finish its head in time
            message = f"No complete request in {self.bounds.request_timeout_seconds:g} s"
            self._close_with(_answer(408, "Request Timeout", 1200, message))
        else:
            self.transport.close()

    def _close_with(self, answer: bytes) -> None:
        self._head_done()
        self.transport.write(answer)
        self.transport.close()


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
