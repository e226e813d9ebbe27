"""The control API under ``/__mockkling/``: configure the mock over HTTP, JSON in and out.

Reset, tasks and their fates, the clock, fault rules, the request journal and the limits:
the same controls a test reaches on the Backend from Python. Only loopback clients may use it
unless ``control_remote`` is set, and when an admin token is configured every call must carry
``Authorization: Bearer <token>`` (or, from a browser, HTTP Basic with the token as password).
A browser page of another origin may not change anything (its ``Origin`` is refused). Its
errors have their own body, ``{"error", "message"}``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import urlsplit

from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..backend import Backend
from ..callbacks import USER_AGENT as CALLBACK_USER_AGENT
from ..clock import ManualClock
from ..errors import KlingError
from ..fates import NEVER, FateError, FateRule, as_fate
from ..fault_rules import FaultRule
from ..jsonio import JSONResponse, read_json_object
from ..limits import Limits
from ..rules import RuleError, RuleRegistry
from ..tasks import RANK, Task

PREFIX: Final = "/__mockkling"
PREFIXES: Final = (PREFIX,)  # the bare prefix too: it redirects to the dashboard
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


# Asks a browser for the admin token (any user name, the token as password): the dashboard.
CHALLENGE: Final = {"WWW-Authenticate": 'Basic realm="mockkling control API", charset="UTF-8"'}
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


def check_access(backend: Backend, request: Request) -> None:
    """403 for a remote client unless allowed, for the mock's own callback sender (whatever
    address it came through) and for a change asked by another site's page; 401 without the
    admin token when one is set."""
    if request.headers.get("user-agent") == CALLBACK_USER_AGENT:
        raise KlingError(1103, "A callback never reaches the control API")
    if not backend.config.control_remote and not is_local(
        None if request.client is None else (request.client.host, request.client.port)
    ):
        raise KlingError(
            1103, "The control API answers loopback clients only (set control_remote to allow others)"
        )
    if request.method not in SAFE_METHODS and _cross_origin(request):
        # A page on any site can make a browser post to 127.0.0.1 (a form needs no CORS).
        raise KlingError(1103, "The control API takes no changes from a page of another origin")
    if not backend.config.control_remote and _browser(request) and not _own_host(backend, request):
        # DNS rebinding: a page of evil.example whose name now points at 127.0.0.1 is "same
        # origin" to its browser; the Host it sends still names evil.example.
        raise KlingError(1103, "The control API answers a browser only under this server's own host name")
    token = backend.config.admin_token
    if not token:
        return
    header = request.headers.get("authorization", "").strip()
    if not header:
        raise KlingError(
            1001, "The control API needs 'Authorization: Bearer <admin token>'", headers=CHALLENGE
        )
    scheme, _, given = header.partition(" ")
    scheme = scheme.lower()
    secret = _basic_password(given) if scheme == "basic" else given.strip() if scheme == "bearer" else None
    if secret is None or not hmac.compare_digest(secret.encode(), token.encode()):
        raise KlingError(1000, "The admin token is wrong", headers=CHALLENGE)


def _basic_password(credentials: str) -> str | None:
    """The password of HTTP Basic credentials (``base64(user:password)``), None if malformed."""
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _user, colon, password = decoded.partition(":")
    return password if colon else None


def _browser(request: Request) -> bool:
    """Whether a browser sent the request: browsers add ``Origin`` to posts and ``Sec-Fetch-*``
    to everything; other clients send neither."""
    headers = request.headers
    return "origin" in headers or any(name.startswith("sec-fetch-") for name in headers)


def _own_host(backend: Backend, request: Request) -> bool:
    """Whether the Host a request names is this server's: a loopback address, ``localhost``,
    the host it was told to listen on, or its public URL's host."""
    host = urlsplit("//" + request.headers.get("host", "")).hostname or ""
    try:
        if ipaddress.ip_address(host).is_loopback:
            return True
    except ValueError:
        pass
    config = backend.config
    own = {"localhost", config.host.lower(), urlsplit(config.public_url or "").hostname or "localhost"}
    return host.rstrip(".") in own


def _cross_origin(request: Request) -> bool:
    """Whether a browser says the request comes from a page of another origin than this
    server's (clients other than browsers send no ``Origin``)."""
    origin = request.headers.get("origin")
    if origin is None:
        return False
    try:
        netloc = urlsplit(origin).netloc.lower()
    except ValueError:  # not a URL ("http://[x"): no page of this server sent it
        return True
    return not netloc or netloc != request.headers.get("host", "").lower()


