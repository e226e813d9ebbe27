"""The fuzz runner's CI budget: every documented operation, zero failures. It replaces the
per-operation schemathesis test that tests/test_openapi.py used to run (same engine, more
cases, less time). The runner itself is shown to catch a server error and a response that
breaks the spec."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from mockkling import DEFAULT_API_KEY, Backend, create_app

from .run import EXCLUDED_CHECKS, QUICK_CASES, fuzz, main

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.mark.slow  # the fuzz run of the CI budget, thousands of cases
def test_the_ci_run_finds_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    report = fuzz(QUICK_CASES)
    print(report.render())
    assert report.ok, report.render()
    assert report.total >= QUICK_CASES
    # Every documented operation ran, in every phase it can: schemathesis skips only the
    # operation that serves the document it loads.
    assert report.not_run == ["GET /openapi.yaml"]
    phases = {phase for _op, phase in report.cases}
    assert phases == {"coverage", "fuzzing", "stateful"}
    for check in (
        "not_a_server_error",
        "response_schema_conformance",
        "status_code_conformance",
        "ignored_auth",
    ):
        assert report.checks[check] >= QUICK_CASES * 0.9, check
    assert not set(EXCLUDED_CHECKS) & set(report.checks)


# The gateway operations (their paths): what the real gateways' profiles serve on top of the
# official surface, which the CI run above covers.
GATEWAY_OPERATIONS = r"^(POST|GET) /(v1/video/|v1/videos$|v1/videos/\{|kling/)"


@pytest.mark.parametrize("gateway", ["ppwapi", "new-api"])
def test_the_real_gateways_surfaces_fuzz_clean(gateway: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Each real gateway's surfaces, fuzzed: every answer is in openapi.yaml, none is a crash."""
    report = fuzz(600, include=GATEWAY_OPERATIONS, gateway=gateway)
    print(report.render())
    assert report.ok, report.render()
    assert report.not_run == []
    assert report.checks["no_crash"] >= 600
    assert report.checks["response_schema_conformance"] >= 500


class Broken:
    """The mock with two bugs: one list route crashes, one answers outside its schema."""

    def __init__(self, backend: Backend) -> None:
        self.app = create_app(backend)
        list_tasks = backend.list_tasks

        def crash_on_lip_sync(account: str, action: str, *args: Any) -> Any:
            if action == "lip-sync":
                raise RuntimeError("a bug")
            return list_tasks(account, action, *args)

        backend.list_tasks = crash_on_lip_sync  # type: ignore[method-assign]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if path == "/v1/videos/effects" and scope.get("method") == "GET":
            body = orjson.dumps({"code": "zero", "data": 1})
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def test_the_runner_reports_what_breaks() -> None:
    def broken(backend: Backend) -> ASGIApp:
        return Broken(backend)

    report = fuzz(50, include="^GET /v1/videos/(lip-sync|effects)$", app_factory=broken)
    assert not report.ok
    failures = {(f.check, f.operation) for f in report.failures.values()}
    assert ("not_a_server_error", "GET /v1/videos/lip-sync") in failures
    assert ("response_schema_conformance", "GET /v1/videos/effects") in failures
    rendered = report.render()
    assert "FAILED not_a_server_error on GET /v1/videos/lip-sync" in rendered
    assert "curl" in rendered  # each failure comes with a way to reproduce it


def test_each_surface_gets_its_own_credential() -> None:
    """A JWT on the official surface, the sk- key on the gateway's, nothing on result files."""
    seen: list[tuple[str, str | None]] = []

    def recording(backend: Backend) -> ASGIApp:
        app = create_app(backend)

        async def record(scope: Scope, receive: Receive, send: Send) -> None:
            headers = dict(scope.get("headers", []))
            value = headers.get(b"authorization")
            seen.append((scope.get("path", ""), None if value is None else value.decode("latin-1")))
            await app(scope, receive, send)

        return record

    include = "^(GET /v1/videos/text2video/|GET /v1/video/generations/|GET /media/videos/)"
    assert fuzz(30, include=include, app_factory=recording).ok
    by_surface: dict[str, set[str | None]] = {"official": set(), "gateway": set(), "media": set()}
    for path, value in seen:
        surface = "media" if path.startswith("/media/") else "gateway" if "/video/" in path else "official"
        by_surface[surface].add(value)
    assert by_surface["media"] == {None}
    assert DEFAULT_API_KEY in by_surface["gateway"]
    assert not any(value and value.startswith("Bearer ey") for value in by_surface["gateway"])
    assert any(value and value.startswith("Bearer ey") for value in by_surface["official"])
    assert DEFAULT_API_KEY not in by_surface["official"]


def test_the_command_line_exits_non_zero_on_failure(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    from . import run

    monkeypatch.setattr(run, "mock_app", lambda backend: Broken(backend))
    assert main(["--cases", "10", "--include", "^GET /v1/videos/lip-sync$"]) == 1
    assert "cases run:" in capsys.readouterr().out
    monkeypatch.undo()
    assert main(["--cases", "10", "--include", "^GET /v1/videos/text2video$"]) == 0
