"""``mockkling contract``: run the contract kit (the pytest suite in ``contracts/``, shipped inside
the package) against a Kling-compatible server.

The command only translates its flags into the suite's ``--kling-*`` options and runs pytest on
the packaged suite in a child process, so ``mockkling contract URL ...`` and
``pytest contracts --kling-base-url URL ...`` are the same run. Exit status: pytest's (0 only when
every check passed).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

INSTALL_HINT = "the contract kit needs its extra: pip install 'mockkling[contract]'"
DEFAULT_REPORT = "kling-contract.xml"


def suite_path() -> Path:
    """The contract suite: the copy packaged in a wheel, else ``contracts/`` in a source checkout."""
    packaged = Path(str(resources.files("mockkling"))) / "contracts"
    if (packaged / "conftest.py").is_file():
        return packaged
    return Path(__file__).resolve().parent.parent / "contracts"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "contract",
        help="check that a server honours the Kling contract",
        description="Check that the server at BASE_URL honours the Kling API contract (openapi.yaml). "
        "Every option also reads the KLING_* variable named.",
        epilog="Arguments after -- go to pytest as they are.",
    )
    parser.add_argument("base_url", nargs="?", help="the server to check (KLING_BASE_URL)")
    parser.add_argument("--access-key", help="access key (KLING_ACCESS_KEY)")
    parser.add_argument("--secret-key", help="secret key (KLING_SECRET_KEY)")
    parser.add_argument("--api-key", help="a raw bearer key (sk-...) instead of a key pair (KLING_API_KEY)")
    parser.add_argument(
        "--app", metavar="MODULE:ATTR", help="check an ASGI app in process instead of a URL (KLING_APP)"
    )
    parser.add_argument(
        "--read-only", action="store_true", help="send no POST, create no task (KLING_READ_ONLY)"
    )
    parser.add_argument("--max-tasks", type=int, help="never create more tasks than this (default 2)")
    parser.add_argument(
        "--fail-prompt", help="a prompt the server refuses: checks failed tasks (one more task)"
    )
    parser.add_argument(
        "--families",
        metavar="LIST",
        help="one more task for each of these endpoint families, checked through its lifecycle: "
        "omni-video, motion-control, avatar (KLING_FAMILIES)",
    )
    parser.add_argument(
        "--media",
        metavar="KIND=URL,...",
        help="fetchable media for those tasks: image=URL, video=URL, audio=URL (KLING_MEDIA)",
    )
    parser.add_argument("--examples", type=int, help="generated requests per read check (default 10)")
    parser.add_argument("--poll-interval", type=float, help="seconds between polls of a task (default 5)")
    parser.add_argument("--task-timeout", type=float, help="seconds a task may take to finish (default 900)")
    parser.add_argument("--ca-file", help="CA file to verify HTTPS with (KLING_CA_FILE)")
    parser.add_argument("--seed", type=int, help="seed for generated requests (default 0)")
    parser.add_argument(
        "--junit-xml",
        default=DEFAULT_REPORT,
        metavar="PATH",
        help=f"JUnit XML report (default {DEFAULT_REPORT})",
    )
    parser.set_defaults(pytest_args=[])


_VALUED = (
    "base_url",
    "access_key",
    "secret_key",
    "api_key",
    "app",
    "max_tasks",
    "fail_prompt",
    "families",
    "media",
    "examples",
    "poll_interval",
    "task_timeout",
    "ca_file",
    "seed",
)


def pytest_args(args: argparse.Namespace) -> list[str]:
    """The pytest command line for these flags; unset flags fall back to KLING_* in the suite."""
    suite = suite_path()
    # The kit needs no benchmark plugin; pytest-benchmark, where a machine has it installed,
    # would warn from inside an xdist worker, and the kit treats warnings as errors.
    out = [str(suite), "-c", str(suite / "pytest.ini"), "--rootdir", str(suite), "-p", "no:benchmark"]
    for name in _VALUED:
        value = getattr(args, name)
        if value is not None:
            out += [f"--kling-{name.replace('_', '-')}", str(value)]
    if args.read_only:
        out.append("--kling-read-only")
    if args.junit_xml:
        out.append(f"--junitxml={args.junit_xml}")
    return out + list(args.pytest_args)


def unreachable(base_url: str, ca_file: str | None, timeout: float = 5.0) -> str | None:
    """Why ``base_url`` cannot be reached (no server, a refused TLS handshake, ...), or None if
    it answers anything at all: checked once, so a wrong URL costs seconds, not a whole run."""
    import ssl

    import httpx

    verify = ssl.create_default_context(cafile=ca_file) if ca_file else True
    try:
        httpx.get(base_url, timeout=timeout, verify=verify, follow_redirects=False)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None


def run(args: argparse.Namespace) -> int:
    """Run the suite in a fresh interpreter (so pytest sees its plugins before anything imports
    them); return its exit status. A server that does not answer stops it at once."""
    if importlib.util.find_spec("pytest") is None or importlib.util.find_spec("schemathesis") is None:
        print(f"mockkling: {INSTALL_HINT}", file=sys.stderr)
        return 2
    base_url = args.base_url or os.environ.get("KLING_BASE_URL")
    if base_url and not (args.app or os.environ.get("KLING_APP")):
        problem = unreachable(base_url, args.ca_file or os.environ.get("KLING_CA_FILE"))
        if problem is not None:
            print(
                f"mockkling: {base_url} does not answer ({problem}); is the server running?", file=sys.stderr
            )
            return 2
    return subprocess.call([sys.executable, "-m", "pytest", *pytest_args(args)])
