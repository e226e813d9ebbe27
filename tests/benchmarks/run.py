"""mockkling's benchmark: every figure against a baseline measured in the same run, on loopback.

    python tests/benchmarks/run.py            # the full run (about two minutes)
    python tests/benchmarks/run.py --quick    # a short run that proves the benchmark works

HTTP throughput uses wrk when it is installed (`apt-get install wrk`), else a built-in
asyncio keep-alive load generator (slower: its figures are bounded by the client). The
benchmark asserts nothing: it prints a table of figures, ratios and targets.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson

from mockkling import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_SECRET_KEY,
    Backend,
    Config,
    KlingMock,
    Timing,
    create_app,
    make_jwt,
)
from mockkling.server import LiveServer
from mockkling.spec import default_spec
from mockkling.transport import SyncASGITransport

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: the one place the `mockkling serve` command is built
from serve_process import serve_command  # noqa: E402

T2V = "/v1/videos/text2video"
CREATE_BODY = b'{"model_name": "kling-v1", "prompt": "a kitten playing in a garden", "duration": "5"}'


# -- servers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, timeout: float = 20.0) -> float:
    """Seconds until ``port`` accepts a connection and answers HTTP."""
    start = time.perf_counter()
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /openapi.yaml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if sock.recv(12).startswith(b"HTTP/1.1"):
                    return time.perf_counter() - start
        except OSError:
            pass
        if time.perf_counter() - start > timeout:
            raise RuntimeError(f"nothing answered on port {port}")
        time.sleep(0.002)


# Child processes may cache bytecode, as Python does after any pip install, even where the
# environment says not to (PYTHONDONTWRITEBYTECODE): else every start would compile the package.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


# With two CPUs or more, servers run on one and the load generator on another, both for the
# mock and for its baseline: left to the scheduler, the two sometimes share a CPU, and a
# baseline measured so was seen to swing from 2,500 to 4,200 requests a second within a minute.
SERVER_CPUS, CLIENT_CPUS = ({_cpus()[-1]}, {_cpus()[0]}) if len(_cpus()) >= 2 else (set(), set())


@contextmanager
def on_cpus(cpus: set[int]) -> Iterator[None]:
    """Run this process (and what it starts meanwhile) on ``cpus``; a no-op when empty."""
    if not cpus:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@contextmanager
def child(
    args: list[str], port: int, timeout: float = 20.0
) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    """The server ``args``, started on the servers' CPU, and the seconds until it listened on
    ``port``; stopped on the way out."""
    with on_cpus(SERVER_CPUS):
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=CHILD_ENV)
    try:
        yield proc, wait_listening(port, timeout)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def process(args: list[str], port: int) -> Iterator[float]:
    with child(args, port) as (_proc, seconds):
        yield seconds


# The HTTP stacks measured: (parser, event loop). `mockkling serve` runs the fast one by default.
STACKS = {"httptools+uvloop": ("httptools", "uvloop"), "h11+asyncio": ("h11", "asyncio")}


def mock_server(port: int, stack: tuple[str, str] = STACKS["httptools+uvloop"]) -> list[str]:
    http, loop = stack
    return serve_command(
        "--queue-seconds",
        "1",
        "--run-seconds",
        "2",
        "--seed",
        "1",
        "--http",
        http,
        "--loop",
        loop,
        port=port,
        log_level="warning",
    )


def baseline_server(
    port: int, body_bytes: int, stack: tuple[str, str] = STACKS["httptools+uvloop"]
) -> list[str]:
    return [sys.executable, str(HERE / "baseline_app.py"), str(port), str(body_bytes), *stack]


# -- load generation ---------------------------------------------------------------------------


def wrk(url: str, seconds: float, headers: dict[str, str], body: bytes | None = None) -> float:
    """Requests per second, from wrk with one thread and 32 connections."""
    with tempfile.TemporaryDirectory() as tmp:
        args = ["wrk", "-t1", "-c32", f"-d{max(1, round(seconds))}s"]
        for name, value in headers.items():
            args += ["-H", f"{name}: {value}"]
        if body is not None:
            script = Path(tmp) / "post.lua"
            script.write_text(f'wrk.method = "POST"\nwrk.body = [[{body.decode()}]]\n')
            args += ["-s", str(script)]
        with on_cpus(CLIENT_CPUS):
            out = subprocess.run([*args, url], capture_output=True, text=True, timeout=seconds + 30).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        raise RuntimeError(f"wrk printed no rate:\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"{non2xx.group(1)} error answers during the load: {url}")
    return float(match.group(1))


async def _one_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> None:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 2"):
        raise RuntimeError(f"error answer: {head[:60]!r}")
    length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
    await reader.readexactly(length)


def _raw(method: str, path: str, headers: dict[str, str], body: bytes | None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def python_load(
    port: int, path: str, seconds: float, headers: dict[str, str], body: bytes | None = None
) -> float:
    """Requests per second from 16 keep-alive asyncio connections (closed loop)."""
    raw = _raw("POST" if body is not None else "GET", path, headers, body)

    async def worker(deadline: float, counts: list[int]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            await _one_request(reader, writer, raw)
            counts[0] += 1
        writer.close()

    async def main() -> float:
        counts = [0]
        start = time.perf_counter()
        await asyncio.gather(*(worker(start + seconds, counts) for _ in range(16)))
        return counts[0] / (time.perf_counter() - start)

    with on_cpus(CLIENT_CPUS):
        return asyncio.run(main())


def open_loop_p99(port: int, path: str, rate: float, seconds: float, headers: dict[str, str]) -> float:
    """p99 latency in ms of requests sent at a fixed rate over a pool of keep-alive connections."""
    raw = _raw("GET", path, headers, None)

    async def main() -> float:
        pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        for _ in range(8):
            pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
        latencies: list[float] = []

        async def fire(scheduled: float) -> None:
            conn = await pool.get()
            await _one_request(*conn, raw)
            latencies.append(time.perf_counter() - scheduled)
            pool.put_nowait(conn)

        start = time.perf_counter()
        tasks = []
        for i in range(int(rate * seconds)):
            scheduled = start + i / rate
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            tasks.append(asyncio.create_task(fire(scheduled)))
        await asyncio.gather(*tasks)
        while not pool.empty():
            pool.get_nowait()[1].close()
        return statistics.quantiles(latencies, n=100)[98] * 1000

    with on_cpus(CLIENT_CPUS):
        return asyncio.run(main())


# -- figures -------------------------------------------------------------------------------------

Row = tuple[str, str, str, str, str]


def interleaved(measures: Mapping[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Each measure ``rounds`` times, taking turns (the order reversed every other round), so a
    machine that speeds up or slows down meanwhile weighs on every side alike."""
    results: dict[str, list[float]] = {name: [] for name in measures}
    names = list(measures)
    for i in range(rounds):
        for name in names if i % 2 == 0 else names[::-1]:
            results[name].append(measures[name]())
    return results


