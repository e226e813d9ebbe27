"""The durable-state benchmark runs end to end in its short mode (it prints; it asserts no
timing), so the figures in the README stay reproducible."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a benchmark, in a child process

SCRIPT = Path(__file__).resolve().parent / "benchmarks" / "durable_state.py"


def test_quick_durable_state_benchmark_prints_every_table() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for row in ("| in memory (default) |", "| SQLite (`--state`) |", "| `--state FILE --workers 2` |"):
        assert row in result.stdout, row
    crash = result.stdout.rsplit("\n| ", 1)[1].split(" | ")
    assert crash[4] == "0" and crash[5].startswith("ok"), result.stdout  # lost, integrity_check
