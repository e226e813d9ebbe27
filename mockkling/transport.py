"""A synchronous httpx transport into an ASGI app, so ``httpx.Client`` can talk to the mock in
process, with no socket. (httpx ships only an async one.)

Each request runs on a private event loop owned by the transport; when the caller is itself
inside a running event loop, the request runs on a helper thread's loop instead.
"""

from __future__ import annotations

import asyncio
import threading

import httpx
from starlette.types import ASGIApp


class SyncASGITransport(httpx.BaseTransport):
    def __init__(self, app: ASGIApp, *, client: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self._inner = httpx.ASGITransport(app=app, client=client)
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()

    async def _call(self, request: httpx.Request, body: bytes) -> httpx.Response:
        forwarded = httpx.Request(
            request.method, request.url, headers=request.headers, content=body, extensions=request.extensions
        )
        response = await self._inner.handle_async_request(forwarded)
        content = await response.aread()
        # A stream, not content=, so the client reads and closes it and sets ``elapsed``.
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=httpx.ByteStream(content),
            extensions=response.extensions,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            with self._lock:
                return self._loop.run_until_complete(self._call(request, body))
        # Called from inside a running loop: run on a thread with a loop of its own.
        result: list[httpx.Response] = []
        errors: list[BaseException] = []

        def run() -> None:
            try:
                result.append(asyncio.run(self._call(request, body)))
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
