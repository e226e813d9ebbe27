"""What the pytest plugin's fixtures cost: prints figures (no pass/fail; run it, read it).

python tests/benchmarks/fixtures.py [repetitions]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable

from mockkling.testing import KlingMock, SharedServer, new_backend
from mockkling.tls import make_self_signed


def measure(repetitions: int, action: Callable[[], object]) -> list[float]:
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return times


def report(name: str, times: list[float]) -> None:
    print(f"{name:<52} median {statistics.median(times):8.2f} ms   min {min(times):8.2f} ms   n={len(times)}")


def main(repetitions: int = 20) -> None:
    def in_process_test() -> None:
        with KlingMock.in_process() as mock:
            mock.client.get("/v1/videos/text2video")

    report("kling_mock: fresh mock + first request", measure(repetitions, in_process_test))

    servers: list[SharedServer] = []
    report(
        "kling_mock_server: start (HTTP)",
        measure(repetitions, lambda: servers.append(SharedServer().start())),
    )
    report("kling_mock_server: stop", measure(repetitions, lambda: servers.pop().stop()))

    with SharedServer() as server:

        def live_test() -> None:
            mock = server.mount(new_backend())
            mock.client.get("/v1/videos/text2video")
            mock.close()
            server.unmount()

        report("kling_mock_live: per test (mount + first request)", measure(repetitions, live_test))

    with tempfile.TemporaryDirectory() as folder:
        report(
            "kling_mock_tls: throwaway CA + certificate",
            measure(repetitions, lambda: make_self_signed(folder)),
        )
        tls = make_self_signed(folder)
        https: list[SharedServer] = []
        report(
            "kling_mock_https_server: start",
            measure(repetitions, lambda: https.append(SharedServer(tls=tls).start())),
        )
        for server in https:
            server.stop()

    leftover = [t.name for t in threading.enumerate() if t.name.startswith("mockkling-")]
    print(f"threads left behind: {len(leftover)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
