"""What 10,000 requests cost in memory, with the journal's per-entry header bound and without it
(the earlier behaviour), each in a fresh interpreter, measured in the same run.

    python tests/benchmarks/journal_memory.py [--requests 10000] [--header-bytes 12000]

Every request carries ``--header-bytes`` of headers (under the server's 16 KB bound on a request
head, so the server takes them) and goes through the whole app in process. The journal keeps its
default 1,000 entries in both runs; the figure is the resident memory the process grew by.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

CHILD = """
import resource, sys
import httpx
from mockkling import Backend, Config, create_app
from mockkling.transport import SyncASGITransport

requests, header_bytes, cap = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
backend = Backend(Config(journal_header_bytes=cap))
client = httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock")
padding = {"X-Padding": "p" * header_bytes}
client.get("/v1/videos/text2video", headers=padding)  # warm: imports, first compilations
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for _ in range(requests):
    client.get("/v1/videos/text2video", headers=padding)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) / 1024)
"""


def grown_mb(requests: int, header_bytes: int, cap: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(requests), str(header_bytes), str(cap)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.split()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--header-bytes", type=int, default=12_000)
    args = parser.parse_args()
    bounded = grown_mb(args.requests, args.header_bytes, 4096)
    unbounded = grown_mb(args.requests, args.header_bytes, 1 << 30)
    grown = f"RSS grown over {args.requests:,} requests of {args.header_bytes:,} B"
    print(f"| journal headers per entry | {grown} |")
    print("| --- | --- |")
    print(f"| whole (before) | {unbounded:.1f} MB |")
    print(f"| at most 4 KB (now) | {bounded:.1f} MB |")
    print(f"| ratio | {bounded / unbounded:.2f} |" if unbounded else "| ratio | - |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
