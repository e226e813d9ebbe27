"""No API client can wipe, freeze or crash a shared mock, and the command line tells the truth
(issue 18): each case an attack-minded probe found, as a test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_process import ServeProcess, serve_command
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mockkling import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_API_KEY,
    DEFAULT_SECRET_KEY,
    Backend,
    Config,
    create_app,
    make_jwt,
)
from mockkling.callbacks import PER_HOST_CONCURRENT, USER_AGENT, is_listening_on
from mockkling.config import CallbackSettings
from mockkling.connections import Bounds, bounded, fastest_http
from mockkling.server import LiveServer
from mockkling.transport import SyncASGITransport

T2V = "/v1/videos/text2video"


def _token() -> str:
    return make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)


@pytest.fixture
def live() -> Iterator[tuple[Backend, str]]:
    backend = Backend(Config(seed=3))
    backend.use_manual_clock()
    with LiveServer(create_app(backend)) as server:
        yield backend, server.url
    backend.close()


# -- 1. a callback can never reach the mock itself -------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/__mockkling/reset",
        "http://localhost:{port}/__mockkling/reset",
        "http://localhost.:{port}/__mockkling/reset",  # a name that passes the host check, then DNS
        "http://127.0.0.1:{port}//__mockkling/reset",
    ],
)
def test_a_callback_url_pointing_at_the_mock_is_refused_at_create(
    live: tuple[Backend, str], target: str
) -> None:
    backend, url = live
    port = httpx.URL(url).port
    answer = httpx.post(
        f"{url}{T2V}",
        json={"prompt": "a", "callback_url": target.format(port=port)},
        headers={"Authorization": f"Bearer {_token()}"},
    )
    assert (answer.status_code, answer.json()["code"]) == (400, 1201)
    assert "mock itself" in answer.json()["message"]
    assert len(backend.tasks) == 0


def test_a_wildcard_bind_counts_every_local_address_and_loopback() -> None:
    wildcard = {("0.0.0.0", 8000)}
    assert is_listening_on("127.0.0.1", 8000, wildcard)
    assert is_listening_on("127.0.0.2", 8000, wildcard)
    assert is_listening_on("::1", 8000, {("::", 8000)})
    assert not is_listening_on("127.0.0.1", 8001, wildcard)
    assert not is_listening_on("10.255.255.1", 8000, {("127.0.0.1", 8000)})


@pytest.mark.slow
def test_the_control_api_refuses_the_callback_sender(live: tuple[Backend, str]) -> None:
    _backend, url = live
    answer = httpx.post(f"{url}/__mockkling/reset", headers={"User-Agent": USER_AGENT})
    assert answer.status_code == 403


@pytest.mark.slow
def test_a_slow_receiver_holds_up_only_its_own_callbacks() -> None:
    """Forty callbacks stuck at a receiver that never answers do not delay another receiver's."""
    release = threading.Event()
    fast_got: list[str] = []

    async def slow(request: Request) -> Response:
        while not release.is_set():
            await asyncio.sleep(0.01)
        return Response(status_code=200)

    async def fast(request: Request) -> Response:
        fast_got.append((await request.json())["task_status"])
        return Response(status_code=200)

    backend = Backend(Config(callbacks=CallbackSettings(attempts=1, timeout_seconds=30)))
    backend.use_manual_clock()
    slow_app = Starlette(routes=[Route("/", slow, methods=["POST"])])
    fast_app = Starlette(routes=[Route("/", fast, methods=["POST"])])
    headers = {"Authorization": f"Bearer {_token()}"}
    try:
        with LiveServer(slow_app) as slow_server, LiveServer(fast_app) as fast_server:
            fast_url = fast_server.url.replace("127.0.0.1", "localhost")  # another host, another lane
            with httpx.Client(
                transport=SyncASGITransport(create_app(backend)), base_url="http://mock"
            ) as api:
                for _ in range(40):
                    api.post(
                        T2V, json={"prompt": "a", "callback_url": f"{slow_server.url}/"}, headers=headers
                    )
                api.post(T2V, json={"prompt": "a", "callback_url": f"{fast_url}/"}, headers=headers)
            backend.callbacks.wake()
            deadline = threading.Event()
            for _ in range(500):
                if fast_got:
                    break
                deadline.wait(0.01)
            assert fast_got == ["submitted"]
            release.set()
            assert backend.callbacks.flush(30)
    finally:
        release.set()
        backend.close()


