"""httpx transports into an ASGI app, so httpx clients talk to the mock in process, with no
socket: a synchronous one (httpx ships only an async one), and httpx's async one. Both turn a
connection the mock drops on purpose into the error an httpx client on a socket gets.

Each request runs on a private event loop owned by the transport; when the caller is itself
inside a running event loop, the request runs on a helper thread's loop instead. The ASGI call
is made directly, without the extra machinery of httpx's async transport, because in-process
tests make many small calls and feel every microsecond.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any
from urllib.parse import unquote

import httpx
from starlette.types import ASGIApp, Message

from .faults import DroppedConnection

_DEFAULT_PORTS = {"http": 80, "https": 443}


class SyncASGITransport(httpx.BaseTransport):
    def __init__(self, app: ASGIApp, *, client: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self.app = app
        self.client = client
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()

    def _scope(self, request: httpx.Request) -> dict[str, Any]:
        url = request.url
        raw_path, _, _ = url.raw_path.partition(b"?")
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": url.scheme,
            "path": unquote(raw_path.decode("ascii")),
            "raw_path": raw_path,
            "query_string": url.query,
            "root_path": "",
            "headers": [(name.lower(), value) for name, value in request.headers.raw],
            "client": self.client,
            "server": (url.host, url.port or _DEFAULT_PORTS.get(url.scheme, 80)),
            "extensions": {},
        }

    async def _call(self, scope: dict[str, Any], body: bytes) -> httpx.Response:
        request_sent = False
        done = asyncio.Event()
        status = 500
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal request_sent
            if request_sent:  # like a server: the client goes away once the response is complete
                await done.wait()
                return {"type": "http.disconnect"}
            request_sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status, headers = message["status"], list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    done.set()

        try:
            await self.app(scope, receive, send)
        finally:
            done.set()
        # A stream, not content=, so the client reads and closes it and sets ``elapsed``.
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(b"".join(chunks)))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return self._handle(request)
        except DroppedConnection as exc:
            raise _protocol_error(exc, request) from exc

    def _handle(self, request: httpx.Request) -> httpx.Response:
        scope, body = self._scope(request), request.read()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            with self._lock:
                return self._loop.run_until_complete(self._call(scope, body))
        # Called from inside a running loop: run on a thread with a loop of its own.
        result: list[httpx.Response] = []
        errors: list[BaseException] = []

        def run() -> None:
            try:
                result.append(asyncio.run(self._call(scope, body)))
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        if errors:
            raise errors[0]
        return result[0]

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.close()


class AsyncASGITransport(httpx.ASGITransport):
    """httpx's async ASGI transport, with a dropped connection raised as httpx would raise it."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except DroppedConnection as exc:
            raise _protocol_error(exc, request) from exc


def _protocol_error(exc: DroppedConnection, request: httpx.Request) -> httpx.RemoteProtocolError:
    message = f"Server disconnected without sending a complete response: {exc}"
    return httpx.RemoteProtocolError(message, request=request)
