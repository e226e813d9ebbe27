"""httpx transports into an ASGI app, so an ``httpx.Client`` or ``httpx.AsyncClient`` can talk
to the mock in process, with no socket. (httpx ships only an async one.)

Both first ask the mock's app for an answer at once (``answer_at_once``, app.py): a task query or
create with no fault rule, rate limit or namespace in force is answered by a plain call, with no
event loop and no ASGI message, as the request layer answers it over HTTP. Any other request is
an ASGI call: the async transport leaves it to httpx's own; the sync one runs it on a private
event loop it owns, or on a helper thread's loop when the caller is itself inside a running
event loop. The sync transport makes the ASGI call directly, without the extra machinery of
httpx's async transport, because in-process tests make many small calls and feel every
microsecond.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import httpx
from starlette.types import ASGIApp, Message

from .request_layer import Answered

_DEFAULT_PORTS = {"http": 80, "https": 443}
_CLIENT = ("127.0.0.1", 50000)
# What the mock's app answers a whole request with, when it can without the ASGI call.
AtOnce = Callable[[dict[str, Any], bytes], Answered | None]


def _scope(request: httpx.Request, client: tuple[str, int]) -> dict[str, Any]:
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
        "client": client,
        "server": (url.host, url.port or _DEFAULT_PORTS.get(url.scheme, 80)),
        "extensions": {},
    }


def _answered(answered: Answered) -> httpx.Response:
    status, headers, content, _account = answered
    # A stream, not content=, so the client reads and closes it and sets ``elapsed``.
    return httpx.Response(status, headers=headers, stream=httpx.ByteStream(content))


class SyncASGITransport(httpx.BaseTransport):
    def __init__(self, app: ASGIApp, *, client: tuple[str, int] = _CLIENT) -> None:
        self.app = app
        self.client = client
        self._at_once: AtOnce | None = getattr(app, "answer_at_once", None)
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()  # the private loop's
        # Answers at once one at a time too, but never behind a slow call on the private loop.
        self._at_once_lock = threading.Lock()

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
        return _answered((status, headers, b"".join(chunks), None))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._loop.is_closed():  # every request refused alike, answerable at once or not
            raise RuntimeError("the transport is closed")
        scope, body = _scope(request, self.client), request.read()
        if self._at_once is not None:
            with self._at_once_lock:
                answered = self._at_once(scope, body)
            if answered is not None:
                return _answered(answered)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            with self._lock:
                return self._loop.run_until_complete(self._call(scope, body))
        # Called from inside a running loop: run on a thread with a loop of its own.
        result: list[httpx.Response] = []
        errors: list[BaseException] = []
        # In the caller's context (its namespace, say), as an answer at once and the private
        # loop's run_until_complete are.
        context = contextvars.copy_context()

        def run() -> None:
            try:
                result.append(context.run(asyncio.run, self._call(scope, body)))
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


class AsyncASGITransport(httpx.AsyncBaseTransport):
    """httpx's own ``ASGITransport``, the mock's app asked for an answer at once first."""

    def __init__(self, app: ASGIApp, *, client: tuple[str, int] = _CLIENT) -> None:
        self.client = client
        self._at_once: AtOnce | None = getattr(app, "answer_at_once", None)
        self._asgi = httpx.ASGITransport(app=app, client=client)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # Only a body already in memory: a streamed one reaches the app as it comes, so that
        # one declared over the size limit is refused unread.
        if self._at_once is not None and isinstance(request.stream, httpx.ByteStream):
            answered = self._at_once(_scope(request, self.client), await request.aread())
            if answered is not None:
                return _answered(answered)
        return await self._asgi.handle_async_request(request)

    async def aclose(self) -> None:
        await self._asgi.aclose()