def paired_ratio(mine: list[float], theirs: list[float]) -> float:
    """The median of the round-by-round ratios: each pair ran back to back."""
    return statistics.median(a / b for a, b in zip(mine, theirs, strict=True))


def spread(mine: list[float], theirs: list[float]) -> str:
    """The range of the round-by-round ratios, to show how far one round can be trusted."""
    ratios = [a / b for a, b in zip(mine, theirs, strict=True)]
    return f"rounds {min(ratios):.2f}-{max(ratios):.2f}" if len(ratios) > 1 else "1 round"


# Targets per stack: (query ratio >=, create ratio >=, p99 ratio <=). The fast stack's are the
# ones users get; h11's large fixed cost per request hides the mock's own cost, hence looser ones.
TARGETS = {"httptools+uvloop": (0.85, 0.8, 1.5), "h11+asyncio": (0.8, 0.6, 2.0)}


def http_figures(
    seconds: float, rounds: int, rate: float, p99_seconds: float, p99_rounds: int, stack_name: str
) -> list[Row]:
    """Throughput in ``rounds`` windows of ``seconds``, mock and baseline taking turns (short
    windows: each pair of measures sees the machine as alike as it can); p99 latency in longer
    windows, for enough samples to read a 99th percentile from. Mock and baselines run on the
    same HTTP stack."""
    stack = STACKS[stack_name]
    query_target, create_target, p99_target = TARGETS[stack_name]
    token = make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, ttl_seconds=3600)
    headers = {"Authorization": f"Bearer {token}"}
    use_wrk = shutil.which("wrk") is not None
    mock_port, query_port, create_port = free_port(), free_port(), free_port()

    def measure(port: int, path: str, body: bytes | None = None) -> Callable[[], float]:
        if use_wrk:
            return lambda: wrk(f"http://127.0.0.1:{port}{path}", seconds, headers, body)
        return lambda: python_load(port, path, seconds, headers, body)

    with process(mock_server(mock_port, stack), mock_port):
        url = f"http://127.0.0.1:{mock_port}"
        created = httpx.post(
            f"{url}{T2V}", content=CREATE_BODY, headers=headers | {"Content-Type": "application/json"}
        )
        task_id = created.json()["data"]["task_id"]
        time.sleep(3.1)  # let the task finish on the server's real clock: the query returns a full result
        query_path = f"{T2V}/{task_id}"
        body_bytes = len(httpx.get(f"{url}{query_path}", headers=headers).content)
        # Each baseline answers a body the size of the mock's answer to the same request.
        with (
            process(baseline_server(query_port, body_bytes, stack), query_port),
            process(baseline_server(create_port, len(created.content), stack), create_port),
        ):
            query = interleaved(
                {"mock": measure(mock_port, query_path), "base": measure(query_port, query_path)}, rounds
            )
            p99 = interleaved(
                {
                    "mock": lambda: open_loop_p99(mock_port, query_path, rate, p99_seconds, headers),
                    "base": lambda: open_loop_p99(query_port, query_path, rate, p99_seconds, headers),
                },
                p99_rounds,
            )
            create = interleaved(
                {
                    "mock": measure(mock_port, T2V, CREATE_BODY),
                    "base": measure(create_port, T2V, CREATE_BODY),
                },
                rounds,
            )
    tool = "wrk -t1 -c32" if use_wrk else "python load (16 conns)"
    med = statistics.median
    query_ratio = paired_ratio(query["mock"], query["base"])
    create_ratio = paired_ratio(create["mock"], create["base"])
    p99_ratio = paired_ratio(p99["mock"], p99["base"])
    return [
        (
            f"query throughput ({stack_name})",
            f"{med(query['mock']):,.0f} req/s vs {med(query['base']):,.0f} ({tool};"
            f" {spread(query['mock'], query['base'])})",
            f"{query_ratio:.2f}",
            f">= {query_target}",
            ok(query_ratio >= query_target),
        ),
        (
            f"create throughput ({stack_name})",
            f"{med(create['mock']):,.0f} req/s vs {med(create['base']):,.0f} parsing the body"
            f" ({spread(create['mock'], create['base'])})",
            f"{create_ratio:.2f}",
            f">= {create_target}",
            ok(create_ratio >= create_target),
        ),
        (
            f"query p99 at {rate:g} req/s ({stack_name})",
            f"{med(p99['mock']):.2f} ms vs {med(p99['base']):.2f} ms",
            f"{p99_ratio:.2f}",
            f"<= {p99_target}",
            ok(p99_ratio <= p99_target),
        ),
    ]


