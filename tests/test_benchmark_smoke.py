"""The benchmark runs end to end in its short mode (it asserts no timing: figures are printed)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a benchmark, and fresh interpreters in child processes

RUN = Path(__file__).resolve().parent / "benchmarks" / "run.py"


def test_quick_benchmark_prints_every_figure() -> None:
    result = subprocess.run(
        [sys.executable, str(RUN), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for figure in (
        "query throughput",
        "create throughput",
        "query p99",
        "in-process lifecycles: fixture app",
        "in-process lifecycles: fixture httpx.Client",
        "memory per stored task",
        "query latency at",
        "list-page latency at",
        "start-up: live server fixture",
        "start-up: mockkling serve",
    ):
        assert f"| {figure}" in result.stdout, figure


def test_the_server_loads_no_client_or_imaging_library_until_it_needs_one(
    fresh_python: Callable[[str], list[str]],
) -> None:
    # Most of `mockkling serve`'s start-up is imports: httpx (callbacks, in-process transports)
    # and Pillow (image inputs, result images) load on first use, not with the server.
    code = (
        "import sys; from mockkling.app import create_app; import mockkling.cli;"
        "create_app(); print(*(m for m in ('httpx', 'PIL') if m in sys.modules))"
    )
    assert fresh_python(code) == []


def test_the_test_handle_is_exported_from_the_package_and_loads_on_first_use(
    fresh_python: Callable[[str], list[str]],
) -> None:
    code = (
        "import sys, mockkling; loaded = 'mockkling.testing' in sys.modules;"
        "from mockkling import KlingMock; from mockkling.testing import KlingMock as Direct;"
        "print(loaded, KlingMock is Direct, 'KlingMock' in mockkling.__all__)"
    )
    assert fresh_python(code) == ["False", "True", "True"]