class SilentReceivers:
    """Receivers on ``count`` loopback ports that read each request and never answer it (until
    closed), each port a host of its own to the callback sender; ``requests`` counts those read."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.ports: list[int] = []
        self.requests = 0
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[asyncio.Server] = []

    def __enter__(self) -> SilentReceivers:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._open(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def wait_for(self, count: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.requests >= count, timeout)

    async def _open(self) -> None:
        self._servers = [await asyncio.start_server(self._hold, "127.0.0.1", 0) for _ in range(self.count)]
        self.ports = [server.sockets[0].getsockname()[1] for server in self._servers]

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            with self._changed:
                self.requests += 1
                self._changed.notify_all()
            await asyncio.Event().wait()  # no answer, ever
        finally:
            writer.close()

    async def _close(self) -> None:
        for server in self._servers:
            server.close()
        held = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in held:
            task.cancel()
        await asyncio.gather(*held, return_exceptions=True)


@pytest.mark.slow
def test_many_slow_receivers_together_do_not_hold_up_another_receivers_callbacks() -> None:
    """Fifteen receivers that never answer, each with a full lane of callbacks in flight (more
    connections together than httpx's default pool of a hundred), delay neither each other's
    deliveries nor a sixteenth receiver's first callback."""
    fast_got = threading.Event()

    async def fast(request: Request) -> Response:
        fast_got.set()
        return Response(status_code=200)

    backend = Backend(Config(callbacks=CallbackSettings(attempts=1, timeout_seconds=30)))
    backend.use_manual_clock()
    headers = {"Authorization": f"Bearer {_token()}"}
    fast_app = Starlette(routes=[Route("/", fast, methods=["POST"])])
    try:
        with (
            SilentReceivers(15) as slow,
            LiveServer(fast_app) as fast_server,
            httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock") as api,
        ):
            for port in slow.ports:
                for _ in range(PER_HOST_CONCURRENT):
                    hook = f"http://127.0.0.1:{port}/"
                    api.post(T2V, json={"prompt": "a", "callback_url": hook}, headers=headers)
            in_flight = slow.count * PER_HOST_CONCURRENT
            all_sent = slow.wait_for(in_flight, 5)
            started = time.monotonic()
            api.post(T2V, json={"prompt": "a", "callback_url": f"{fast_server.url}/"}, headers=headers)
            assert fast_got.wait(10)
            assert time.monotonic() - started < 2.0
            assert all_sent, f"{slow.requests} of {in_flight} slow receivers' callbacks sent"
    finally:
        backend.close()


# -- 4. one Authorization header, read the same by everyone ----------------------------------------


@pytest.mark.parametrize(("path", "surface"), [(T2V, "official"), ("/v1/video/generations/x", "gateway")])
def test_two_authorization_headers_are_refused(path: str, surface: str) -> None:
    backend = Backend(Config(seed=1))
    backend.limits.set(rate=3)
    with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock") as client:
        headers = [("Authorization", f"Bearer {_token()}"), ("Authorization", DEFAULT_API_KEY)]
        answers = [client.get(path, headers=headers) for _ in range(12)]
    assert {a.status_code for a in answers} == {400}
    body = answers[0].json()
    assert body["code"] == (1200 if surface == "official" else "invalid_request")
    assert "one Authorization header" in body["message"]


# -- 6. small wrong answers ------------------------------------------------------------------------


@pytest.fixture
def api() -> Iterator[tuple[Backend, httpx.Client]]:
    backend = Backend(Config(seed=2))
    backend.use_manual_clock()
    headers = {"Authorization": f"Bearer {_token()}"}
    with httpx.Client(
        transport=SyncASGITransport(create_app(backend)), base_url="http://mock", headers=headers
    ) as client:
        yield backend, client


def test_repeated_and_trailing_slashes_are_one_slash(api: tuple[Backend, httpx.Client]) -> None:
    _backend, client = api
    task_id = client.post(T2V, json={"prompt": "a"}).json()["data"]["task_id"]
    assert client.get(f"/v1/videos/text2video//{task_id}").json()["data"]["task_id"] == task_id
    listed = client.get("/v1/videos/text2video/")
    assert (listed.status_code, listed.json()["code"], len(listed.json()["data"])) == (200, 0, 1)
    assert client.get("/v1//videos///text2video").json()["data"][0]["task_id"] == task_id


def test_result_files_answer_odd_requests_as_a_cdn(api: tuple[Backend, httpx.Client]) -> None:
    backend, client = api
    task_id = client.post("/v1/images/generations", json={"prompt": "a"}).json()["data"]["task_id"]
    backend.advance(10)
    url = client.get(f"/v1/images/generations/{task_id}").json()["data"]["task_result"]["images"][0]["url"]
    assert client.get(f"/media/images/{task_id}/{'9' * 5000}.png").status_code == 404
    whole = client.get(url, headers={"Range": "items=0-5"})  # an unknown unit is ignored (RFC 9110)
    assert (whole.status_code, whole.content[:8]) == (200, b"\x89PNG\r\n\x1a\n")
    assert client.get(url, headers={"Range": "bytes=0-7"}).status_code == 206


# -- 7. the command line ---------------------------------------------------------------------------


def _serve(
    *flags: str, config: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    extra = ["--config", str(config)] if config else []
    return subprocess.run(
        serve_command(*flags, *extra),
        capture_output=True,
        text=True,
        timeout=30,
        env={**_clean_env(), **(env or {})},
    )


def _clean_env() -> dict[str, str]:
    """This process's environment without any MOCKKLING_* variable: only the test's own count."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MOCKKLING_")}


@pytest.mark.slow
def test_the_banner_tells_the_real_port_and_a_taken_port_is_one_line() -> None:
    with ServeProcess() as first:
        assert f"the Kling API on http://127.0.0.1:{first.port}" in first.text()
        assert f"http://127.0.0.1:{first.port}/__mockkling/" in first.text()
        taken = _serve("--port", str(first.port))
    assert taken.returncode == 1
    assert (
        taken.stderr.strip() == f"mockkling: cannot listen on 127.0.0.1:{first.port}: Address already in use"
    )


@pytest.mark.slow
def test_with_workers_the_banner_tells_the_real_port_and_each_worker_knows_it(tmp_path: Path) -> None:
    state = str(tmp_path / "w.db")
    timing = ("--queue-seconds", "0", "--run-seconds", "0")
    with ServeProcess("--state", state, *timing, workers=2) as server:
        assert server.port != 0
        assert f"the Kling API on http://127.0.0.1:{server.port}" in server.text()
        headers = {"Authorization": f"Bearer {_token()}"}
        home = f"http://127.0.0.1:{server.port}/__mockkling/reset"
        # A new connection each time, so both workers take some of them.
        answers = [
            httpx.post(f"{server.url}{T2V}", json={"prompt": "a", "callback_url": home}, headers=headers)
            for _ in range(16)
        ]
        assert {(a.status_code, a.json()["code"]) for a in answers} == {(400, 1201)}
        created = httpx.post(f"{server.url}{T2V}", json={"prompt": "a"}, headers=headers).json()["data"]
        task = httpx.get(f"{server.url}{T2V}/{created['task_id']}", headers=headers).json()["data"]
        assert task["task_result"]["videos"][0]["url"].startswith(f"{server.url}/")  # not port 0
        taken = _serve("--port", str(server.port), "--workers", "2", "--state", state)
    assert taken.returncode == 1
    assert (
        taken.stderr.strip() == f"mockkling: cannot listen on 127.0.0.1:{server.port}: Address already in use"
    )


@pytest.mark.slow
def test_an_empty_admin_token_is_refused(tmp_path: Path) -> None:
    flag = _serve("--admin-token", "")
    assert flag.returncode == 2 and "--admin-token cannot be empty" in flag.stderr
    config = tmp_path / "mock.toml"
    config.write_text('admin_token = "  "\n')
    assert "admin_token cannot be empty" in _serve(config=config).stderr
    for blank in ("", "  "):
        env = _serve(env={"MOCKKLING_ADMIN_TOKEN": blank})
        assert env.returncode == 2
        assert env.stderr.strip() == "mockkling: MOCKKLING_ADMIN_TOKEN cannot be empty: unset it for no token"


@pytest.mark.slow
def test_remote_control_without_a_token_warns_by_name() -> None:
    with ServeProcess("--control-remote") as server:
        text: Any = server.text()
    assert "WARNING: --control-remote without --admin-token" in text


# -- 5. bounded memory ------------------------------------------------------------------------------


def test_the_journal_keeps_a_few_kb_of_headers_per_entry(api: tuple[Backend, httpx.Client]) -> None:
    backend, client = api
    client.get(T2V, headers={"X-Padding": "p" * 1_000_000, "X-After": "kept?"})
    entry = backend.journal.last()
    assert entry is not None
    kept = sum(len(name) + len(value) for name, value in entry.headers.items())
    assert kept <= backend.journal.header_bytes + 16
    assert entry.headers["authorization"] == "Bearer ***"  # what comes first is kept, and masked
    assert "x-after" not in entry.headers


def test_the_in_memory_store_keeps_at_most_max_tasks() -> None:
    backend = Backend(Config(seed=5, max_tasks=300))
    backend.use_manual_clock()
    headers = {"Authorization": f"Bearer {_token()}"}
    with httpx.Client(
        transport=SyncASGITransport(create_app(backend)), base_url="http://mock", headers=headers
    ) as client:
        ids = [
            client.post(T2V, json={"prompt": "a", "external_task_id": f"job-{n}"}).json()["data"]["task_id"]
            for n in range(1000)
        ]
        assert 297 <= len(backend.tasks) <= 300
        newest = client.get(T2V, params={"pageSize": 500}).json()["data"]
        assert [t["task_id"] for t in newest] == ids[::-1][: len(newest)]
        assert client.get(f"{T2V}/{ids[0]}").json()["code"] == 1203  # the oldest are gone ...
        again = client.post(T2V, json={"prompt": "a", "external_task_id": "job-0"})
        assert again.json()["code"] == 0  # ... and so are their external ids
        assert client.get(f"{T2V}/job-999").json()["data"]["task_id"] == ids[-1]


# -- 2. limits before work, long work off the event loop ---------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("field", "limit"), [("dynamic_masks", 6), ("voice_list", 2)])
def test_a_million_items_are_refused_by_count_while_others_are_served(
    live: tuple[Backend, str], field: str, limit: int
) -> None:
    _backend, url = live
    headers = {"Authorization": f"Bearer {_token()}", "Content-Type": "application/json"}
    body = b'{"model_name": "kling-v1", "image": "https://example.com/a.png", "%s": [%s]}' % (
        field.encode(),
        b",".join([b"1"] * 1_000_000),
    )
    refused: list[httpx.Response] = []
    sender = threading.Thread(
        target=lambda: refused.append(
            httpx.post(f"{url}/v1/videos/image2video", content=body, headers=headers, timeout=60)
        )
    )
    with httpx.Client(base_url=url, headers=headers, timeout=10) as other:
        other.get(T2V)  # connected and warm
        sender.start()
        slowest = 0.0
        while sender.is_alive():
            answer = other.get(T2V)
            assert answer.status_code == 200
            slowest = max(slowest, answer.elapsed.total_seconds())
        sender.join()
    assert slowest < 1.0  # nobody waits for the big body
    (answer,) = refused
    assert (answer.status_code, answer.json()["code"]) == (400, 1201)
    assert answer.json()["message"] == f"{field} must have at most {limit} items (got 1000000)"


# -- 5. what one connection may ask -------------------------------------------------------------------


@pytest.fixture
def bounded_server() -> Iterator[str]:
    """A live mock whose connections have small bounds, so the test does not wait long."""
    bounds = Bounds(max_header_bytes=4096, request_timeout_seconds=0.5, max_connections=8)
    with LiveServer(create_app(Backend()), http=bounded(fastest_http(), bounds)) as server:
        yield f"127.0.0.1:{server.port}"


def _raw(address: str, data: bytes, *, timeout: float = 10) -> bytes:
    host, _, port = address.partition(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(data)
        reply = b""
        with contextlib.suppress(TimeoutError, ConnectionError):
            while chunk := sock.recv(65536):
                reply += chunk
        return reply


@pytest.mark.slow
def test_a_head_past_the_bound_is_refused_before_it_is_read(bounded_server: str) -> None:
    start = b"GET /v1/videos/text2video HTTP/1.1\r\nHost: mock\r\nX-Padding: "
    reply = _raw(bounded_server, start + b"p" * 20_000 + b"\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 431 ")
    assert b'"message":"Request headers are larger than 4096 bytes"' in reply
    # Megabytes of head: the server stops reading at the bound and closes, mid-upload.
    with pytest.raises(ConnectionError):
        _raw(bounded_server, start + b"p" * 50_000_000)
    # A head within the bound, with a large body in the same write, is answered as usual.
    body = b"x" * 500_000
    post = b"POST /v1/videos/text2video HTTP/1.1\r\nHost: mock\r\nContent-Length: %d\r\n\r\n" % len(body)
    assert _raw(bounded_server, post + body).startswith(b"HTTP/1.1 401 ")


@pytest.mark.slow
def test_idle_and_half_sent_connections_are_closed(bounded_server: str) -> None:
    assert _raw(bounded_server, b"") == b""  # nothing sent: closed without a word
    half = _raw(bounded_server, b"GET /v1/videos/text2video HTTP/1.1\r\nHost: m")
    assert half.startswith(b"HTTP/1.1 408 ")


def _half_body(path: str) -> bytes:
    """A complete head announcing 100 bytes of body, then only 10 of them."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: m\r\nAuthorization: Bearer {_token()}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    return head.encode() + b'{"prompt":'


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "answer"),
    [
        (T2V, b'{"code":1200,"message":"No complete request in 0.5 s","request_id":'),
        (
            "/text-to-video/kling-3.0-turbo",
            b'{"code":1200,"message":"No complete request in 0.5 s","request_id":',
        ),
        (
            "/v1/video/generations",
            b'{"code":"http_408","message":"No complete request in 0.5 s","data":null}',
        ),
        ("/media/videos/x/1.mp4", b"408 Request Timeout"),
    ],
)
def test_a_half_sent_body_gets_a_408_in_its_surface_envelope_and_is_closed(
    bounded_server: str, path: str, answer: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    started = time.monotonic()
    reply = _raw(bounded_server, _half_body(path))
    assert time.monotonic() - started < 2  # the deadline, plus a sweep's period
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ") and b"connection: close" in head
    assert body.startswith(answer)
    time.sleep(0.1)  # the app, still waiting for the body, learns the client is gone
    assert "unhandled error" not in caplog.text  # a closed connection is no crash


@pytest.mark.slow
def test_a_slow_but_steady_body_is_served(bounded_server: str) -> None:
    """A body that keeps coming is served however long it takes in all (here three times the
    0.5 s deadline): the deadline bounds each pause, not the whole upload."""
    host, _, port = bounded_server.partition(":")
    body = b'{"prompt": "a"}'
    head = (
        _half_body(T2V)
        .partition(b"\r\n\r\n")[0]
        .replace(b"Content-Length: 100", b"Content-Length: %d" % len(body))
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head + b"\r\n\r\n")
        for byte in body:
            time.sleep(0.1)
            sock.sendall(bytes([byte]))
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")


@pytest.mark.slow
def test_half_sent_bodies_lock_nobody_out(bounded_server: str) -> None:
    """As many half-sent requests as the server takes connections: past the deadline they are
    closed, and the next client is served."""
    host, _, port = bounded_server.partition(":")
    held = [socket.create_connection((host, int(port)), timeout=10) for _ in range(8)]
    try:
        for sock in held:
            sock.sendall(_half_body(T2V))
        time.sleep(0.1)  # let the server take them
        assert _raw(bounded_server, b"GET /v1/videos/text2video HTTP/1.1\r\nHost: m\r\n\r\n").startswith(
            b"HTTP/1.1 503 "
        )
        for sock in held:
            assert sock.recv(65536).startswith(b"HTTP/1.1 408 ")
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.1)
    assert _raw(bounded_server, b"GET /v1/videos/text2video HTTP/1.1\r\nHost: m\r\n\r\n").startswith(
        b"HTTP/1.1 401 "
    )