def _lifecycles_per_second(lifecycle: Callable[[], None], seconds: float) -> float:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        lifecycle()
        count += 1
    return count / (time.perf_counter() - start)


def _async_lifecycles_per_second(
    transport: Callable[[], httpx.AsyncBaseTransport],
    headers: dict[str, str],
    advance: Callable[[float], Any],
    seconds: float,
) -> float:
    """:func:`_lifecycles_per_second` for an ``httpx.AsyncClient`` on a new ``transport()``."""

    async def main() -> float:
        async with httpx.AsyncClient(
            transport=transport(), base_url="http://mock", headers=headers
        ) as client:
            count, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                task_id = (await client.post(T2V, content=CREATE_BODY)).json()["data"]["task_id"]
                advance(5)
                status = (await client.get(f"{T2V}/{task_id}")).json()["data"]["task_status"]
                assert status == "succeed", status
                count += 1
            return count / (time.perf_counter() - start)

    return asyncio.run(main())


class _ASGICaller:
    """Requests straight into an ASGI app, as an async test or an ASGI-speaking client makes
    them: no socket and no HTTP client library."""

    def __init__(self, app: Any, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        self.loop = asyncio.new_event_loop()

    async def _call(self, method: str, path: str, body: bytes) -> Any:
        headers = self.headers
        if body:
            length = str(len(body)).encode()
            headers = [*headers, (b"content-type", b"application/json"), (b"content-length", length)]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"mockkling.test"), *headers],
            "client": ("127.0.0.1", 50000),
            "server": ("mockkling.test", 80),
            "extensions": {},
        }
        sent: list[Any] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Any) -> None:
            sent.append(message)

        await self.app(scope, receive, send)
        assert sent[0]["status"] == 200, sent
        return orjson.loads(b"".join(m.get("body", b"") for m in sent[1:]))

    def __call__(self, method: str, path: str, body: bytes = b"") -> Any:
        return self.loop.run_until_complete(self._call(method, path, body))

    def close(self) -> None:
        self.loop.close()


