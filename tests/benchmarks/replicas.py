"""Replicas on Redis (``--state redis://...``): what sharing the state costs, and what more
processes buy, against the in-memory store measured in the same run.

    python tests/benchmarks/replicas.py            # the figures in docs/team-server.md
    python tests/benchmarks/replicas.py --quick    # a short run that proves it works

Every server is a ``mockkling serve`` child process on loopback; Redis is Debian's
``redis-server``. The load is wrk (``apt-get install wrk``), one wrk per replica, so the
replicas share the load as they would behind a round-robin balancer; the figure is the sum.
Servers (the mock processes and Redis) run on one CPU and wrk on the other, as in run.py: on a
machine of two cores that keeps the figures steady, and it is also why this benchmark cannot
show replicas scaling: it shows what each request costs on a shared state. It asserts nothing.

Rows: the in-memory store (one process, the baseline), then 1, 2 and 3 replicas on one Redis
(``appendfsync everysec``, Redis's default), and 1 replica with ``appendfsync always`` (every
write on disk before Redis answers: the setting the tests use). For each: creates and queries
per second, their ratio to the in-memory store, and the CPU time the servers (mock processes
and Redis together) spent per request.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # run.py's CPU pinning; the tests' processes

from durable_state import cpu_seconds  # noqa: E402
from redis_server import RedisServer  # noqa: E402
from run import CLIENT_CPUS, SERVER_CPUS, on_cpus  # noqa: E402
from serve_process import ServeProcess  # noqa: E402

from mockkling import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, make_jwt  # noqa: E402

T2V = "/v1/videos/text2video"
BODY = b'{"prompt": "a kitten playing in a garden"}'
HEADERS = {"Authorization": f"Bearer {make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, ttl_seconds=3600)}"}
CONNECTIONS = 32  # in all, shared out between the replicas
FLAGS = ("--queue-seconds", "0", "--run-seconds", "0", "--seed", "1")


def wrk_all(urls: list[str], seconds: int, body: bytes | None) -> float:
    """Requests per second, summed over one wrk per URL run at once."""
    each = max(1, CONNECTIONS // len(urls))
    with tempfile.TemporaryDirectory() as tmp:
        args = ["wrk", "-t1", f"-c{each}", f"-d{seconds}s"]
        for name, value in HEADERS.items():
            args += ["-H", f"{name}: {value}"]
        if body is not None:
            script = Path(tmp) / "post.lua"
            script.write_text(
                f'wrk.method = "POST"\nwrk.body = [[{body.decode()}]]\n'
                'wrk.headers["Content-Type"] = "application/json"\n'
            )
            args += ["-s", str(script)]
        with on_cpus(CLIENT_CPUS):
            procs = [
                subprocess.Popen([*args, url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                for url in urls
            ]
        outputs = [proc.communicate(timeout=seconds + 60)[0] for proc in procs]
    total = 0.0
    for out in outputs:
        rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if rate is None:
            raise RuntimeError(f"wrk printed no rate:\n{out}")
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if errors:
            raise RuntimeError(f"{errors.group(1)} error answers during the load:\n{out}")
        total += float(rate.group(1))
    return total


@contextmanager
def servers(replicas: int, fsync: str | None, folder: Path) -> Iterator[tuple[list[str], list[int]]]:
    """``replicas`` mock processes (on Redis when ``fsync`` is given, else one in memory): their
    URLs, and the pids whose CPU time counts (the mocks, and Redis)."""
    with ExitStack() as stack, on_cpus(SERVER_CPUS):
        flags: list[str] = list(FLAGS)
        pids: list[int] = []
        if fsync is not None:
            redis_server = stack.enter_context(RedisServer(folder / f"redis-{fsync}-{replicas}"))
            assert redis_server.proc is not None
            set_fsync(redis_server, fsync)
            pids.append(redis_server.proc.pid)
            flags += ["--state", redis_server.url]
        mocks = [stack.enter_context(ServeProcess(*flags)) for _ in range(replicas)]
        pids += [mock.proc.pid for mock in mocks]
        yield [mock.url for mock in mocks], pids


def set_fsync(server: RedisServer, fsync: str) -> None:
    """Set ``appendfsync`` on a running server."""
    import redis

    client = redis.Redis.from_url(server.url)
    client.config_set("appendfsync", fsync)
    client.close()


def measure(replicas: int, fsync: str | None, seconds: int, folder: Path) -> dict[str, tuple[float, float]]:
    """Creates and queries per second, and server CPU microseconds per request."""
    out: dict[str, tuple[float, float]] = {}
    with servers(replicas, fsync, folder) as (urls, pids):
        created = httpx.post(
            urls[0] + T2V, content=BODY, headers={**HEADERS, "Content-Type": "application/json"}
        )
        task_id = created.json()["data"]["task_id"]
        time.sleep(0.05)  # 0 s timings: it has finished; a query answers its full result
        for kind, path, body in (("create", T2V, BODY), ("query", f"{T2V}/{task_id}", None)):
            before = sum(cpu_seconds(pid) for pid in pids)
            start = time.perf_counter()
            rate = wrk_all([url + path for url in urls], seconds, body)
            elapsed = time.perf_counter() - start
            cpu = sum(cpu_seconds(pid) for pid in pids) - before
            out[kind] = (rate, cpu / max(1.0, rate * elapsed) * 1e6)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="1-second windows, one round")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("this benchmark needs wrk (apt-get install wrk)")
    seconds, rounds = (1, 1) if args.quick else (5, 3)
    runs = [
        ("in memory, 1 process (baseline)", 1, None),
        ("Redis, 1 replica", 1, "everysec"),
        ("Redis, 2 replicas", 2, "everysec"),
        ("Redis, 3 replicas", 3, "everysec"),
        ("Redis, 1 replica, appendfsync always", 1, "always"),
    ]
    samples: dict[str, list[dict[str, tuple[float, float]]]] = {name: [] for name, _, _ in runs}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):  # interleaved: a machine that slows down weighs on every row alike
            for name, replicas, fsync in runs:
                samples[name].append(measure(replicas, fsync, seconds, Path(tmp)))
    med = statistics.median

    def figure(name: str, kind: str) -> tuple[float, float]:
        got = samples[name]
        return med(g[kind][0] for g in got), med(g[kind][1] for g in got)

    base = runs[0][0]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"\nReplicas on Redis ({'quick' if args.quick else 'full'} run, {cpus} cores; wrk, {CONNECTIONS}"
        f" connections shared out, {seconds} s windows, median of {rounds} interleaved rounds)\n"
    )
    header = ["server", "creates/s", "vs memory", "CPU/create", "queries/s", "vs memory", "CPU/query"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for name, _replicas, _fsync in runs:
        cells = [name]
        for kind in ("create", "query"):
            rate, cpu = figure(name, kind)
            base_rate = figure(base, kind)[0]
            cells += [f"{rate:,.0f}", f"{rate / base_rate:.2f}", f"{cpu:,.0f} µs"]
        print("| " + " | ".join(cells) + " |")
    print("\nEach round's creates/s and queries/s (the spread behind the medians):\n")
    for name, _replicas, _fsync in runs:
        each = {kind: ", ".join(f"{g[kind][0]:,.0f}" for g in samples[name]) for kind in ("create", "query")}
        print(f"- {name}: creates {each['create']}; queries {each['query']}")
    print(
        "\nServers (mock processes and Redis) share one CPU, wrk has the other: more replicas add"
        " no CPU here, so their rows show what a shared state costs per request, not how far"
        " replicas scale; that needs a core (or a host) per replica and one for Redis."
    )


if __name__ == "__main__":
    main()