def _bad(message: str) -> KlingError:
    return KlingError(1201, message)


def task_detail(backend: Backend, task: Task, now_ms: int) -> dict[str, Any]:
    """A task as the control API shows it: its public status and the schedule behind it (an
    account named by a raw API key shown masked, as the journal shows it)."""
    return {
        "task_id": task.task_id,
        "account": backend.account_label(task.account),
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


def _backend(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


async def _body(request: Request, operation_id: str) -> dict[str, Any]:
    backend = _backend(request)
    body = await read_json_object(request, backend.config.max_body_bytes)
    backend.spec.validate_body(operation_id, body)
    return body


class ControlEndpoint(HTTPEndpoint):
    """A control-API path: one method per HTTP verb (Starlette answers any other with 405 and
    ``Allow``); every call passes :func:`check_access` first."""

    async def dispatch(self) -> None:
        if self.scope["method"] in self._allowed_methods:
            request = Request(self.scope, receive=self.receive)
            check_access(_backend(request), request)
        await super().dispatch()


# -- state ------------------------------------------------------------------------------------


class Reset(ControlEndpoint):
    async def post(self, request: Request) -> Response:
        _backend(request).reset()
        return JSONResponse({"reset": True})


class Health(HTTPEndpoint):
    """Readiness for a load balancer (issue 20): no access check, for it asks from anywhere
    and it tells nothing but whether the mock and its state store can serve."""

    async def get(self, request: Request) -> Response:
        state = _backend(request).state
        try:
            state.ping()
        except KlingError as error:
            store = {"kind": state.kind, "reachable": False, "error": error.message}
            return JSONResponse({"ready": False, "store": store}, status_code=503)
        return JSONResponse({"ready": True, "store": {"kind": state.kind, "reachable": True}})


class Tasks(ControlEndpoint):
    async def get(self, request: Request) -> Response:
        backend = _backend(request)
        query = request.query_params
        status = query.get("status")
        if status is not None and status not in RANK:
            raise _bad(f"status must be one of: {', '.join(RANK)}")
        limit = backend.spec.query_int("listControlTasks", "limit", query.get("limit"))
        account, action = query.get("account"), query.get("action")
        now = backend.now_ms()
        found = []
        for task in reversed(list(backend.tasks)):
            if (
                (account is None or task.account == account)
                and (action is None or task.action == action)
                and (status is None or task.status(now) == status)
            ):
                found.append(task_detail(backend, task, now))
                if len(found) >= limit:
                    break
        return JSONResponse({"tasks": found})


class OneTask(ControlEndpoint):
    async def get(self, request: Request) -> Response:
        backend = _backend(request)
        task = backend.tasks.get(request.path_params["task_id"])
        if task is None:
            raise KlingError(1203, f"task {request.path_params['task_id'][:100]} does not exist")
        return JSONResponse(task_detail(backend, task, backend.now_ms()))


class TaskFate(ControlEndpoint):
    async def put(self, request: Request) -> Response:
        backend = _backend(request)
        body = await _body(request, "setTaskFate")
        try:
            task = backend.set_fate(request.path_params["task_id"], as_fate(body, {}))
        except FateError as exc:
            raise KlingError(1201, str(exc), http_status=409) from None
        except RuleError as exc:
            raise _bad(str(exc)) from None
        return JSONResponse(task_detail(backend, task, backend.now_ms()))


# -- the clock --------------------------------------------------------------------------------


def clock_view(backend: Backend) -> dict[str, Any]:
    return {"now_ms": backend.now_ms(), "manual": isinstance(backend.clock, ManualClock)}


class ClockEndpoint(ControlEndpoint):
    async def get(self, request: Request) -> Response:
        return JSONResponse(clock_view(_backend(request)))


class ClockAdvance(ControlEndpoint):
    async def post(self, request: Request) -> Response:
        backend = _backend(request)
        body = await _body(request, "advanceClock")
        if not isinstance(backend.clock, ManualClock):
            backend.use_manual_clock()
        backend.advance(body["seconds"])
        return JSONResponse(clock_view(backend))


# -- fate rules and fault rules: the same four calls for each ---------------------------------


def rule_endpoints(kind: RuleKind) -> list[Route]:
    """``/{plural}`` (list, add, clear) and ``/{plural}/{rule_id}`` (remove) for one kind."""

    class Collection(ControlEndpoint):
        async def get(self, request: Request) -> Response:
            rules = kind.rules(_backend(request))
            return JSONResponse({**kind.extra(rules), kind.plural: [r.to_dict() for r in rules]})

        async def post(self, request: Request) -> Response:
            body = await _body(request, kind.add_operation)
            try:
                rule = kind.rules(_backend(request)).add(kind.parse(body))
            except RuleError as exc:
                raise _bad(str(exc)) from None
            return JSONResponse(rule.to_dict(), status_code=201)

        async def delete(self, request: Request) -> Response:
            return JSONResponse({"removed": kind.rules(_backend(request)).clear()})

    class One(ControlEndpoint):
        async def delete(self, request: Request) -> Response:
            if not kind.rules(_backend(request)).remove(_rule_id(request)):
                raise KlingError(1203, f"no {kind.noun} {request.path_params['rule_id'][:50]}")
            return JSONResponse({"removed": 1})

    path = f"{PREFIX}/{kind.plural}"
    return [Route(path, Collection), Route(f"{path}/{{rule_id}}", One)]


# -- the journal ------------------------------------------------------------------------------


class JournalEndpoint(ControlEndpoint):
    async def get(self, request: Request) -> Response:
        backend = _backend(request)
        query = request.query_params
        ints = {
            name: backend.spec.query_int("getJournal", name, query[name])
            for name in ("status", "since", "limit")
            if name in query
        }
        entries = backend.journal.find(
            method=query.get("method"), path=query.get("path"), account=query.get("account"), **ints
        )
        return JSONResponse({"requests": [e.to_dict() for e in entries]})

    async def delete(self, request: Request) -> Response:
        journal = _backend(request).journal
        cleared = len(journal)
        journal.clear()
        return JSONResponse({"cleared": cleared})


class JournalEntryEndpoint(ControlEndpoint):
    """One recorded request in full, the answer with it (the dashboard shows it on a click)."""

    async def get(self, request: Request) -> Response:
        raw = request.path_params["entry_id"]
        entry = _backend(request).journal.get(int(raw)) if raw.isdigit() and len(raw) <= 18 else None
        if entry is None:
            raise KlingError(1203, f"no journal entry {raw[:50]!r} (never recorded, or gone from the ring)")
        return JSONResponse(entry.to_dict())


# -- limits -----------------------------------------------------------------------------------


def limits_view(backend: Backend) -> dict[str, Any]:
    limiter = backend.limits
    configured = limiter.limits.to_dict()
    if isinstance(configured.get("accounts"), dict):
        configured["accounts"] = {
            backend.account_label(account) or account: value
            for account, value in configured["accounts"].items()
        }
    return {
        "limits": configured,
        "usage": {
            backend.account_label(account) or account: limiter.usage(account)
            for account in limiter.accounts_in_use()
        },
    }


class LimitsEndpoint(ControlEndpoint):
    async def get(self, request: Request) -> Response:
        return JSONResponse(limits_view(_backend(request)))

    async def put(self, request: Request) -> Response:
        backend = _backend(request)
        body = await _body(request, "setLimits")
        try:
            backend.limits.set(Limits.from_dict(body))
        except ValueError as exc:
            raise _bad(str(exc)) from None
        return JSONResponse(limits_view(backend))


def routes() -> list[BaseRoute]:
    return [
        Route(f"{PREFIX}/reset", Reset),
        Route(f"{PREFIX}/health", Health),
        Route(f"{PREFIX}/tasks", Tasks),
        Route(f"{PREFIX}/tasks/{{task_id}}", OneTask),
        Route(f"{PREFIX}/tasks/{{task_id}}/fate", TaskFate),
        *rule_endpoints(FATE_RULES),
        Route(f"{PREFIX}/clock", ClockEndpoint),
        Route(f"{PREFIX}/clock/advance", ClockAdvance),
        *rule_endpoints(FAULT_RULES),
        Route(f"{PREFIX}/journal", JournalEndpoint),
        Route(f"{PREFIX}/journal/{{entry_id}}", JournalEntryEndpoint),
        Route(f"{PREFIX}/limits", LimitsEndpoint),
    ]