def in_process_lifecycles(seconds: float, rounds: int) -> list[Row]:
    """Create, advance the clock, query until ``succeed``, in process: straight into the
    ``kling_mock`` fixture's ASGI app (the mock's own cost), through the fixture's
    ``httpx.Client``, and through the same client answered by canned bodies: httpx's own floor
    on this machine, which bounds every httpx-based figure; and the same through an
    ``httpx.AsyncClient`` on the fixture's async transport, on httpx's own ``ASGITransport``
    and on canned bodies."""
    mock = KlingMock.in_process(queue_seconds=1, run_seconds=4, seed=1)
    client = mock.client
    call = _ASGICaller(mock.app, mock.auth_headers())

    def through_app() -> None:
        task_id = call("POST", T2V, CREATE_BODY)["data"]["task_id"]
        mock.advance(5)
        status = call("GET", f"{T2V}/{task_id}")["data"]["task_status"]
        assert status == "succeed", status

    def through_client() -> None:
        task_id = client.post(T2V, content=CREATE_BODY).json()["data"]["task_id"]
        mock.advance(5)
        status = client.get(f"{T2V}/{task_id}").json()["data"]["task_status"]
        assert status == "succeed", status

    # The floor: the same client and calls, each answered at once with the mock's own answer.
    created = client.post(T2V, content=CREATE_BODY)
    mock.advance(5)
    answered = client.get(f"{T2V}/{created.json()['data']['task_id']}")
    canned = {"POST": created.content, "GET": answered.content}
    floor_client = httpx.Client(
        transport=httpx.MockTransport(lambda request: httpx.Response(200, content=canned[request.method])),
        base_url=mock.base_url,
        headers=mock.auth_headers(),
    )

    def through_floor() -> None:
        task_id = floor_client.post(T2V, content=CREATE_BODY).json()["data"]["task_id"]
        status = floor_client.get(f"{T2V}/{task_id}").json()["data"]["task_status"]
        assert status == "succeed", status

    lifecycles = {"app": through_app, "client": through_client, "floor": through_floor}

    # The same through an httpx.AsyncClient: the fixture's async transport, httpx's own
    # ASGITransport on the same app, and the floor (the canned answers, from a coroutine).
    async def canned_async(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=canned[request.method])

    async_transports: dict[str, Callable[[], httpx.AsyncBaseTransport]] = {
        "async client": lambda: mock.async_transport,
        "httpx ASGITransport": lambda: httpx.ASGITransport(app=mock.app),
        "async floor": lambda: httpx.MockTransport(canned_async),
    }
    share = seconds / rounds / (len(lifecycles) + len(async_transports))
    measures = {name: functools.partial(_lifecycles_per_second, f, share) for name, f in lifecycles.items()}
    headers = mock.auth_headers()
    for name, make in async_transports.items():
        measures[name] = functools.partial(_async_lifecycles_per_second, make, headers, mock.advance, share)
    rates = interleaved(measures, rounds)
    floor_client.close()
    call.close()
    mock.close()
    med = statistics.median
    app_rate = med(rates["app"])
    client_ratio = paired_ratio(rates["client"], rates["floor"])
    return [
        (
            "in-process lifecycles: fixture app (ASGI)",
            f"{app_rate:,.0f} lifecycles/s (create, advance, query)",
            "-",
            ">= 2,000/s",
            ok(app_rate >= 2000),
        ),
        (
            "in-process lifecycles: fixture httpx.Client",
            f"{med(rates['client']):,.0f}/s vs {med(rates['floor']):,.0f}/s, httpx with canned answers",
            f"{client_ratio:.2f}",
            ">= 0.7",
            ok(client_ratio >= 0.7),
        ),
        (
            "in-process lifecycles: fixture httpx.AsyncClient",
            f"{med(rates['async client']):,.0f}/s vs {med(rates['async floor']):,.0f}/s, httpx with canned"
            f" answers (httpx's ASGITransport on the mock: {med(rates['httpx ASGITransport']):,.0f}/s)",
            f"{paired_ratio(rates['async client'], rates['async floor']):.2f}",
            "-",
            "info",
        ),
    ]


def rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def memory_per_task(count: int) -> Row:
    backend = Backend(Config(seed=1))
    backend.use_manual_clock()
    body = {"model_name": "kling-v1", "prompt": "a kitten playing in a garden", "duration": "5"}
    for _ in range(100):  # warm every code path first, so only the tasks are counted
        backend.create_task("warm-up", "text2video", body)
    gc.collect()
    before = rss_bytes()
    for i in range(count):
        backend.create_task(DEFAULT_ACCESS_KEY, "text2video", {**body, "external_task_id": f"order-{i}"})
    gc.collect()
    per_task = (rss_bytes() - before) / count
    return (
        "memory per stored task",
        f"{per_task:,.0f} B/task at {count:,} tasks (RSS, with external ids)",
        "-",
        "<= 1,024 B",
        ok(per_task <= 1024),
    )


def scaling(small: int, large: int, repeats: int, rounds: int) -> list[Row]:
    """Query and list-page latency with ``large`` stored tasks vs ``small``: two backends side by
    side, timed in alternating batches; each figure is its least-disturbed batch."""
    headers = {"Authorization": f"Bearer {make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)}"}
    measures: dict[str, Callable[[], float]] = {}
    clients = []
    for size in (small, large):
        backend = Backend(Config(seed=1, timing=Timing(0, 0)))
        backend.use_manual_clock()
        for _ in range(size):
            task = backend.create_task(DEFAULT_ACCESS_KEY, "text2video", {"prompt": "x"})
        client = httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock")
        clients.append(client)

        def batch(client: httpx.Client, path: str) -> float:
            start = time.perf_counter()
            for _ in range(repeats):
                client.get(path, headers=headers).raise_for_status()
            return (time.perf_counter() - start) / repeats

        measures[f"query {size}"] = functools.partial(batch, client, f"{T2V}/{task.task_id}")
        measures[f"list {size}"] = functools.partial(batch, client, f"{T2V}?pageNum=2&pageSize=30")
    best = {name: min(times) for name, times in interleaved(measures, rounds).items()}
    for client in clients:
        client.close()
    rows = []
    for kind, name in (("query", "query latency"), ("list", "list-page latency")):
        a, b = best[f"{kind} {small}"], best[f"{kind} {large}"]
        rows.append(
            (
                f"{name} at {large:,} vs {small:,} tasks",
                f"{b * 1e6:.0f} us vs {a * 1e6:.0f} us",
                f"{b / a:.2f}",
                "<= 1.10",
                ok(b / a <= 1.10),
            )
        )
    return rows


