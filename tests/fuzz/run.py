"""schemathesis over every operation in openapi.yaml: prints what ran and what failed.

    python tests/fuzz/run.py --cases 10000           # the documented long run (in process)
    python tests/fuzz/run.py --cases 10000 --live    # the same against uvicorn on 127.0.0.1
    python tests/fuzz/run.py --quick                 # the CI budget (tests/fuzz/test_fuzz.py)
    python tests/fuzz/run.py --include '^POST /kling/'   # only the operations that match

The operations are whatever the served openapi.yaml documents, so a new surface is fuzzed as
soon as its paths are in the document. Credentials come from each operation's ``security``
scheme; a scheme the runner has no credential for stops the run rather than fuzzing it
unauthenticated. The run uses schemathesis's own engine (the one ``schemathesis run`` drives):
the examples and coverage phases once, then fuzzing and stateful rounds with fresh seeds until
the requested number of cases has run (at least one such round). schemathesis leaves out
the one operation that serves the document it loads (GET /openapi.yaml); the figures list
every documented operation it did not run. Every check runs on every case except the one that
cannot apply (see EXCLUDED_CHECKS), and on the official surface the one its error table
contradicts (OFFICIAL_EXCLUDED_CHECKS). Exit status: 0 when nothing failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import schemathesis
import yaml
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mockkling import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_API_KEY,
    DEFAULT_SECRET_KEY,
    Backend,
    Config,
    Timing,
    make_jwt,
)
from mockkling import create_app as mock_app
from mockkling.routes.gateway import served_document
from mockkling.server import LiveServer
from mockkling.spec import default_spec

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

# The CI budget: the examples and coverage phases (about 3,000 cases) and one short fuzzing round.
QUICK_CASES = 3000
# Each fuzzing round draws at least this many cases per operation.
MIN_PER_OPERATION = 5
# A schema-valid body may still break a rule that ties fields together (which model allows
# which feature, a unique external_task_id, a video_id that must name a finished video): those
# answer 400 / 1201 by design, and a gateway answers an unknown task 400 task_not_exist as real
# gateways do. So "every schema-valid request is accepted" does not apply; every other check does.
EXCLUDED_CHECKS = ("positive_data_acceptance",)
# The real gateways' profiles (ppwapi, new-api) answer as the gateways do: 5xx by design (no
# channel for a model: 503; a body their upstream struct cannot take: 500; Kling's own status
# passed on), 404 to a method their router lacks (gin), and no check of the seed's request
# schemas (they decode bodies as their Go structs do). For them these checks give way to
# no_crash, which still fails any answer of the mock's crash handler.
GATEWAY_EXCLUDED_CHECKS = ("not_a_server_error", "unsupported_method", "negative_data_rejection")


@schemathesis.check
def no_crash(ctx: Any, response: Any, case: Any) -> None:
    """The mock's crash handler never answers: its body is 5000 (official) or internal_error."""
    if response.status_code != 500:
        return
    try:
        body = response.json()
    except ValueError:
        raise AssertionError("500 without a JSON body") from None
    if isinstance(body, dict) and body.get("code") in (5000, "internal_error"):
        raise AssertionError(f"the mock crashed: {body}")


# An undeclared method on the official surface answers 404 / 1202, as the official error table
# pairs 1202 ("invalid request method") with 404 (common-info.md), where this check wants 405.
# It still runs on the other surfaces, which answer 405.
OFFICIAL_PATHS = "^/(account/|v1/(?!video/))"
OFFICIAL_EXCLUDED_CHECKS = ("unsupported_method",)
# Rounds after the first; each fuzzes every operation again with a new seed.
MAX_ROUNDS = 20


def credentials() -> dict[str, str]:
    """``Authorization`` per security scheme of openapi.yaml: each surface's own credential (the
    control API's admin token is optional and none is configured, so it gets none)."""
    jwt = make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, ttl_seconds=7 * 86400)
    return {
        "klingAuth": f"Bearer {jwt}",
        "gatewayKey": DEFAULT_API_KEY,
        "klingApiKey": f"Bearer {DEFAULT_API_KEY}",
        "adminToken": "",
    }


def security_of() -> dict[tuple[str, str], list[str]]:
    """(path, METHOD) -> the security schemes openapi.yaml names for it."""
    out = {}
    for path, method, op in default_spec().operations():
        out[(path, method.upper())] = [name for entry in op.get("security", []) for name in entry]
    return out


def new_backend(gateway: str = "seed") -> Backend:
    """Tasks finish at once, so result URLs and finished-task paths are reachable too; the
    gateway surfaces answer as the ``gateway`` profile says."""
    backend = Backend(Config(seed=5, timing=Timing(0, 0), gateway=gateway))
    # Injected faults are the control API's purpose, not a bug: rules the fuzzer adds are kept
    # but never fire, so every server error counted below is a real one.
    faults = getattr(backend, "faults", None)
    if faults is not None:
        faults.enabled = False
    return backend


# -- figures -------------------------------------------------------------------------------------


