"""The contract kit (contracts/) against the mock itself, in process and over real HTTP(S), and
against deliberately broken servers: it passes only when the server honours the contract.

The targets run on a clock that moves a quarter second each time it is read, so a task's
lifecycle unfolds as the kit polls it: nothing sleeps.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpcore
import hypothesis
import pytest
import schemathesis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mockkling import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_API_KEY,
    DEFAULT_SECRET_KEY,
    Backend,
    Config,
    FailRule,
    Timing,
    create_app,
)
from mockkling.contract import suite_path
from mockkling.server import LiveServer
from mockkling.tls import make_self_signed

pytest_plugins = ["pytester"]

# Imported here, before any inner run: pytester drops the modules an inner run imported first, so
# these would be imported afresh each run (seconds), and a fresh httpcore (which httpx imports
# lazily) raises exceptions httpx no longer recognises.
_KEEP_LOADED = (httpcore, hypothesis, schemathesis.checks, schemathesis.openapi)

SUITE = suite_path()
FAIL_WORD = "forbidden"
# Every target made by a factory below, newest last, so a test can look inside what the kit used.
BACKENDS: list[Backend] = []


class SteppingClock:
    """Moves 250 ms each time it is read: tasks progress as the kit polls them."""

    def __init__(self) -> None:
        self._now = 1_700_000_000_000

    def now_ms(self) -> int:
        self._now += 250
        return self._now


def mock_backend() -> Backend:
    config = Config(timing=Timing(0.5, 1.0), fail_rules=[FailRule(FAIL_WORD)], seed=7)
    backend = Backend(config, clock=SteppingClock())
    BACKENDS.append(backend)
    return backend


def good_mock() -> ASGIApp:
    """The mock, as the kit's --kling-app factory."""
    return create_app(mock_backend())


# -- broken servers: the mock, with its answers rewritten on the way out ---------------------------

Transform = Callable[[Scope, int, Any], tuple[int, Any]]


def rewriting(*transforms: Transform) -> ASGIApp:
    """The mock, with every JSON answer passed through each ``transform(scope, status, body)``."""
    app = create_app(mock_backend())

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        messages: list[Message] = []

        async def keep(message: Message) -> None:
            messages.append(message)

        await app(scope, receive, keep)
        start, body = messages[0], b"".join(m.get("body", b"") for m in messages[1:])
        headers = [(k, v) for k, v in start["headers"] if k != b"content-length"]
        status = start["status"]
        if dict(headers).get(b"content-type", b"").startswith(b"application/json"):
            data = json.loads(body)
            for transform in transforms:
                status, data = transform(scope, status, data)
            body = json.dumps(data).encode()
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return wrapped


def _is_list(scope: Scope) -> bool:
    return bool(scope["method"] == "GET" and scope["path"].count("/") == 3)


def _each_task(body: Any) -> Iterator[dict[str, Any]]:
    data = body.get("data") if isinstance(body, dict) else None
    for task in data if isinstance(data, list) else [data]:
        if isinstance(task, dict) and "task_status" in task:
            yield task


def _list_not_an_array(scope: Scope, status: int, body: Any) -> tuple[int, Any]:
    if _is_list(scope) and status == 200:
        body["data"] = {"tasks": body["data"]}
    return status, body


def _auth_codes_collapsed(scope: Scope, status: int, body: Any) -> tuple[int, Any]:
    if status == 401:
        body["code"] = 1000
    return status, body


def _not_found_as_empty_success(scope: Scope, status: int, body: Any) -> tuple[int, Any]:
    if status == 404:
        return 200, {"code": 0, "message": "SUCCEED", "request_id": body["request_id"], "data": None}
    return status, body


def _succeeded_spelling(scope: Scope, status: int, body: Any) -> tuple[int, Any]:
    for task in _each_task(body):
        if task["task_status"] == "succeed":
            task["task_status"] = "succeeded"
    return status, body


def _list_shows_finished_as_processing(scope: Scope, status: int, body: Any) -> tuple[int, Any]:
    if _is_list(scope):
        for task in _each_task(body):
            if task["task_status"] in ("succeed", "failed"):
                task["task_status"] = "processing"
                task.pop("task_result", None)
    return status, body


def _failed_without_message(scope: Scope, status: int, body: Any) -> tuple[int, Any]:
    for task in _each_task(body):
        task["task_status_msg"] = ""
    return status, body


def _external_id_not_found(scope: Scope, status: int, body: Any) -> tuple[int, Any]:
    if scope["path"].rsplit("/", 1)[-1].startswith("mockkling-contract-"):
        return 404, {"code": 1203, "message": "not found", "request_id": "x", "data": None}
    return status, body


