"""The replicas benchmark (tests/benchmarks/replicas.py) runs end to end in its short mode; it
asserts no timing: its figures are printed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a benchmark: servers, Redis and wrk in child processes

SCRIPT = Path(__file__).resolve().parent / "benchmarks" / "replicas.py"


@pytest.mark.skipif(shutil.which("wrk") is None, reason="the benchmark's load is wrk (apt-get install wrk)")
def test_quick_replicas_benchmark_prints_every_row() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for row in (
        "in memory, 1 process (baseline)",
        "Redis, 1 replica",
        "Redis, 2 replicas",
        "Redis, 3 replicas",
        "Redis, 1 replica, appendfsync always",
    ):
        assert f"| {row} |" in result.stdout, row