@dataclass
class Failure:
    check: str
    operation: str
    title: str
    reproduce: str
    count: int = 0


@dataclass
class Report:
    """What a run did: cases per operation and phase, checks run and failed, errors."""

    cases: Counter[tuple[str, str]] = field(default_factory=Counter)
    checks: Counter[str] = field(default_factory=Counter)
    failed_checks: Counter[str] = field(default_factory=Counter)
    failures: dict[tuple[str, str, str], Failure] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    documented: list[str] = field(default_factory=list)
    excluded: tuple[str, ...] = EXCLUDED_CHECKS
    seconds: float = 0.0
    rounds: int = 0

    @property
    def not_run(self) -> list[str]:
        """Documented operations that no case reached."""
        ran = {op for op, _phase in self.cases}
        return [op for op in self.documented if op not in ran]

    @property
    def total(self) -> int:
        return sum(self.cases.values())

    @property
    def ok(self) -> bool:
        return not self.failures and not self.errors

    def record(self, event: events.ScenarioFinished) -> None:
        phase = event.phase.value
        for node in event.recorder.cases.values():
            self.cases[(node.value.operation.label, phase)] += 1
        for case_id, checks in event.recorder.checks.items():
            for check in checks:
                self.checks[check.name] += 1
                if check.failure_info is None:
                    continue
                self.failed_checks[check.name] += 1
                failure = check.failure_info.failure
                operation = failure.operation or event.recorder.label
                response = event.recorder.find_response(case_id=case_id)
                title = failure.title + (f" (got {response.status_code})" if response is not None else "")
                key = (check.name, operation, title)
                found = self.failures.setdefault(
                    key, Failure(check.name, operation, title, check.failure_info.code_sample)
                )
                found.count += 1

    def render(self) -> str:
        phases = sorted({phase for _op, phase in self.cases})
        operations = sorted({op for op, _phase in self.cases})
        lines = [f"| operation | {' | '.join(phases)} | total |", "|---|" + "---:|" * (len(phases) + 1)]
        for op in operations:
            counts = [self.cases[(op, phase)] for phase in phases]
            lines.append(f"| {op} | {' | '.join(map(str, counts))} | {sum(counts)} |")
        totals = [sum(n for (_o, p), n in self.cases.items() if p == phase) for phase in phases]
        lines.append(
            f"| **all {len(operations)} operations** | {' | '.join(map(str, totals))} | {self.total} |"
        )
        lines += ["", "| check | runs | failures |", "|---|---:|---:|"]
        lines += [f"| {name} | {n} | {self.failed_checks[name]} |" for name, n in sorted(self.checks.items())]
        lines += [f"| {name} | excluded | - |" for name in self.excluded]
        lines += [f"| {name} | excluded on the official surface | - |" for name in OFFICIAL_EXCLUDED_CHECKS]
        lines.append("")
        lines.append(f"operations run: {len(operations)} of {len(self.documented)} documented")
        lines += [f"not run: {op}" for op in self.not_run]
        for failure in self.failures.values():
            lines += [
                f"FAILED {failure.check} on {failure.operation}: {failure.title} (x{failure.count})",
                f"    {failure.reproduce.strip()}",
            ]
        lines += [f"ERROR {error}" for error in self.errors]
        verdict = "ok" if self.ok else f"{len(self.failures)} distinct failures, {len(self.errors)} errors"
        lines.append(
            f"cases run: {self.total} in {self.rounds} rounds, {self.seconds:.1f}s; "
            f"failed checks: {sum(self.failed_checks.values())}; {verdict}"
        )
        return "\n".join(lines)


# -- the run -------------------------------------------------------------------------------------


def _config(
    max_examples: int,
    seed: int,
    *,
    first: bool,
    stateful: bool = True,
    excluded: tuple[str, ...] = EXCLUDED_CHECKS,
) -> SchemathesisConfig:
    """The TOML configuration of ``schemathesis run``, as a dict: phases, budget, checks."""
    return SchemathesisConfig.from_dict(
        {
            "seed": seed,
            "continue-on-failure": True,
            "suppress-health-check": ["all"],
            "generation": {"max-examples": max_examples, "mode": "all"},
            "phases": {
                "examples": {"enabled": first},
                "coverage": {"enabled": first},
                "fuzzing": {"enabled": not first},
                "stateful": {"enabled": stateful and not first},
            },
            "checks": {name: {"enabled": False} for name in excluded},
            "operations": [
                {
                    "include-path-regex": OFFICIAL_PATHS,
                    "checks": {name: {"enabled": False} for name in OFFICIAL_EXCLUDED_CHECKS},
                }
            ],
        }
    )


def _load(target: ASGIApp | str, config: SchemathesisConfig, include: str | None) -> Any:
    if isinstance(target, str):
        schema = schemathesis.openapi.from_url(f"{target}/openapi.yaml", config=config)
    else:
        schema = schemathesis.openapi.from_asgi("/openapi.yaml", target, config=config)
    if include is None:
        return schema
    # As an exclusion: with [[operations]] entries in the configuration, schemathesis ORs an
    # include filter with its own (which keeps every operation), so include() would keep all.
    pattern = re.compile(include)
    return schema.exclude(func=lambda ctx: pattern.search(ctx.operation.label) is None)


