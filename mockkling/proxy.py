"""An HTTPS forward proxy in front of the mock, so a client in any language reaches it with only
``HTTPS_PROXY`` and a trusted CA set (moto_proxy's way): ``mockkling serve --proxy``.

``CONNECT`` to a Kling host (or the media host) is accepted and the tunnel's TLS is ended here,
with a certificate for those names from the throwaway CA; the decrypted requests go on to the mock
on its own port. A plain-http request for those hosts (absolute-form) goes the same way. Every
other host is refused with a 403 that says why: nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

logger = logging.getLogger("mockkling.proxy")

# A request head longer than this is refused: no client needs more to say CONNECT host:port.
MAX_HEAD_BYTES: Final = 64 * 1024
# How long a client may take to send its request head, and the tunnel's TLS handshake.
HEAD_TIMEOUT_SECONDS: Final = 30.0
_CHUNK: Final = 64 * 1024


class KlingProxy:
    """Accepts proxy connections on ``host:port`` (0 picks a free port) for ``hosts``; forwards
    what it accepts to the mock at ``upstream`` (host, port), over TLS when ``upstream_tls`` is a
    client context (the mock itself serving HTTPS)."""

    def __init__(
        self,
        hosts: Iterable[str],
        server_tls: ssl.SSLContext,
        upstream: tuple[str, int],
        *,
        upstream_tls: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.hosts = frozenset(h.lower() for h in hosts)
        self._server_tls = server_tls
        self._upstream = upstream
        self._upstream_tls = upstream_tls
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    # -- one client connection -------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_SECONDS)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            writer.close()
            return
        try:
            method, target, version = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        except ValueError:
            await _refuse(writer, 400, "Bad Request", "not an HTTP request")
            return
        if method == "CONNECT":
            await self._tunnel(target, version, reader, writer)
        else:
            await self._forward(method, target, head, reader, writer)

    async def _tunnel(
        self, target: str, version: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        host = target.rpartition(":")[0].strip("[]").lower() if ":" in target else target.lower()
        if host not in self.hosts:
            await _refuse(
                writer, 403, "Forbidden", f"mockkling's proxy answers only the Kling hosts, not {host}"
            )
            return
        writer.write(f"{version} 200 Connection Established\r\n\r\n".encode("latin-1"))
        await writer.drain()
        try:
            await asyncio.wait_for(writer.start_tls(self._server_tls), HEAD_TIMEOUT_SECONDS)
        except (ssl.SSLError, TimeoutError, ConnectionError) as exc:
            logger.info("proxy: TLS with a client for %s failed: %s", host, exc)
            writer.close()
            return
        await self._pipe_upstream(b"", reader, writer)

    async def _forward(
        self,
        method: str,
        target: str,
        head: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        """A plain-http request in absolute form: sent on in origin form if its host is ours."""
        url = urlsplit(target)
        host = (url.hostname or "").lower()
        if url.scheme != "http" or host not in self.hosts:
            await _refuse(
                writer, 403, "Forbidden", f"mockkling's proxy answers only the Kling hosts, not {host}"
            )
            return
        path = url.path or "/"
        first, _, rest = head.partition(b"\r\n")
        origin = first.replace(
            target.encode("latin-1"), (path + (f"?{url.query}" if url.query else "")).encode()
        )
        await self._pipe_upstream(origin + b"\r\n" + rest, reader, writer)

    async def _pipe_upstream(
        self, first: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(
                *self._upstream,
                ssl=self._upstream_tls,
                server_hostname="localhost" if self._upstream_tls else None,
            )
        except OSError as exc:
            await _refuse(writer, 502, "Bad Gateway", f"the mock behind the proxy did not answer: {exc}")
            return
        if first:
            up_writer.write(first)
        await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer))


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while chunk := await source.read(_CHUNK):
            sink.write(chunk)
            await sink.drain()
    except (ConnectionError, ssl.SSLError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            sink.close()


async def _not_ours(writer: asyncio.StreamWriter, host: str) -> None:
    message = f"mockkling's proxy answers only the Kling hosts, not {host[:255]}"
    await _refuse(writer, 403, "Forbidden", message)


async def _refuse(writer: asyncio.StreamWriter, status: int, reason: str, message: str) -> None:
    body = (message + "\n").encode()
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("latin-1")
        + body
    )
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    writer.close()