def startup(repeats: int) -> list[Row]:
    """Time to a first answer: the live-server fixture's server in this process, and
    ``mockkling serve`` as a new process; each against bare Starlette started the same way."""
    from baseline_app import make_app

    def live(app_factory: Callable[[], Any]) -> float:
        start = time.perf_counter()
        server = LiveServer(app_factory()).start()
        try:
            port = int(server.url.rpartition(":")[2])
            wait_listening(port)  # a first answer, over a raw socket: no client library's set-up
            return time.perf_counter() - start
        finally:
            server.stop()

    def serve(args: Callable[[int], list[str]]) -> float:
        port = free_port()
        with process(args(port), port) as seconds:
            return seconds

    def fresh_mock() -> Any:
        default_spec.cache_clear()  # as in a new test session: openapi.yaml loaded and compiled
        return create_app(Backend())

    serve(mock_server)  # warm-ups, untimed: bytecode cached as on an installed package
    serve(lambda port: baseline_server(port, 400))
    times = interleaved(
        {
            "live": lambda: live(fresh_mock),
            "live base": lambda: live(lambda: make_app(400)),
            "serve": lambda: serve(mock_server),
            "serve base": lambda: serve(lambda port: baseline_server(port, 400)),
        },
        repeats,
    )
    med = {name: statistics.median(values) for name, values in times.items()}
    return [
        (
            "start-up: live server fixture",
            f"{med['live'] * 1000:.0f} ms vs {med['live base'] * 1000:.0f} ms to first answer"
            f" (median of {repeats}, openapi.yaml loaded each time)",
            f"{med['live'] / med['live base']:.2f}",
            "<= 300 ms",
            ok(med["live"] <= 0.3),
        ),
        (
            "start-up: mockkling serve",
            f"{med['serve'] * 1000:.0f} ms vs {med['serve base'] * 1000:.0f} ms to accepting"
            f" (median of {repeats})",
            f"{med['serve'] / med['serve base']:.2f}",
            "<= 1,000 ms",
            ok(med["serve"] <= 1.0),
        ),
    ]


# -- machine instructions per request (callgrind) -------------------------------------------


def _keep_alive_requests(raw: bytes, count: int, sockets: list[socket.socket], first: int = 0) -> None:
    """Send ``raw`` ``count`` times, one at a time, over the keep-alive ``sockets`` in turn
    (from the ``first``-th), reading each whole answer (2xx only) before the next."""
    for i in range(first, first + count):
        sock = sockets[i % len(sockets)]
        sock.sendall(raw)
        data = _recv(sock, b"")
        while b"\r\n\r\n" not in data:
            data = _recv(sock, data)
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 2"):
            raise RuntimeError(f"error answer while counting instructions: {head[:80]!r}")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
        while len(body) < length:
            body = _recv(sock, body)


def _recv(sock: socket.socket, data: bytes) -> bytes:
    more = sock.recv(65536)
    if not more:
        raise RuntimeError("the server closed a connection while instructions were counted")
    return data + more


