"""The control API under ``/__mockkling/``: configure the mock over HTTP, JSON in and out.

Reset, tasks and their fates, the clock, fault rules, the request journal and the limits:
the same controls a test reaches on the Backend from Python. Only loopback clients may use it
unless ``control_remote`` is set, and when an admin token is configured every call must carry
``Authorization: Bearer <token>``. Its errors have their own body, ``{"error", "message"}``.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..backend import Backend
from ..clock import ManualClock
from ..errors import KlingError
from ..fates import NEVER, FateError, FateRule, as_fate
from ..faults import FaultRule
from ..jsonio import JSONResponse, read_json_object
from ..limits import Limits
from ..rules import RuleError, RuleRegistry
from ..tasks import RANK, Task

PREFIX: Final = "/__mockkling"
PREFIXES: Final = (f"{PREFIX}/",)
# Client "addresses" of in-process test clients (no socket): Starlette's and schemathesis's
# TestClient say "testclient". A server on a socket always reports an IP address.
LOCAL_NAMES: Final = frozenset({"localhost", "testclient"})


def render_error(backend: Backend, error: KlingError) -> Response:
    slug = HTTPStatus(error.http_status).phrase.lower().replace(" ", "_").replace("-", "_")
    return JSONResponse(
        {"error": slug, "message": error.message}, status_code=error.http_status, headers=error.headers
    )


def is_local(client: tuple[str, int] | None) -> bool:
    """Whether a request comes from this machine (loopback, or an in-process client)."""
    if client is None:
        return True  # a Unix socket, or a transport that has no peer address
    host = client[0]
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return host in LOCAL_NAMES


def check_access(backend: Backend, request: Request) -> None:
    """403 for a remote client unless allowed; 401 without the admin token when one is set."""
    if not backend.config.control_remote and not is_local(
        None if request.client is None else (request.client.host, request.client.port)
    ):
        raise KlingError(
            1103, "The control API answers loopback clients only (set control_remote to allow others)"
        )
    token = backend.config.admin_token
    if not token:
        return
    header = request.headers.get("authorization", "").strip()
    if not header:
        raise KlingError(1001, "The control API needs 'Authorization: Bearer <admin token>'")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise KlingError(1000, "The admin token is wrong")


def _bad(message: str) -> KlingError:
    return KlingError(1201, message)


def task_detail(task: Task, now_ms: int) -> dict[str, Any]:
    """A task as the control API shows it: its public status and the schedule behind it."""
    return {
        "task_id": task.task_id,
        "account": task.account,
        "action": task.action,
        "model": task.model,
        "mode": task.mode,
        "duration": task.duration,
        "external_task_id": task.external_task_id,
        "status": task.status(now_ms),
        "status_msg": task.status_msg,
        "outcome": task.outcome,
        "created_at": task.created_ms,
        "processing_at": None if task.processing_ms >= NEVER else task.processing_ms,
        "done_at": None if task.done_ms >= NEVER else task.done_ms,
        "error_code": (task.extra or {}).get("error_code"),
    }


@dataclass(frozen=True, slots=True)
class RuleKind:
    """A kind of rule the control API lists, adds, clears and removes under ``/{plural}``."""

    plural: str  # the path, and the list's key in its body
    noun: str  # what a 404 says is missing
    rules: Callable[[Backend], RuleRegistry[Any, Any]]
    parse: Callable[[Mapping[str, Any]], Any]  # a rule from a request body
    add_operation: str  # the operationId whose schema checks that body
    extra: Callable[[Any], dict[str, Any]] = lambda rules: {}  # more of the list's body


FATE_RULES: Final = RuleKind("fates", "fate rule", lambda b: b.fates, FateRule.from_dict, "addFateRule")
FAULT_RULES: Final = RuleKind(
    "faults",
    "fault rule",
    lambda b: b.faults,
    FaultRule.from_dict,
    "addFault",
    lambda faults: {"enabled": faults.enabled},
)


def _rule_id(request: Request) -> int:
    raw = request.path_params["rule_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise KlingError(1203, f"no rule {raw[:50]!r}")
    return int(raw)


def routes(backend: Backend) -> list[BaseRoute]:
    spec = backend.spec
    Handler = Callable[[Request], Awaitable[Response]]

    def guarded(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            check_access(backend, request)
            return await handler(request)

        return endpoint

    async def body_of(request: Request, operation_id: str) -> dict[str, Any]:
        body = await read_json_object(request, backend.config.max_body_bytes)
        spec.validate_body(operation_id, body)
        return body

    # -- state --------------------------------------------------------------------------------

    async def reset(request: Request) -> Response:
        backend.reset()
        return JSONResponse({"reset": True})

    async def list_tasks(request: Request) -> Response:
        query = request.query_params
        status = query.get("status")
        if status is not None and status not in RANK:
            raise _bad(f"status must be one of: {', '.join(RANK)}")
        limit = spec.query_int("listControlTasks", "limit", query.get("limit"))
        account, action = query.get("account"), query.get("action")
        now = backend.now_ms()
        found = []
        for task in reversed(list(backend.tasks)):
            if (
                (account is None or task.account == account)
                and (action is None or task.action == action)
                and (status is None or task.status(now) == status)
            ):
                found.append(task_detail(task, now))
                if len(found) >= limit:
                    break
        return JSONResponse({"tasks": found})

    async def get_task(request: Request) -> Response:
        task = backend.tasks.get(request.path_params["task_id"])
        if task is None:
            raise KlingError(1203, f"task {request.path_params['task_id'][:100]} does not exist")
        return JSONResponse(task_detail(task, backend.now_ms()))

    async def set_fate(request: Request) -> Response:
        body = await body_of(request, "setTaskFate")
        try:
            fate = as_fate(body, {})
            task = backend.set_fate(request.path_params["task_id"], fate)
        except FateError as exc:
            raise KlingError(1201, str(exc), http_status=409) from None
        except RuleError as exc:
            raise _bad(str(exc)) from None
        return JSONResponse(task_detail(task, backend.now_ms()))

    # -- the clock ----------------------------------------------------------------------------

    def clock_view() -> dict[str, Any]:
        return {"now_ms": backend.now_ms(), "manual": isinstance(backend.clock, ManualClock)}

    async def get_clock(request: Request) -> Response:
        return JSONResponse(clock_view())

    async def advance_clock(request: Request) -> Response:
        body = await body_of(request, "advanceClock")
        if not clock_view()["manual"]:
            backend.use_manual_clock()
        backend.advance(body["seconds"])
        return JSONResponse(clock_view())

    # -- fate rules and fault rules: the same four calls for each ------------------------------

    def rule_routes(kind: RuleKind) -> list[tuple[str, Handler, str]]:
        async def list_rules(request: Request) -> Response:
            rules = kind.rules(backend)
            return JSONResponse({**kind.extra(rules), kind.plural: [r.to_dict() for r in rules]})

        async def add_rule(request: Request) -> Response:
            body = await body_of(request, kind.add_operation)
            try:
                rule = kind.rules(backend).add(kind.parse(body))
            except RuleError as exc:
                raise _bad(str(exc)) from None
            return JSONResponse(rule.to_dict(), status_code=201)

        async def clear_rules(request: Request) -> Response:
            return JSONResponse({"removed": kind.rules(backend).clear()})

        async def remove_rule(request: Request) -> Response:
            if not kind.rules(backend).remove(_rule_id(request)):
                raise KlingError(1203, f"no {kind.noun} {request.path_params['rule_id'][:50]}")
            return JSONResponse({"removed": 1})

        path = f"/{kind.plural}"
        return [
            (path, list_rules, "GET"),
            (path, add_rule, "POST"),
            (path, clear_rules, "DELETE"),
            (f"{path}/{{rule_id}}", remove_rule, "DELETE"),
        ]

    # -- the journal --------------------------------------------------------------------------

    async def get_journal(request: Request) -> Response:
        query = request.query_params
        ints = {
            name: spec.query_int("getJournal", name, query[name])
            for name in ("status", "since", "limit")
            if name in query
        }
        entries = backend.journal.find(
            method=query.get("method"), path=query.get("path"), account=query.get("account"), **ints
        )
        return JSONResponse({"requests": [e.to_dict() for e in entries]})

    async def clear_journal(request: Request) -> Response:
        cleared = len(backend.journal)
        backend.journal.clear()
        return JSONResponse({"cleared": cleared})

    # -- limits -------------------------------------------------------------------------------

    def limits_view() -> dict[str, Any]:
        limiter = backend.limits
        return {
            "limits": limiter.limits.to_dict(),
            "usage": {account: limiter.usage(account) for account in limiter.accounts_in_use()},
        }

    async def get_limits(request: Request) -> Response:
        return JSONResponse(limits_view())

    async def set_limits(request: Request) -> Response:
        body = await body_of(request, "setLimits")
        try:
            backend.limits.set(Limits.from_dict(body))
        except ValueError as exc:
            raise _bad(str(exc)) from None
        return JSONResponse(limits_view())

    table: list[tuple[str, Handler, str]] = [
        ("/reset", reset, "POST"),
        ("/tasks", list_tasks, "GET"),
        ("/tasks/{task_id}", get_task, "GET"),
        ("/tasks/{task_id}/fate", set_fate, "PUT"),
        *rule_routes(FATE_RULES),
        ("/clock", get_clock, "GET"),
        ("/clock/advance", advance_clock, "POST"),
        *rule_routes(FAULT_RULES),
        ("/journal", get_journal, "GET"),
        ("/journal", clear_journal, "DELETE"),
        ("/limits", get_limits, "GET"),
        ("/limits", set_limits, "PUT"),
    ]
    # One Route per path, dispatching on the method, so a wrong method answers 405 with Allow.
    by_path: dict[str, dict[str, Handler]] = {}
    for path, handler, method in table:
        by_path.setdefault(path, {})[method] = guarded(handler)

    out: list[BaseRoute] = []
    for path, handlers in by_path.items():

        async def dispatch(request: Request, handlers: dict[str, Handler] = handlers) -> Response:
            return await handlers["GET" if request.method == "HEAD" else request.method](request)

        out.append(Route(PREFIX + path, dispatch, methods=list(handlers)))
    return out