@pytest.fixture(params=["httptools", "h11"])
def narrow_server(request: pytest.FixtureRequest) -> Iterator[str]:
    """A bounded server whose sockets send as a slow link does: its send buffer pinned at 16 KB
    (on loopback the kernel grows it to megabytes and takes a whole answer at once)."""
    protocol = bounded(request.param, Bounds(request_timeout_seconds=0.5, max_connections=8))

    class Narrow(protocol):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: Any) -> None:
            transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
            super().connection_made(transport)

    with LiveServer(create_app(Backend()), http=Narrow) as server:
        yield f"127.0.0.1:{server.port}"


@pytest.mark.slow
def test_a_large_answer_read_slowly_and_steadily_comes_whole(narrow_server: str) -> None:
    """The OpenAPI document (about 290 KB) at 150 KB/s: about 2 s, four times the deadline for a
    request, and every byte of it (no bound may take a steady reader for one that stopped)."""
    host, _, port = narrow_server.partition(":")
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.connect((host, int(port)))
        sock.settimeout(10)
        sock.sendall(b"GET /openapi.yaml HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
        started, reply = time.monotonic(), b""
        while chunk := sock.recv(8192):
            reply += chunk
            time.sleep(max(0.0, started + len(reply) / 150_000 - time.monotonic()))
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert len(body) == int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]) > 250_000
    assert time.monotonic() - started > 1.0