def _callgrind(command: str, pid: int, sockets: list[socket.socket], poke: bytes) -> None:
    """Run ``callgrind_control COMMAND`` on the server ``pid``, sending it requests on every
    connection in turn until it has done it: valgrind reads its commands only while the program
    runs, and uvicorn closes a connection left idle for 5 s."""
    control = subprocess.Popen(
        ["callgrind_control", command, str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline, pokes = time.monotonic() + 120, 0
    while control.poll() is None:
        if time.monotonic() > deadline:
            control.kill()
            raise RuntimeError(f"callgrind_control {command} got no answer")
        _keep_alive_requests(poke, 1, sockets, first=pokes)
        pokes += 1
        time.sleep(0.01)
    if control.returncode != 0:
        raise RuntimeError(f"callgrind_control {command} failed ({control.returncode})")


def instructions_per_request(
    args: list[str], port: int, body: bytes | None, headers: dict[str, str], count: int, *, mock: bool
) -> tuple[float, int]:
    """Machine instructions (user space) the server ``args`` on ``port`` runs per request, and
    the size of its answer: ``count`` requests, one at a time over 4 keep-alive connections,
    counted by callgrind between a warm-up and a dump. Unlike a rate, the count comes out the
    same from run to run on a busy machine."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *args]
        with child(valgrind, port, timeout=600) as (proc, _seconds):
            path = T2V if body is not None else f"{T2V}/any"  # the baseline answers any path
            if body is None and mock:  # a query: of a finished task, as in the http figures
                created = httpx.post(
                    f"http://127.0.0.1:{port}{T2V}",
                    content=CREATE_BODY,
                    headers={**headers, "Content-Type": "application/json"},
                    timeout=60,
                )
                path = f"{T2V}/{created.json()['data']['task_id']}"
                time.sleep(3.1)
            answer = httpx.request(
                "GET" if body is None else "POST",
                f"http://127.0.0.1:{port}{path}",
                content=body,
                headers={**headers, "Content-Type": "application/json"} if body else headers,
                timeout=60,
            )
            raw = _raw("GET" if body is None else "POST", path, headers, body)
            sockets = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(4)]
            try:
                _keep_alive_requests(raw, 300, sockets)  # warm-up: caches, lazy imports
                _callgrind("--zero", proc.pid, sockets, raw)
                _keep_alive_requests(raw, count, sockets)
                _callgrind("--dump", proc.pid, sockets, raw)
            finally:
                for sock in sockets:
                    sock.close()
        text = Path(f"{out}.1").read_text()
        summary = next(line for line in text.splitlines() if line.startswith("summary:"))
        # The requests that make valgrind read its commands are counted too: a zero and a dump
        # with nothing sent between them counted about two requests' worth.
        return int(summary.split()[1]) / (count + 2), len(answer.content)


def instruction_figures(count: int) -> list[Row]:
    """Instructions per query and per create, the mock against the http group's baseline
    answering a body of the same size, both on the fast stack."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        return [("instructions per request", "valgrind is not installed", "-", "-", "skipped")]
    token = make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, ttl_seconds=3600)
    headers = {"Authorization": f"Bearer {token}"}
    rows: list[Row] = []
    for name, body in (("query", None), ("create", CREATE_BODY)):
        port = free_port()
        mock, size = instructions_per_request(mock_server(port), port, body, headers, count, mock=True)
        port = free_port()
        base, _ = instructions_per_request(
            baseline_server(port, size), port, body, headers, count, mock=False
        )
        rows.append(
            (
                f"instructions per {name} (httptools+uvloop)",
                f"{mock / 1000:,.1f}k vs {base / 1000:,.1f}k, bare Starlette (callgrind, {count:,} requests)",
                f"{base / mock:.2f}",
                "-",
                "info",
            )
        )
    return rows


GROUPS = ("http", "in-process", "memory", "scaling", "start-up")
# Run only when asked (--only instructions): it needs valgrind, and takes minutes.
ON_REQUEST = ("instructions",)


def ok(passed: bool) -> str:
    return "met" if passed else "MISSED"


def table(rows: list[Row]) -> str:
    head: Row = ("figure", "measured", "ratio", "target", "")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]
    line = "| " + " | ".join("-" * w for w in widths) + " |"

    def fmt(row: Row) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    return "\n".join([fmt(head), line, *(fmt(r) for r in rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short run: proves the benchmark works")
    parser.add_argument(
        "--only",
        default=",".join(GROUPS),
        help=f"comma-separated figure groups to run (default: all of {','.join(GROUPS)};"
        f" on request: {','.join(ON_REQUEST)})",
    )
    args = parser.parse_args(argv)
    wanted = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(GROUPS) - set(ON_REQUEST))
    if unknown:
        parser.error(f"unknown group(s) {unknown}; known: {', '.join(GROUPS + ON_REQUEST)}")
    q = args.quick
    rows: list[Row] = []
    if "http" in wanted:
        for stack_name in STACKS:
            rows += http_figures(
                seconds=1,
                rounds=1 if q else 15,
                rate=100 if q else 300,
                p99_seconds=1 if q else 2,
                p99_rounds=1 if q else 5,
                stack_name=stack_name,
            )
    if "in-process" in wanted:
        rows += in_process_lifecycles(seconds=0.6 if q else 15, rounds=1 if q else 5)
    if "memory" in wanted:
        rows.append(memory_per_task(5_000 if q else 100_000))
    if "scaling" in wanted:
        sizes = (100, 2_000) if q else (1_000, 100_000)
        rows += scaling(*sizes, repeats=50 if q else 200, rounds=2 if q else 9)
    if "start-up" in wanted:
        rows += startup(1 if q else 5)
    if "instructions" in wanted:
        rows += instruction_figures(200 if q else 2000)
    mode = "quick" if q else "full"
    print(f"mockkling benchmark ({mode} run, {os.cpu_count()} cores, Python {sys.version.split()[0]})")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