def _round(
    target: ASGIApp | str,
    report: Report,
    max_examples: int,
    seed: int,
    *,
    first: bool,
    include: str | None,
) -> int:
    """One engine run; returns the number of cases it ran."""
    # The stateful phase follows links between operations, which a filter may cut.
    config = _config(max_examples, seed, first=first, stateful=include is None, excluded=report.excluded)
    schema = _load(target, config, include)
    creds, security = credentials(), security_of()

    @schema.auth()
    class SurfaceAuth:
        """The credential of the scheme each operation names, none for public operations.
        schemathesis caches what ``get`` returns across operations, so ``set`` picks."""

        def get(self, case: schemathesis.Case, context: object) -> dict[str, str]:
            return creds

        def set(self, case: schemathesis.Case, data: dict[str, str], context: object) -> None:
            schemes = security.get((case.operation.path, case.operation.method.upper()), [])
            unknown = [name for name in schemes if name not in data]
            if unknown:
                raise RuntimeError(f"no credential for security scheme {unknown[0]}: add it to credentials()")
            if schemes and data[schemes[0]]:
                case.headers = {**(case.headers or {}), "Authorization": data[schemes[0]]}

    before = report.total
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            report.record(event)
        elif isinstance(event, events.NonFatalError):
            report.errors.append(f"{event.label}: {event.info.title}: {event.info.message}"[:500])
        elif isinstance(event, events.FatalError):
            report.errors.append(f"fatal: {event.exception!r}")
    return report.total - before


def fuzz(
    cases: int,
    *,
    seed: int = 1,
    live: bool = False,
    include: str | None = None,
    app_factory: Callable[[Backend], ASGIApp] | None = None,
    progress: Callable[[str], None] = lambda line: None,
    gateway: str = "seed",
) -> Report:
    """Run at least ``cases`` generated cases over every operation the server documents (or
    those whose "METHOD /path" matches the regular expression ``include``); the server's
    gateway surfaces answer as the ``gateway`` profile says, and it documents only those of
    its own profile."""
    backend = new_backend(gateway)
    app = (app_factory or mock_app)(backend)
    served = yaml.safe_load(served_document(backend))["paths"]
    documented = [
        f"{method.upper()} {path}" for path, item in served.items() for method in item if method in METHODS
    ]
    documented = [op for op in documented if include is None or re.search(include, op)]
    operations = len(documented)
    excluded = EXCLUDED_CHECKS if gateway == "seed" else EXCLUDED_CHECKS + GATEWAY_EXCLUDED_CHECKS
    report = Report(documented=documented, excluded=excluded)
    started = time.perf_counter()
    with _target(app, live) as target:
        ran = _round(target, report, 1, seed, first=True, include=include)
        report.rounds = 1
        progress(f"round 1 (examples, coverage): {ran} cases")
        while (report.rounds < 2 or report.total < cases) and report.rounds <= MAX_ROUNDS:
            per_operation = max(MIN_PER_OPERATION, math.ceil((cases - report.total) / operations))
            ran = _round(target, report, per_operation, seed + report.rounds, first=False, include=include)
            report.rounds += 1
            progress(f"round {report.rounds} (fuzzing, stateful, {per_operation} per operation): {ran} cases")
    report.seconds = time.perf_counter() - started
    backend.close()
    return report


def as_served(app: ASGIApp) -> ASGIApp:
    """``app`` as a server runs it: an exception that escapes it (the mock logs it and has sent
    its 500 already) ends the request, not the client, so in process a crash counts as the
    server error it is."""

    async def served(scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await app(scope, receive, tracking)
        except Exception:
            if not started:
                await send({"type": "http.response.start", "status": 500, "headers": []})
                await send({"type": "http.response.body", "body": b"Internal Server Error"})

    return served


@contextmanager
def _target(app: ASGIApp, live: bool) -> Iterator[ASGIApp | str]:
    if not live:
        yield as_served(app)
        return
    with LiveServer(app) as server:
        yield server.url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=10_000, help="generated cases to run at least")
    parser.add_argument("--quick", action="store_true", help=f"the CI budget: {QUICK_CASES} cases")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--live", action="store_true", help="fuzz a uvicorn server on 127.0.0.1")
    parser.add_argument("--include", metavar="REGEX", help='only operations whose "METHOD /path" matches')
    parser.add_argument("--gateway", default="seed", help="the gateway profile: seed, ppwapi or new-api")
    args = parser.parse_args(argv)
    target = QUICK_CASES if args.quick else args.cases
    report = fuzz(
        target,
        seed=args.seed,
        live=args.live,
        include=args.include,
        progress=lambda line: print(line, flush=True),
        gateway=args.gateway,
    )
    print(report.render())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