@pytest.mark.slow
def test_connections_past_the_bound_get_a_503(bounded_server: str) -> None:
    host, _, port = bounded_server.partition(":")
    idle = [socket.create_connection((host, int(port))) for _ in range(8)]
    try:
        time.sleep(0.1)  # let the server take them
        refused = _raw(bounded_server, b"GET /v1/videos/text2video HTTP/1.1\r\nHost: m\r\n\r\n")
        assert refused.startswith(b"HTTP/1.1 503 ")
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.1)
    assert _raw(bounded_server, b"GET /v1/videos/text2video HTTP/1.1\r\nHost: m\r\n\r\n").startswith(
        b"HTTP/1.1 401 "
    )


# -- decoding off the event loop ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/images/omni-image", {"model_name": "kling-image-o1", "prompt": "x", "image_list": "IMAGES"}),
        ("/v1/videos/image2video", {"model_name": "kling-v1", "image": "IMAGE"}),
        ("/kling/v1/videos/image2video", {"model_name": "kling-v1", "image": "IMAGE"}),
        ("/image-to-video/kling-3.0", {"contents": "FRAME"}),
    ],
)
def test_a_small_body_that_decodes_to_a_large_picture_is_decoded_off_the_loop(
    monkeypatch: pytest.MonkeyPatch, path: str, body: dict[str, Any]
) -> None:
    """A 1-bit PNG of 4000 x 4000 pixels is 2.7 KB of Base64 and 16 ms of decoding: every
    picture in a create is decoded in a worker thread, not on the loop the other clients wait on."""
    import base64
    import io

    from PIL import Image

    png = io.BytesIO()
    Image.new("1", (4000, 4000)).save(png, "PNG", optimize=True)
    picture = base64.b64encode(png.getvalue()).decode()
    assert len(picture) < 3000
    values = {
        "IMAGES": [{"image": picture}] * 2,
        "IMAGE": picture,
        "FRAME": [{"type": "prompt", "text": "x"}, {"type": "first_frame", "url": picture}],
    }
    filled = {
        key: values.get(value, value) if isinstance(value, str) else value for key, value in body.items()
    }
    decoded_on: list[bool] = []
    opened = Image.open

    def spying_open(*args: Any, **kwargs: Any) -> Any:
        decoded_on.append(threading.current_thread() is threading.main_thread())
        return opened(*args, **kwargs)

    monkeypatch.setattr(Image, "open", spying_open)
    auth = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}

    async def create() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(Backend()))
        async with httpx.AsyncClient(transport=transport, base_url="http://mock") as client:
            return await client.post(path, json=filled, headers=auth)

    answer = asyncio.run(create())
    assert answer.status_code == 200, answer.text
    assert decoded_on and not any(decoded_on)  # decoded, and never on the loop's thread


