"""Durable state (``--state FILE``): what it costs, and what survives a SIGKILL.

    python tests/benchmarks/durable_state.py            # the figures in the README
    python tests/benchmarks/durable_state.py --quick    # a smaller run that proves it works

Everything runs on loopback against ``mockkling serve`` child processes, in one run, so the
in-memory default is the baseline of every SQLite figure. The load is bounded (a fixed number
of requests, a fixed number in flight) and stops by itself. It asserts no timing: it prints.

1. The stores alone, in process: adds and reads per second.
2. Creates over HTTP: in memory, ``--state``, and ``--state --workers 2``; the throughput and
   the server's CPU time per create. The load comes from wrk (``apt-get install wrk``) when it
   is installed, as in run.py beside this file, else from httpx, whose own cost on two cores
   then bounds the throughput (the server's CPU time per create stays its own).
3. Crash rounds: a load of creates, SIGKILL once a random number are acknowledged, restart on
   the same file, again; then every acknowledged task must be there.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # run.py's wrk; the tests' subprocess server and load

from run import wrk  # noqa: E402
from serve_process import ServeProcess, lanes  # noqa: E402

from mockkling import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, make_jwt  # noqa: E402
from mockkling.storage import SQLiteTaskStore  # noqa: E402
from mockkling.tasks import Task, TaskStorage, TaskStore  # noqa: E402

T2V = "/v1/videos/text2video"
AUTH = {"Authorization": f"Bearer {make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, ttl_seconds=3600)}"}
IN_FLIGHT = 32
USE_WRK = shutil.which("wrk") is not None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


# -- 1. the stores alone --------------------------------------------------------------------------


def store_rates(make: Callable[[int], TaskStorage], count: int, repeats: int) -> tuple[float, float]:
    """Adds and reads by id per second, the best of ``repeats`` runs on a fresh store each."""
    runs = [_store_rates(make(n), count) for n in range(repeats)]
    return max(a for a, _ in runs), max(r for _, r in runs)


def _store_rates(store: TaskStorage, count: int) -> tuple[float, float]:
    tasks = [
        Task(
            task_id=f"t{i}",
            account=f"a{i % 10}",
            action="text2video",
            model="kling-v1",
            mode="std",
            duration="5",
            created_ms=i,
            processing_ms=i + 1000,
            done_ms=i + 5000,
            external_task_id=f"e{i}",
        )
        for i in range(count)
    ]
    start = time.perf_counter()
    for task in tasks:
        store.add(task)
    adds = count / (time.perf_counter() - start)
    start = time.perf_counter()
    for task in tasks:
        store.get(task.task_id)
    reads = count / (time.perf_counter() - start)
    store.close()
    return adds, reads


# -- 2. creates over HTTP -------------------------------------------------------------------------


async def post(n: int, http: httpx.AsyncClient) -> int:
    response = await http.post(T2V, json={"prompt": f"bench {n}"}, headers=AUTH)
    return response.status_code


def http_creates(flags: list[str], workers: int, count: int, seconds: float) -> tuple[float, float]:
    """Creates per second, and the server's CPU microseconds per create: ``seconds`` of wrk
    when it is installed, else ``count`` creates from httpx."""
    with ServeProcess(*flags, workers=workers) as server:
        pids = [server.proc.pid, *(server.worker_pids if workers > 1 else [])]
        warm_up = min(200, count)
        asyncio.run(lanes(server.url, [partial(post, n) for n in range(warm_up)], IN_FLIGHT))
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        start = time.perf_counter()
        if USE_WRK:
            headers = {**AUTH, "Content-Type": "application/json"}
            rate = wrk(server.url + T2V, seconds, headers, b'{"prompt": "a kitten in a garden"}')
            count = round(rate * (time.perf_counter() - start))
        else:
            statuses = asyncio.run(lanes(server.url, [partial(post, n) for n in range(count)], IN_FLIGHT))
            assert statuses == [200] * count, "a create failed"
            rate = count / (time.perf_counter() - start)
        cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
    return rate, cpu / count * 1e6


# -- 3. crash rounds --------------------------------------------------------------------------------


class CrashRound:
    def __init__(self, server: ServeProcess, kill_at: int) -> None:
        self.server, self.kill_at = server, kill_at
        self.acknowledged: list[str] = []
        self.in_flight = 0
        self.killed = False

    async def create(self, n: int, http: httpx.AsyncClient) -> None:
        if self.killed:
            return
        try:
            response = await http.post(T2V, json={"prompt": f"crash {n}"}, headers=AUTH)
        except httpx.TransportError:
            self.in_flight += 1
            return
        if response.status_code == 200:
            self.acknowledged.append(response.json()["data"]["task_id"])
        if len(self.acknowledged) >= self.kill_at and not self.killed:
            self.killed = True
            self.server.kill()


async def find_all(url: str, task_ids: list[str]) -> int:
    async def found(task_id: str, http: httpx.AsyncClient) -> bool:
        return (await http.get(f"{T2V}/{task_id}", headers=AUTH)).status_code == 200

    return sum(await lanes(url, [partial(found, t) for t in task_ids], IN_FLIGHT))


CRASH_COLUMNS = {
    "acknowledged": "creates acknowledged",
    "in_flight": "in flight at the kills",
    "stored": "tasks in the file",
    "found": "acknowledged found after restart",
    "lost": "lost",
    "integrity": "integrity_check",
}


def crash_rounds(state: Path, rounds: int, most: int, rng: random.Random) -> dict[str, Any]:
    """``rounds`` SIGKILLs, each after 100 to ``most`` acknowledged creates; then the check."""
    flags = ["--state", str(state), "--seed", "1"]
    acknowledged: list[str] = []
    in_flight = 0
    for _ in range(rounds):
        with ServeProcess(*flags) as server:
            crash = CrashRound(server, kill_at=rng.randint(min(100, most), most))
            asyncio.run(lanes(server.url, [partial(crash.create, n) for n in range(2_000)], IN_FLIGHT))
            assert crash.killed, "the load ended before the kill"
        acknowledged += crash.acknowledged
        in_flight += crash.in_flight
    with sqlite3.connect(state) as db:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        stored = db.execute("SELECT count(*) FROM tasks").fetchone()[0]
    db.close()
    with ServeProcess(*flags) as server:
        found = asyncio.run(find_all(server.url, acknowledged))
    return {
        "rounds": rounds,
        "acknowledged": len(acknowledged),
        "in_flight": in_flight,
        "stored": stored,
        "found": found,
        "lost": len(acknowledged) - found,
        "integrity": integrity,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small counts: proves the script works")
    args = parser.parse_args()
    creates, seconds, repeats, rounds, store_count = (
        (50, 1, 1, 1, 2_000) if args.quick else (2_000, 5, 3, 5, 10_000)
    )
    rng = random.Random(8)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        memory = store_rates(lambda n: TaskStore(), store_count, repeats)
        sqlite = store_rates(lambda n: SQLiteTaskStore(folder / f"store{n}.db"), store_count, repeats)
        table(
            f"Task stores alone, in process ({store_count:,} tasks; best of {repeats})",
            ["store", "adds/s", "reads by id/s"],
            [
                ["in memory (default)", f"{memory[0]:,.0f}", f"{memory[1]:,.0f}"],
                ["SQLite (`--state`)", f"{sqlite[0]:,.0f}", f"{sqlite[1]:,.0f}"],
            ],
        )

        runs = [
            ("in memory (default)", [], 1),
            ("`--state FILE`", ["--state", str(folder / "one.db")], 1),
            ("`--state FILE --workers 2`", ["--state", str(folder / "two.db")], 2),
        ]
        # Interleaved repeats, medians: a busy machine slows every configuration alike.
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in runs}
        for _ in range(repeats):
            for name, flags, workers in runs:
                samples[name].append(http_creates(flags, workers, creates, seconds))
        results = [
            (name, statistics.median(r for r, _ in got), statistics.median(c for _, c in got))
            for name, got in samples.items()
        ]
        base_rate, base_cpu = results[0][1], results[0][2]
        load = (
            f"wrk -t1 -c32 for {seconds} s"
            if USE_WRK
            else f"{creates:,} creates from httpx, {IN_FLIGHT} in flight"
        )
        table(
            f"Creates over HTTP (`POST /v1/videos/text2video`; {load}; median of {repeats} interleaved runs)",
            ["server", "creates/s", "vs in memory", "server CPU per create", "vs in memory"],
            [
                [name, f"{rate:,.0f}", f"{rate / base_rate:.2f}", f"{cpu:,.0f} µs", f"{cpu / base_cpu:.2f}"]
                for name, rate, cpu in results
            ],
        )

        crash = crash_rounds(folder / "crash.db", rounds, 150 if args.quick else 600, rng)
        table(
            f"SIGKILL under load, restart on the same file ({rounds} rounds)",
            list(CRASH_COLUMNS.values()),
            [[str(crash[k]) for k in CRASH_COLUMNS]],
        )
        if crash["lost"]:
            sys.exit(f"{crash['lost']} acknowledged tasks were lost")


if __name__ == "__main__":
    main()
