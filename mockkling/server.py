"""A live server: uvicorn on a loopback port in a background thread, for clients that only
speak real HTTP. Used by the end-to-end tests and the pytest plugin; stops cleanly."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from .connections import Bounds, bounded, fastest_http


class LiveServer:
    """Serve ``app`` on ``host:port`` (port 0 picks a free one) until :meth:`stop`."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0, **uvicorn_options: Any) -> None:
        self.app = app
        self.host = host
        self._requested_port = port
        # The bounds mockkling serve applies to each connection (connections.py), by default.
        options: dict[str, Any] = {
            "log_level": "warning",
            "access_log": False,
            "lifespan": "off",
            "http": bounded(fastest_http(), Bounds()),
        }
        options.update(uvicorn_options)
        self._config = uvicorn.Config(app, host=host, port=port, **options)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.port = port
        self.scheme = "https" if options.get("ssl_certfile") else "http"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> LiveServer:
        if self._thread is not None:
            raise RuntimeError("server already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self.port = sock.getsockname()[1]
        self._socket = sock
        backend = getattr(getattr(self.app, "state", None), "backend", None)
        if backend is not None:  # a mockkling app: its callbacks must never come back here
            backend.listening_on(self.host, self.port)
        server = uvicorn.Server(self._config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"mockkling-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mockkling server did not start on {self.url}")
            time.sleep(0.001)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