@pytest.mark.slow
def test_serve_raises_its_open_files_limit_to_what_its_bounds_need() -> None:
    """Past its open-files limit a server stops accepting instead of answering 503: serve raises
    the soft limit to max_connections + the callbacks' pool + spare, when the hard one allows."""
    import resource

    from mockkling.callbacks import MAX_CONNECTIONS
    from mockkling.cli import SPARE_FILES

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 1000 + MAX_CONNECTIONS + SPARE_FILES
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"the hard limit here ({hard}) is below what serve needs ({needed})")
    server = ServeProcess()
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))  # inherited by the server
    try:
        server.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        limits = Path(f"/proc/{server.proc.pid}/limits").read_text()
        [line] = [line for line in limits.splitlines() if line.startswith("Max open files")]
        assert int(line.split()[3]) == needed
        assert "WARNING: open files" not in server.text()
    finally:
        server.__exit__(None, None, None)  # started above, under the lowered limit


def test_serve_says_when_the_hard_limit_is_too_low(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import resource

    from mockkling import cli

    monkeypatch.setattr(resource, "getrlimit", lambda kind: (256, 300))
    monkeypatch.setattr(resource, "setrlimit", lambda kind, limits: None)
    cli._enough_open_files(Config(max_connections=1000))
    warning = capsys.readouterr().err
    assert "open files are limited to 300; --max-connections 1000 needs" in warning
