"""A synchronous httpx transport into an ASGI app, so ``httpx.Client`` can talk to the mock in
process, with no socket. (httpx ships only an async one.)

The mock's app is first asked for an answer at once (``answer_at_once``): a task query or
create with no fault rule, rate limit or namespace in force is answered by a plain call, with no
event loop and no ASGI message, as the request layer answers it over HTTP. Any other request
runs on a private event loop owned by the transport; when the caller is itself inside a running
event loop, on a helper thread's loop instead. The ASGI call is made directly, without the extra
machinery of httpx's async transport, because in-process tests make many small calls and feel
every microsecond.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import httpx
from starlette.types import ASGIApp, Message

from .request_layer import Answered

_DEFAULT_PORTS = {"http": 80, "https": 443}


class SyncASGITransport(httpx.BaseTransport):
    def __init__(self, app: ASGIApp, *, client: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self.app = app
        self.client = client
        # The mock's app (app.py) answers task queries and creates without the ASGI call.
        self._at_once: Callable[[dict[str, Any], bytes], Answered | None] | None = getattr(
            app, "answer_at_once", None
        )
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
        scope, body = self._scope(request), request.read()
        if self._at_once is not None:
            with self._lock:  # one request at a time, as on the private loop
                answered = self._at_once(scope, body)
            if answered is not None:
                status, headers, content, _account = answered
                return httpx.Response(status, headers=headers, stream=httpx.ByteStream(content))
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

        thread = threading.Thread(target=run, name="mockkling-asgi")
        thread.start()
        thread.join()
        if errors:
            raise errors[0]
        return result[0]

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.close()