def _video_url_not_absolute(scope: Scope, status: int, body: Any) -> tuple[int, Any]:
    for task in _each_task(body):
        for video in (task.get("task_result") or {}).get("videos", []):
            video["url"] = "/videos/1.mp4"
    return status, body


# Broken servers, each wrong in ways that different checks must catch:
# name: (what it does wrong, the kit files to run, the checks that must fail, one per wrong).
BROKEN: dict[str, tuple[list[Transform], str, list[str]]] = {
    "wrong shapes and codes": (
        [_list_not_an_array, _auth_codes_collapsed, _not_found_as_empty_success],
        "",
        [
            "test_generated_reads[listText2VideoTasks-valid]",
            "test_no_authorization_is_1001",
            "test_malformed_authorization_is_1002[Bearer not-a-jwt]",
            "test_unknown_task_is_404_1203[image2video]",
        ],
    ),
    # The trap third-party clients fall into: they poll for "succeed".
    "succeeded instead of succeed": (
        [_succeeded_spelling],
        "test_contract_lifecycle.py",
        ["test_it_finishes_and_succeeds_with_videos"],
    ),
    "an unlawful lifecycle": (
        [
            _list_shows_finished_as_processing,
            _failed_without_message,
            _external_id_not_found,
            _video_url_not_absolute,
        ],
        "test_contract_lifecycle.py",
        [
            "test_the_list_shows_it",
            "test_a_refused_task_fails_with_a_message",
            "test_external_task_id_finds_the_task",
            "test_it_finishes_and_succeeds_with_videos",
        ],
    ),
}

_broken_apps: dict[str, ASGIApp] = {}


def broken_mock() -> ASGIApp:
    """The broken server the running test picked (see ``run_broken``)."""
    return _broken_apps["current"]


# -- running the kit -------------------------------------------------------------------------------

KEYS = ["--kling-access-key", DEFAULT_ACCESS_KEY, "--kling-secret-key", DEFAULT_SECRET_KEY]


def run_kit(pytester: pytest.Pytester, *args: str, files: str = "") -> pytest.RunResult:
    """The kit, run in this process (small budgets: 3 generated requests per read check)."""
    target = str(SUITE / files) if files else str(SUITE)
    return pytester.runpytest_inprocess(
        "-p",
        "no:benchmark",  # pytest-benchmark, where installed, would ask git about the checkout
        target,
        "-c",
        str(SUITE / "pytest.ini"),
        "--rootdir",
        str(SUITE),
        "--kling-examples",
        "3",
        "--kling-poll-interval",
        "0",
        "--kling-task-timeout",
        "30",
        # The outer session already watches for unraisable exceptions; the inner one's
        # cleanup (five full garbage collections of this whole process) is pure cost.
        "-p",
        "no:unraisableexception",
        *args,
    )


def failed_tests(result: pytest.RunResult) -> set[str]:
    _passed, _skipped, failed = result.reprec.listoutcomes()  # type: ignore[attr-defined]
    return {report.nodeid.split("::")[-1] for report in failed}


def summary(result: pytest.RunResult) -> str:
    lines = [
        line for line in result.outlines if line.startswith(("kling contract: PASS", "kling contract: FAIL"))
    ]
    return lines[-1] if lines else ""


# -- the mock honours the contract ---------------------------------------------------------------


def test_the_mock_honours_the_contract_in_process(pytester: pytest.Pytester) -> None:
    args = ["--kling-app", f"{__name__}:good_mock", *KEYS, "--kling-api-key", DEFAULT_API_KEY]
    families = ["--kling-families", "omni-video,motion-control,avatar"]
    result = run_kit(
        pytester, *args, *families, "--kling-fail-prompt", f"a {FAIL_WORD} thing", "--kling-max-tasks", "6"
    )
    assert result.ret == 0, result.stdout.str()
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("skipped", 0) == 0 and outcomes["passed"] >= 45
    assert "kling contract: PASS" in summary(result)
    # Exactly the planned tasks were created (one on the model-in-path design, one per family),
    # each followed to its end, and the spend was stated before any test ran.
    assert sorted(task.action for task in BACKENDS[-1].tasks) == [
        "avatar",
        "motion-control",
        "omni-video",
        "text-to-video/kling-2.5-turbo",
        "text2video",
        "text2video",
    ]
    result.stdout.fnmatch_lines(
        [
            "*spend: creates at most 6 task(s)*",
            "*the model-in-path probe is POST /text-to-video/kling-2.5-turbo (720p, 5s): about 1.5 unit(s)*",
            "*the omni-video probe is omni-video kling-video-o1 pro 5s: about * unit(s)*",
            "*test_contract_auth.py*",
        ]
    )
    assert "created 6 task(s) of at most 6" in summary(result)


