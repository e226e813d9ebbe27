"""Lifecycles per second through ``mockkling.intercept()`` against the fixture's own transport,
measured in one run, interleaved round by round.

    python tests/benchmarks/interception.py [--rounds 5] [--lifecycles 100]

A lifecycle is what a client does for one video: create a task, query it until it has succeeded
(the clock is moved between queries, no sleeping), download the result. The baseline is the same
lifecycle through ``KlingMock.client`` (an httpx.Client on the in-process transport); each
intercepted library does it against https://api-singapore.klingai.com as production code would.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable

import aiohttp
import httpx
import requests

import mockkling
from mockkling import KlingMock

HOST = "https://api-singapore.klingai.com"
T2V = "/v1/videos/text2video"
BODY = {"prompt": "a kitten playing in a garden"}


def _lifecycle_httpx(client: httpx.Client, mock: KlingMock, base: str) -> None:
    task_id = client.post(f"{base}{T2V}", json=BODY).json()["data"]["task_id"]
    while (data := client.get(f"{base}{T2V}/{task_id}").json()["data"])["task_status"] != "succeed":
        mock.advance(2)
    client.get(data["task_result"]["videos"][0]["url"]).read()


def fixture_transport(mock: KlingMock, n: int) -> None:
    for _ in range(n):
        _lifecycle_httpx(mock.client, mock, "")


def intercepted_httpx(mock: KlingMock, n: int) -> None:
    with httpx.Client(headers=mock.auth_headers()) as client:
        for _ in range(n):
            _lifecycle_httpx(client, mock, HOST)


def intercepted_requests(mock: KlingMock, n: int) -> None:
    session = requests.Session()
    session.headers.update(mock.auth_headers())
    for _ in range(n):
        task_id = session.post(f"{HOST}{T2V}", json=BODY).json()["data"]["task_id"]
        while (data := session.get(f"{HOST}{T2V}/{task_id}").json()["data"])["task_status"] != "succeed":
            mock.advance(2)
        session.get(data["task_result"]["videos"][0]["url"]).content  # noqa: B018


def intercepted_aiohttp(mock: KlingMock, n: int) -> None:
    async def run() -> None:
        async with aiohttp.ClientSession(headers=mock.auth_headers()) as session:
            for _ in range(n):
                async with session.post(f"{HOST}{T2V}", json=BODY) as created:
                    task_id = (await created.json())["data"]["task_id"]
                while True:
                    async with session.get(f"{HOST}{T2V}/{task_id}") as answer:
                        data = (await answer.json())["data"]
                    if data["task_status"] == "succeed":
                        break
                    mock.advance(2)
                async with session.get(data["task_result"]["videos"][0]["url"]) as video:
                    await video.read()

    asyncio.run(run())


WAYS: dict[str, Callable[[KlingMock, int], None]] = {
    "fixture transport (baseline)": fixture_transport,
    "intercept: httpx": intercepted_httpx,
    "intercept: requests": intercepted_requests,
    "intercept: aiohttp": intercepted_aiohttp,
}


def measure(way: Callable[[KlingMock, int], None], n: int) -> float:
    """Lifecycles per second of one round, on a fresh mock."""
    with mockkling.intercept(queue_seconds=1, run_seconds=4, sleep="real") as mock:
        way(mock, 3)  # warm up: imports, first schema compilations
        started = time.perf_counter()
        way(mock, n)
        return n / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lifecycles", type=int, default=100)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {name: [] for name in WAYS}
    for _ in range(args.rounds):  # interleaved, so drift in the machine hits every way alike
        for name, way in WAYS.items():
            rates[name].append(measure(way, args.lifecycles))
    base = statistics.median(rates["fixture transport (baseline)"])
    print(f"| way | lifecycles/s (median of {args.rounds}) | spread | vs baseline |")
    print("| --- | --- | --- | --- |")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"| {name} | {median:,.0f} | {min(values):,.0f}-{max(values):,.0f} | {median / base:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
