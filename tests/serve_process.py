"""`mockkling serve` in a child process on a free loopback port, exactly as a user runs it, and
a bounded load to drive it, for the tests that load, kill or signal the server. Not a test
module: the live tests and the benchmarks import it.

Every test that starts `mockkling serve` builds its command line here (:func:`serve_command`).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import TypeVar

import httpx

T = TypeVar("T")

_RUNNING = re.compile(r"(?:Uvicorn running on|the Kling API on) (https?)://127\.0\.0\.1:(\d+)")
_WORKER = re.compile(r"Started server process \[(\d+)\]")


def serve_command(*flags: str, port: int = 0, log_level: str = "info") -> list[str]:
    """The command line of ``mockkling serve`` on 127.0.0.1 (``port`` 0 picks a free one), run by
    this interpreter; later flags win, so ``flags`` may override the log level."""
    return [
        sys.executable,
        "-m",
        "mockkling.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        log_level,
        *flags,
    ]


class ServeProcess:
    """``mockkling serve FLAGS`` on 127.0.0.1, port 0; ready once every worker has started.
    ``lines`` is what it wrote to stderr (uvicorn's log, the banner); with ``stdout=True``,
    ``out_lines`` is what it wrote to stdout."""

    def __init__(self, *flags: str, workers: int = 1, stdout: bool = False) -> None:
        self.flags = [*flags, *(["--workers", str(workers)] if workers > 1 else [])]
        self.workers = workers
        self.port = 0
        self.scheme = "http"
        self.lines: list[str] = []
        self.out_lines: list[str] = []
        self._stdout = stdout
        self._out_reader: threading.Thread | None = None
        self._changed = threading.Condition()
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    @property
    def proc(self) -> subprocess.Popen[str]:
        assert self._proc is not None, "not started"
        return self._proc

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def worker_pids(self) -> list[int]:
        """The processes that serve requests (the server itself, or each worker)."""
        with self._changed:
            return [int(m.group(1)) for line in self.lines if (m := _WORKER.search(line))]

    def start(self, timeout: float = 30) -> ServeProcess:
        # Only the flags configure it: no MOCKKLING_* variable of the caller leaks in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOCKKLING_")}
        self._proc = subprocess.Popen(
            serve_command(*self.flags),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if self._stdout else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if self._stdout:
            self._out_reader = threading.Thread(target=self._read_stdout, daemon=True)
            self._out_reader.start()
        ready = lambda: self.port and self.text().count("Application startup complete") >= self.workers  # noqa: E731
        with self._changed:
            if not self._changed.wait_for(lambda: ready() or self.proc.poll() is not None, timeout):
                self.kill()
                raise RuntimeError(f"mockkling serve did not start in {timeout} s:\n{self.text()}")
        if not ready():
            raise RuntimeError(f"mockkling serve exited with {self.proc.returncode}:\n{self.text()}")
        return self

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line)
                if not self.port and (m := _RUNNING.search(line)):
                    self.scheme, self.port = m.group(1), int(m.group(2))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.out_lines.append(line)

    def text(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def wait_for_log(self, needle: str, times: int = 1, timeout: float = 10) -> None:
        """Return once ``needle`` has been logged ``times`` times (once by each worker, say)."""
        with self._changed:
            if not self._changed.wait_for(lambda: "".join(self.lines).count(needle) >= times, timeout):
                raise AssertionError(f"{needle!r} not logged {times}x in {timeout} s:\n{''.join(self.lines)}")

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: no shutdown code runs."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        for reader in (self._reader, self._out_reader):
            if reader is not None:
                reader.join(10)
        for stream in (self._proc.stderr, self._proc.stdout) if self._proc is not None else ():
            if stream is not None:
                stream.close()
        if self.workers > 1:
            # A killed multi-worker server leaves its workers orphaned: end those still running.
            for pid in self.worker_pids:
                _kill_worker(pid)


def _kill_worker(pid: int) -> None:
    """SIGKILL a worker of ours, if that pid is still one (a multiprocessing child of python)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            if b"multiprocessing" not in fh.read():
                return
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGKILL)
    except (FileNotFoundError, ProcessLookupError):
        pass


def wait_until_refused(port: int, timeout: float = 10) -> None:
    """Return once 127.0.0.1:port refuses connections (the server closed its listener)."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return
        time.sleep(0.01)
    raise AssertionError(f"port {port} still accepts connections after {timeout} s")


_TLS = ssl.create_default_context()  # loaded once: each client would load the CA bundle again


async def lanes(
    url: str,
    calls: Iterable[Callable[[httpx.AsyncClient], Awaitable[T]]],
    in_flight: int,
    timeout: float = 120,
) -> list[T]:
    """Run every call, at most ``in_flight`` at a time, under one deadline; results in order.

    Each lane is a client with one keep-alive connection that takes the next call when its
    last one is answered: a bounded load whose client-side cost stays flat as lanes are added
    (one pool of many connections costs O(connections) per request in httpcore).
    """
    todo = list(enumerate(calls))[::-1]
    results: dict[int, T] = {}

    async def lane() -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30, verify=_TLS) as client:
            while todo:
                n, call = todo.pop()
                results[n] = await call(client)

    await asyncio.wait_for(asyncio.gather(*(lane() for _ in range(in_flight))), timeout)
    return [results[n] for n in range(len(results))]