def test_the_task_limit_is_never_exceeded(pytester: pytest.Pytester) -> None:
    args = ["--kling-app", f"{__name__}:good_mock", *KEYS, "--kling-fail-prompt", FAIL_WORD]
    result = run_kit(pytester, *args, "--kling-max-tasks", "1", files="test_contract_lifecycle.py")
    assert result.ret == 0, result.stdout.str()
    assert len(BACKENDS[-1].tasks) == 1
    result.stdout.fnmatch_lines(["*creates at most 1 task(s)*", "*task limit reached (1)*"])


def test_read_only_with_a_raw_key_sends_no_post(pytester: pytest.Pytester) -> None:
    args = ["--kling-app", f"{__name__}:good_mock", "--kling-api-key", "sk-mockkling-local-key"]
    result = run_kit(pytester, *args, "--kling-read-only")
    assert result.ret == 0, result.stdout.str()
    assert len(BACKENDS[-1].tasks) == 0
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] >= 15 and outcomes["skipped"] >= 8
    result.stdout.fnmatch_lines(["*--kling-read-only: sends no POST*", "*needs --kling-access-key*"])
    assert "created 0 task(s)" in summary(result)


def test_no_credentials_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = run_kit(pytester, "--kling-base-url", "http://127.0.0.1:9")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*give credentials*"])


@pytest.fixture(scope="module")
def live_mock() -> Iterator[LiveServer]:
    with LiveServer(good_mock()) as live:
        yield live


@pytest.mark.slow
def test_the_mock_honours_the_contract_over_https(pytester: pytest.Pytester, tmp_path: Path) -> None:
    tls = make_self_signed(tmp_path)
    with LiveServer(good_mock(), ssl_certfile=str(tls.certfile), ssl_keyfile=str(tls.keyfile)) as live:
        args = ["--kling-base-url", live.url, *KEYS, "--kling-ca-file", str(tls.ca_file)]
        result = run_kit(pytester, *args, "--kling-fail-prompt", FAIL_WORD)
    assert live.url.startswith("https://")
    assert result.ret == 0, result.stdout.str()
    assert f"kling contract: PASS {live.url}" in summary(result)


# -- broken servers fail it ------------------------------------------------------------------------


@pytest.mark.parametrize("name", BROKEN)
def test_a_broken_server_fails_the_contract(pytester: pytest.Pytester, name: str) -> None:
    transforms, files, must_fail = BROKEN[name]
    _broken_apps["current"] = rewriting(*transforms)
    args = ["--kling-app", f"{__name__}:broken_mock", *KEYS, "--kling-fail-prompt", FAIL_WORD]
    result = run_kit(pytester, *args, files=files)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    failed = failed_tests(result)
    assert set(must_fail) <= failed, f"{name}: expected {must_fail} among the failures, got {sorted(failed)}"
    assert "kling contract: FAIL" in summary(result)
    # One probe and one refused probe, however many checks failed: a failure never costs a task.
    assert sorted(task.outcome for task in BACKENDS[-1].tasks) == ["failed", "succeed"]


# -- the command line ------------------------------------------------------------------------------


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mockkling.cli", "contract", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_mockkling_contract_passes_on_the_mock_and_writes_junit(
    live_mock: LiveServer, tmp_path: Path
) -> None:
    report = tmp_path / "contract.xml"
    keys = ["--access-key", DEFAULT_ACCESS_KEY, "--secret-key", DEFAULT_SECRET_KEY]
    done = _cli(
        live_mock.url,
        *keys,
        "--examples",
        "2",
        "--poll-interval",
        "0",
        "--junit-xml",
        str(report),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    spend = next(i for i, line in enumerate(lines) if line.startswith("spend: creates at most 1 task(s)"))
    verdict = next(i for i, line in enumerate(lines) if line.startswith("kling contract: PASS"))
    assert spend < verdict
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None and suite.get("name") == "kling-contract"
    assert suite.get("failures") == "0" and int(suite.get("tests", "0")) >= 30


@pytest.mark.slow
def test_mockkling_contract_exits_non_zero_on_a_broken_server(tmp_path: Path) -> None:
    app = rewriting(_auth_codes_collapsed)
    with LiveServer(app) as live:
        keys = ["--access-key", DEFAULT_ACCESS_KEY, "--secret-key", DEFAULT_SECRET_KEY]
        done = _cli(live.url, *keys, "--read-only", "--", "-k", "authorization", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"kling contract: FAIL {live.url}" in done.stdout
    assert (tmp_path / "kling-contract.xml").is_file()
