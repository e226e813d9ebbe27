"""What the dashboard weighs and costs: prints figures (no pass/fail; run it, read it).

    python tests/benchmarks/dashboard.py            # the full run (about two minutes)
    python tests/benchmarks/dashboard.py --quick    # a short run that proves it works

- the page's weight: the bytes of its three files as served (and gzipped, for reference);
- its time to render: from navigation to the first state drawn (the page's "mockkling:ready"
  mark), in headless Chromium, with 200 tasks and 200 requests to show;
- the API's speed with the page closed and open: query and create throughput of
  ``mockkling serve`` under load (wrk when installed, else the asyncio load generator of
  run.py), in rounds that take turns, the page either on about:blank or on the dashboard
  (which then receives and draws every request the load makes). The server runs on one CPU,
  the load generator and the browser (both clients) on the other, as run.py pins them.

Needs Debian's Chromium (``apt-get install chromium``) and Playwright's Python package.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
from run import (
    CHILD_ENV,
    CLIENT_CPUS,
    CREATE_BODY,
    SERVER_CPUS,
    T2V,
    free_port,
    interleaved,
    mock_server,
    on_cpus,
    paired_ratio,
    python_load,
    spread,
    wait_listening,
    wrk,
)
from run import _ASGICaller as ASGICaller

from mockkling import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, Backend, Config, Timing, create_app, make_jwt
from mockkling.routes.dashboard import JOURNAL_SHOWN, TICK_SECONDS, Watcher

C = "/__mockkling"
FILES = ("/", "/dashboard.css", "/dashboard.js")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def serve(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``mockkling serve`` on its own CPU, as run.py starts it (its pid, to read its CPU time)."""
    with on_cpus(SERVER_CPUS):
        server = subprocess.Popen(
            mock_server(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=CHILD_ENV
        )
    try:
        wait_listening(port)
        yield server
    finally:
        server.terminate()
        server.wait(10)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (/proc/PID/stat, fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with on_cpus(CLIENT_CPUS):  # the browser and Playwright's driver are clients
        playwright = sync_playwright().start()
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()


def weight(url: str) -> tuple[int, int]:
    """Bytes of the page's files as served, and gzipped."""
    bodies = [httpx.get(f"{url}{C}{name}").content for name in FILES]
    return sum(map(len, bodies)), sum(len(gzip.compress(body, 9)) for body in bodies)


def render_times(browser: Any, url: str, loads: int) -> tuple[list[float], list[float]]:
    """ms from navigation to DOMContentLoaded and to the first state drawn, each in a new
    browser context (nothing cached)."""
    ready, parsed = [], []
    for _ in range(loads):
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        page.goto(f"{url}{C}/")
        page.wait_for_selector("html[data-ready]")
        ready.append(page.evaluate("performance.getEntriesByName('mockkling:ready')[0].startTime"))
        parsed.append(page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"))
        context.close()
    return parsed, ready


def look_costs(looks: int, headers: dict[str, str]) -> dict[str, list[float]]:
    """CPU time (ms, in process) of one look of an open page at the state: with 200 tasks, after
    a burst of requests (200 new journal entries to send, the most one look sends) and with
    nothing new. A look is all the server does for a page: four a second while it is open."""
    backend = Backend(Config(seed=1, timing=Timing(1, 2)))
    backend.use_manual_clock()
    call = ASGICaller(create_app(backend), headers)
    for _ in range(200):
        task_id = call("POST", T2V, CREATE_BODY)["data"]["task_id"]
    backend.advance(5)
    watcher = Watcher(backend)
    watcher.changes()
    costs: dict[str, list[float]] = {"busy": [], "idle": []}
    for _ in range(looks):
        for _ in range(JOURNAL_SHOWN):
            call("GET", f"{T2V}/{task_id}")
        for kind in ("busy", "idle"):
            started = time.process_time()
            watcher.changes()
            costs[kind].append((time.process_time() - started) * 1000)
    call.close()
    return costs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short run: proves the benchmark works")
    args = parser.parse_args(argv)
    seconds, rounds, loads = (1.0, 1, 3) if args.quick else (2.0, 9, 15)
    token = make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, ttl_seconds=3600)
    headers = {"Authorization": f"Bearer {token}"}
    use_wrk = shutil.which("wrk") is not None
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    pool = ThreadPoolExecutor(1)

    def load(path: str, body: bytes | None = None) -> Callable[[], float]:
        if use_wrk:
            return lambda: wrk(f"{url}{path}", seconds, headers, body)
        # In a thread of its own: Playwright's sync API keeps an event loop running in this one.
        return lambda: pool.submit(python_load, port, path, seconds, headers, body).result()

    with serve(port) as server, chromium() as browser:
        kb, gz_kb = (size / 1024 for size in weight(url))
        api = httpx.Client(base_url=url, headers=headers | {"Content-Type": "application/json"})
        task_ids = [api.post(T2V, content=CREATE_BODY).json()["data"]["task_id"] for _ in range(200)]
        time.sleep(3.1)  # the server's real clock: the tasks finish, queries answer with a result
        for _ in range(200):
            api.get(f"{T2V}/{task_ids[0]}")
        parsed, ready = render_times(browser, url, loads)

        query = f"{T2V}/{task_ids[0]}"
        page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()

        def closed(measure: Callable[[], float]) -> Callable[[], float]:
            def run() -> float:
                page.goto("about:blank")
                return measure()

            return run

        def opened(measure: Callable[[], float]) -> Callable[[], float]:
            def run() -> float:
                page.goto(f"{url}{C}/")
                page.wait_for_selector("html[data-ready]")
                return measure()

            return run

        cpu: dict[str, dict[str, list[float]]] = {}
        busy: dict[str, dict[str, list[float]]] = {}

        def per_request(name: str, state: str, rate: Callable[[], float]) -> Callable[[], float]:
            """The throughput of one round, noting the server's CPU time per request in it."""

            def run() -> float:
                before = cpu_seconds(server.pid)
                requests_per_second = rate()
                spent = cpu_seconds(server.pid) - before
                cpu[name].setdefault(state, []).append(spent / (requests_per_second * seconds) * 1e6)
                busy[name].setdefault(state, []).append(spent / seconds * 100)
                return requests_per_second

            return run

        figures = {}
        for name, measure in (("query", load(query)), ("create", load(T2V, CREATE_BODY))):
            cpu[name], busy[name] = {}, {}
            figures[name] = interleaved(
                {
                    "closed": closed(per_request(name, "closed", measure)),
                    "open": opened(per_request(name, "open", measure)),
                },
                rounds,
            )
        drawn = page.evaluate("document.querySelectorAll('#journal-rows tr').length")
        page.goto("about:blank")  # no page open when the server stops
        api.close()

    med = statistics.median
    looks = look_costs(20 if args.quick else 200, headers)
    tool = "wrk -t1 -c32" if use_wrk else "asyncio load, 16 connections"
    print(f"mockkling dashboard benchmark ({'quick' if args.quick else 'full'} run, {os.cpu_count()} cores)")
    print(f"page weight: {kb:.1f} KB in 3 files ({gz_kb:.1f} KB gzipped; served as is)")
    print(
        f"time to render: {med(ready):.0f} ms to the first state drawn (200 tasks, 200 requests),"
        f" {med(parsed):.0f} ms to DOMContentLoaded (median of {loads} loads, headless Chromium)"
    )
    for name, rates in figures.items():
        ratio = paired_ratio(rates["open"], rates["closed"])
        print(
            f"{name} throughput: {med(rates['closed']):,.0f} req/s page closed, {med(rates['open']):,.0f}"
            f" req/s page open; open/closed {ratio:.2f} ({spread(rates['open'], rates['closed'])};"
            f" {tool}, {rounds} rounds of {seconds:g} s)"
        )
        spent, share = cpu[name], busy[name]
        print(
            f"{name} server CPU per request: {med(spent['closed']):.1f} us page closed,"
            f" {med(spent['open']):.1f} us page open ({med(spent['open']) / med(spent['closed']):.2f});"
            f" the server busy {med(share['closed']):.0f}% / {med(share['open']):.0f}% of its CPU"
            " (below 100%: the clients, load generator and browser on one CPU, set the pace)"
        )
    print(f"rows the open page drew: {drawn} (it keeps the newest 500)")
    busy, idle = med(looks["busy"]), med(looks["idle"])
    print(
        f"server work for an open page: a look at the state costs {busy:.2f} ms after a burst of"
        f" requests (200 new entries to send, the most a look sends), {idle:.3f} ms with nothing new"
        f" (CPU time, in process, median of {len(looks['busy'])}); at {1 / TICK_SECONDS:g} looks a second,"
        f" at most {busy / TICK_SECONDS / 10:.2f}% of one core, whatever the request rate"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
