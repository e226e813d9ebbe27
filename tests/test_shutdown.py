"""Graceful shutdown: SIGTERM stops new connections, lets the requests in flight finish (their
tasks stored and acknowledged), then closes the state file complete and consistent."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from serve_process import ServeProcess, wait_until_refused

from mockkling import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, make_jwt
from mockkling.storage import SQLiteTaskStore

pytestmark = pytest.mark.slow  # `mockkling serve` in a child process, signalled

IN_FLIGHT = 8


def start_create(port: int, n: int, token: str) -> tuple[socket.socket, bytes]:
    """Send a create's headers with ``Expect: 100-continue`` and wait for the server's
    ``100 Continue``: the server is then inside the request, reading its body."""
    body = json.dumps({"prompt": f"in flight {n}", "external_task_id": f"flight-{n}"}).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (
        "POST /v1/videos/text2video HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Expect: 100-continue\r\n\r\n"
    )
    sock.sendall(head.encode())
    interim = sock.recv(1024)
    assert interim.startswith(b"HTTP/1.1 100 "), interim
    return sock, body


def finish(sock: socket.socket, body: bytes) -> tuple[int, dict[str, Any]]:
    """Send the rest of the request; read the answer to the end (the server then closes)."""
    sock.sendall(body)
    raw = b""
    while chunk := sock.recv(65536):
        raw += chunk
    sock.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(payload)


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_sigterm_lets_in_flight_creates_finish(tmp_path: Path, store: str) -> None:
    state = tmp_path / "state.db"
    flags = ["--state", str(state)] if store == "sqlite" else []
    token = make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)
    with ServeProcess(*flags) as server:
        started = [start_create(server.port, n, token) for n in range(IN_FLIGHT)]
        server.signal(signal.SIGTERM)
        wait_until_refused(server.port)  # shutting down: no new connection is accepted ...
        server.wait_for_log("Waiting for connections to close")  # ... and it waits for ours,
        answers = [finish(sock, body) for sock, body in started]  # which are served
        assert server.wait(30) in (0, -signal.SIGTERM)
    assert [(status, data["code"]) for status, data in answers] == [(200, 0)] * IN_FLIGHT
    acknowledged = {data["data"]["task_id"] for _, data in answers}
    assert len(acknowledged) == IN_FLIGHT
    if store == "memory":
        return
    # The state file was closed cleanly: its write-ahead log folded in, nothing half-written.
    assert not Path(f"{state}-wal").exists()
    with sqlite3.connect(state) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    reopened = SQLiteTaskStore(state)
    assert {t.task_id for t in reopened} == acknowledged
    assert reopened.get_external(DEFAULT_ACCESS_KEY, "flight-0") is not None
    reopened.close()


def test_sigterm_stops_several_workers_cleanly(tmp_path: Path) -> None:
    """`--workers 2`: SIGTERM to the server stops every worker, and the shared file is left whole."""
    state = tmp_path / "state.db"
    token = make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)
    with ServeProcess("--state", str(state), workers=2) as server:
        started = [start_create(server.port, n, token) for n in range(IN_FLIGHT)]
        server.signal(signal.SIGTERM)
        # The parent keeps the shared socket open to the end: wait for both workers to begin
        # shutting down (one may hold none of these connections, and stop at once).
        server.wait_for_log("Shutting down", times=2)
        answers = [finish(sock, body) for sock, body in started]
        assert server.wait(30) == 0
        assert server.text().count("Finished server process") == 2
    assert [status for status, _ in answers] == [200] * IN_FLIGHT
    assert not Path(f"{state}-wal").exists()
    with sqlite3.connect(state) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM tasks").fetchone() == (IN_FLIGHT,)
    db.close()
