"""A test's handle on a mock, and a live server that a whole test session shares.

The pytest plugin (:mod:`mockkling.plugin`) hands these out as fixtures; nothing here imports
pytest, so unittest suites and scripts use the same objects::

    with KlingMock.in_process(queue_seconds=0, run_seconds=1) as mock:
        created = mock.client.post("/v1/videos/text2video", json={"prompt": "a cat"})
        mock.advance(1)
"""

from __future__ import annotations

import functools
import itertools
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from . import webhooks
from .app import create_app
from .auth import make_jwt
from .backend import Backend
from .clock import ManualClock
from .config import Config, ConfigError, FailRule, Timing, gateway_profile
from .fates import Fate, FateRules
from .fault_rules import FaultRule, FaultSet, as_rule
from .journal import Journal
from .jsonio import JSONResponse
from .limits import Limiter, Limits
from .namespaces import HEADER, HEADER_BYTES
from .server import LiveServer
from .tasks import Task
from .tls import TLSFiles, trust_env
from .transport import AsyncASGITransport, SyncASGITransport

# The in-process mock's address. ".test" never resolves (RFC 2606), so nothing can leak out.
IN_PROCESS_URL = "http://mockkling.test"

# What a ``kling_mock`` marker (or KlingMock.in_process) may set, and what each does.
OPTIONS: dict[str, str] = {
    "queue_seconds": "seconds a task stays submitted",
    "run_seconds": "seconds a task stays processing",
    "timings": 'per "model" or "model:mode" timings: {"kling-v1:pro": (0, 20)}',
    "fail_words": "tasks whose prompt contains one of these words end failed (moderation)",
    "seed": "seed for task and request ids",
    "accounts": "{access_key: secret_key}: exactly these accounts (no default account)",
    "api_keys": "raw keys (sk-...): a list (each its own account) or {key: access_key}",
    "clock": '"manual" (default: time moves only on advance()) or "system" (wall clock)',
    "faults": 'fault rules, in order: the --fault syntax ("POST /v1/videos/* 1303 x2"), dicts or FaultRules',
    "limits": 'per-account limits: a Limits or its fields, {"rate": 5, "concurrency": 2}',
    "polls_per_status": "tasks move one status every N queries of them, not with the clock",
    "gateway": 'how the gateway surfaces answer: "seed" (default), "ppwapi" or "new-api"',
    "webhook_secret": 'whsec_ secret(s) signing callbacks: one, a list (a rotation), "" for none, '
    "or {access_key: secret}",
    "model_api": 'readings of the model-in-path design, {"string_duration": "accept"} '
    "(docs/model-in-path-api.md)",
}
# Options of the pytest fixture and mockkling.intercept() beyond the mock's own configuration.
HARNESS_OPTIONS: dict[str, str] = {
    "intercept": "True, or a list of more hosts (your gateway's): answer calls to the Kling hosts",
    "other_hosts": '"pass" (default) or "refuse": what interception does with every other host',
    "sleep": '"virtual" (default on the manual clock: sleeps move the clock) or "real"',
}


def configure(config: Config | None = None, **options: Any) -> tuple[Config, str]:
    """``config`` with ``options`` (see :data:`OPTIONS`) applied, and the clock kind asked for.

    Raises ConfigError naming the option on an unknown option or a bad value."""
    config = config or Config()
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        known = ", ".join([*OPTIONS, *HARNESS_OPTIONS])
        raise ConfigError(f"unknown kling_mock option(s) {unknown}; known: {known}")
    timing = config.timing
    if "queue_seconds" in options or "run_seconds" in options:
        timing = Timing(
            options.get("queue_seconds", timing.queue_seconds), options.get("run_seconds", timing.run_seconds)
        )
    changes: dict[str, Any] = {"timing": timing}
    if "timings" in options:
        changes["timings"] = {**config.timings, **_timings(options["timings"])}
    if "fail_words" in options:
        words = _strings(options["fail_words"], "fail_words")
        changes["fail_rules"] = [*config.fail_rules, *(FailRule(word) for word in words)]
    if "seed" in options:
        seed = options["seed"]
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ConfigError(f"seed must be an integer or None, not {seed!r}")
        changes["seed"] = seed
    if "accounts" in options:
        accounts = options["accounts"]
        if not isinstance(accounts, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in accounts.items()
        ):
            raise ConfigError("accounts must be a {access_key: secret_key} dict of strings")
        changes["accounts"] = dict(accounts)
        changes["api_keys"] = {k: a for k, a in config.api_keys.items() if a in accounts}
    if "api_keys" in options:
        keys = options["api_keys"]
        if isinstance(keys, Mapping):
            pairs = {str(k): str(v) for k, v in keys.items()}
        else:
            pairs = {k: k for k in _strings(keys, "api_keys")}
        changes["api_keys"] = {**changes.get("api_keys", config.api_keys), **pairs}
    if "polls_per_status" in options:
        polls = options["polls_per_status"]
        if polls is not None and (isinstance(polls, bool) or not isinstance(polls, int) or polls < 1):
            raise ConfigError(f"polls_per_status must be an integer >= 1 or None, not {polls!r}")
        changes["polls_per_status"] = polls
    try:
        if "faults" in options:
            rules = options["faults"]
            rules = [rules] if isinstance(rules, str | Mapping | FaultRule) else list(rules)
            changes["faults"] = [*config.faults, *(as_rule(rule) for rule in rules)]
        if "limits" in options:
            limits = options["limits"]
            changes["limits"] = limits if isinstance(limits, Limits) else Limits.from_dict(limits)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"kling_mock: {exc}") from None
    if "gateway" in options:
        changes["gateway"] = gateway_profile(options["gateway"], "gateway")
    if "webhook_secret" in options:
        secret = options["webhook_secret"]
        try:
            if isinstance(secret, Mapping):
                own = {str(k): config.merge({"webhook_secret": v}).webhook_secret for k, v in secret.items()}
                changes["webhook_secrets"] = {**config.webhook_secrets, **own}
            else:
                changes["webhook_secret"] = config.merge({"webhook_secret": secret}).webhook_secret
        except ConfigError as exc:
            raise ConfigError(f"webhook_secret: {exc}") from None
    if "model_api" in options:
        changes["model_api"] = config.merge({"model_api": options["model_api"]}, source="model_api").model_api
    clock = options.get("clock", "manual")
    if clock not in ("manual", "system"):
        raise ConfigError(f'clock must be "manual" or "system", not {clock!r}')
    return replace(config, **changes).with_defaults(), clock


def _strings(value: Any, name: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigError(f"{name} must be a list of strings, not {value!r}")
    items = list(value)
    if not all(isinstance(item, str) and item for item in items):
        raise ConfigError(f"{name} must be a list of non-empty strings, not {value!r}")
    return items


def _timings(value: Any) -> dict[str, Timing]:
    if not isinstance(value, Mapping):
        raise ConfigError('timings must be a dict such as {"kling-v1:pro": (0, 20)}')
    out: dict[str, Timing] = {}
    for key, timing in value.items():
        if isinstance(timing, Timing):
            out[str(key)] = timing
        elif isinstance(timing, tuple | list) and len(timing) == 2:
            out[str(key)] = Timing(*timing)
        else:
            raise ConfigError(f"timings[{key!r}] must be a Timing or a (queue_seconds, run_seconds) pair")
    return out


@functools.lru_cache(maxsize=8)
def _ssl_context(ca_file: str | None) -> ssl.SSLContext:
    """One context per CA file (None: httpx's default trust), made once: loading a CA bundle
    costs tens of milliseconds, which every live test would otherwise pay for its client."""
    if ca_file is None:
        return httpx.create_ssl_context()
    return ssl.create_default_context(cafile=ca_file)


def new_backend(config: Config | None = None, **options: Any) -> Backend:
    """A backend configured by ``options``, on a manual clock unless ``clock="system"``."""
    config, clock = configure(config, **options)
    backend = Backend(config)
    if clock == "manual":
        backend.use_manual_clock()
    return backend


class KlingMock:
    """One test's mock: its backend and app, where to reach it, credentials, clock and clients.

    In process (``live=False``) the clients talk to the app directly, with no socket; live, they
    talk to a real server (HTTPS when ``ca_file`` is set, verified against that CA).
    """

    def __init__(
        self,
        backend: Backend,
        app: ASGIApp | None = None,
        *,
        base_url: str = IN_PROCESS_URL,
        live: bool = False,
        ca_file: Path | None = None,
        namespace: str | None = None,
    ) -> None:
        self.backend = backend
        # The namespace this test has on a shared server: its clients and transports send it.
        self.namespace = namespace
        self.app: ASGIApp = app if app is not None else create_app(backend)
        self.base_url = base_url.rstrip("/")
        self.live = live
        self.ca_file = ca_file
        self.access_key, self.secret_key = next(iter(backend.auth.accounts.items()), ("", ""))
        owned = [k for k, a in backend.auth.api_keys.items() if a == self.access_key]
        self.api_key = next(iter(owned or backend.auth.api_keys), "")
        self._client: httpx.Client | None = None
        self._api_client: httpx.Client | None = None
        self._transport: httpx.BaseTransport | None = None
        # Callback bodies carry result URLs: make them point where this mock is reached.
        if backend.config.public_url is None:
            backend.public_url = self.base_url

    @classmethod
    def in_process(cls, config: Config | None = None, **options: Any) -> KlingMock:
        """A fresh in-process mock; ``options`` as the ``kling_mock`` marker takes them."""
        return cls(new_backend(config, **options))

    def __repr__(self) -> str:
        return f"KlingMock(base_url={self.base_url!r}, live={self.live}, backend={self.backend!r})"

    # -- credentials ---------------------------------------------------------------------------

    def jwt(
        self,
        access_key: str | None = None,
        secret_key: str | None = None,
        *,
        ttl_seconds: int = 1800,
        now: float | None = None,
        nbf_offset: int = -5,
    ) -> str:
        """A token as the official SDK builds it, for the default account unless told otherwise."""
        return make_jwt(
            access_key or self.access_key,
            secret_key or self.secret_key,
            ttl_seconds=ttl_seconds,
            now=now,
            nbf_offset=nbf_offset,
        )

    def auth_headers(self, access_key: str | None = None, secret_key: str | None = None) -> dict[str, str]:
        """``{"Authorization": "Bearer <fresh JWT>"}`` for the default (or the given) account; the
        raw key when the mock has API keys but no account."""
        if access_key is None and not self.access_key and self.api_key:
            return {"Authorization": f"Bearer {self.api_key}"}
        return {"Authorization": f"Bearer {self.jwt(access_key, secret_key)}"}

    # -- the model-in-path design: API keys and signed callbacks --------------------------------

    def api_key_headers(self, key: str | None = None) -> dict[str, str]:
        """``{"Authorization": "Bearer <API key>"}``, the only credential the model-in-path
        routes take: the default account's key unless told otherwise."""
        return {"Authorization": f"Bearer {key or self.api_key}"}

    @property
    def webhook_secret(self) -> str | None:
        """The secret signing the default account's callbacks (the current one during a
        rotation), to configure a receiver with; None when they go unsigned."""
        account = self.access_key or self.backend.auth.api_keys.get(self.api_key, "")
        secrets = self.backend.webhook_secrets(account)
        return secrets[0] if secrets else None

    def verify_webhook(
        self,
        headers: Mapping[str, str],
        body: bytes | str,
        *,
        secret: str | None = None,
        now: float | None = None,
    ) -> Any:
        """Check a callback this mock sent as a receiver must (Standard Webhooks): signed with
        ``secret`` (default: :attr:`webhook_secret`), timestamped within 5 minutes of ``now``.
        Returns the parsed body; raises ``mockkling.webhooks.WebhookError`` saying what failed."""
        chosen = secret or self.webhook_secret
        if chosen is None:
            raise webhooks.WebhookError("this mock signs no callbacks: it has no webhook secret")
        return webhooks.verify(chosen, headers, body, now=now)

    # -- time ------------------------------------------------------------------------------------

    @property
    def manual_clock(self) -> bool:
        """Whether this mock's time moves only when told to (``clock="manual"``, the default)."""
        return isinstance(self.backend.clock, ManualClock)

    @property
    def clock(self) -> ManualClock:
        """The manual clock every task reads; TypeError if this mock runs on the wall clock."""
        clock = self.backend.clock
        if not isinstance(clock, ManualClock):
            raise TypeError('this mock runs on the wall clock (clock="system"); it has no manual clock')
        return clock

    def advance(self, seconds: float) -> int:
        """Move the clock forward ``seconds`` (instantly); return the new time in ms."""
        return self.clock.advance(seconds)

    # -- state -----------------------------------------------------------------------------------

    @property
    def tasks(self) -> list[Task]:
        """Every task the mock holds, oldest first."""
        return list(self.backend.tasks)

    def reset(self) -> None:
        """Forget every task; accounts, configuration and the clock stay."""
        self.backend.reset()

    # -- faults, limits, fates and the journal: the backend's own, as they are -------------------

    @property
    def faults(self) -> FaultSet:
        """The fault rules in force: ``mock.faults.add("POST /v1/videos/* 1303 x2")``."""
        return self.backend.faults

    @property
    def fates(self) -> FateRules:
        """Fates waiting for the next new tasks: ``mock.fates.add(Fate("failed"))``."""
        return self.backend.fates

    @property
    def limits(self) -> Limiter:
        """Per-account limits: ``mock.limits.set(rate=5)``, ``mock.limits.usage(account)``."""
        return self.backend.limits

    @property
    def journal(self) -> Journal:
        """What was requested: ``mock.journal.assert_requested(count=1, method="POST")``."""
        return self.backend.journal

    def set_fate(self, task_id: str, fate: Fate | str | dict[str, Any] | None = None, **values: Any) -> Task:
        """Reschedule a task (see ``Backend.set_fate``)."""
        return self.backend.set_fate(task_id, fate, **values)

    # -- HTTP ------------------------------------------------------------------------------------

    @property
    def verify(self) -> ssl.SSLContext:
        """What an httpx client should verify the server with: the mock's CA when it has one."""
        return _ssl_context(None if self.ca_file is None else str(self.ca_file))

    def trust_env(self) -> dict[str, str]:
        """Environment variables that make a child process (Python, requests, Node.js) trust
        this mock's CA; empty without HTTPS."""
        if self.ca_file is None:
            return {}
        return trust_env(self.ca_file)

    @property
    def transport(self) -> httpx.BaseTransport:
        """An httpx transport to this mock, to inject into the code under test; closed for you."""
        if self._transport is None:
            if self.live:
                self._transport = _Namespaced(httpx.HTTPTransport(verify=self.verify), self.namespace)
            else:
                self._transport = SyncASGITransport(self.app)
        return self._transport

    @property
    def async_transport(self) -> httpx.AsyncBaseTransport:
        """A new async httpx transport to this mock (an async client closes it)."""
        if not self.live:
            return AsyncASGITransport(self.app)
        return _AsyncNamespaced(httpx.AsyncHTTPTransport(verify=self.verify), self.namespace)

    @property
    def client(self) -> httpx.Client:
        """An ``httpx.Client`` on this mock, signed in as the default account; closed for you."""
        if self._client is None:
            self._client = httpx.Client(
                transport=self.transport, base_url=self.base_url, headers=self.auth_headers(), timeout=30
            )
        return self._client

    @property
    def api_client(self) -> httpx.Client:
        """An ``httpx.Client`` on this mock that sends the default account's API key, for the
        model-in-path routes (which refuse the JWT :attr:`client` sends); closed for you."""
        if self._api_client is None:
            self._api_client = httpx.Client(
                transport=self.transport, base_url=self.base_url, headers=self.api_key_headers(), timeout=30
            )
        return self._api_client

    def async_client(self) -> httpx.AsyncClient:
        """A new ``httpx.AsyncClient`` on this mock, signed in as the default account. Use it as
        ``async with mock.async_client() as client:`` so it closes on the loop that opened it."""
        return httpx.AsyncClient(
            transport=self.async_transport, base_url=self.base_url, headers=self.auth_headers(), timeout=30
        )

    def close(self) -> None:
        """Stop this mock: close the clients this handle made and the backend's callback sender."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._api_client is not None:
            self._api_client.close()
            self._api_client = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self.backend.close()

    def __enter__(self) -> KlingMock:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


async def _idle(scope: Scope, receive: Receive, send: Send) -> None:
    """What a shared server answers between tests: 503 / 5001, saying why."""
    if scope["type"] != "http":
        return
    body = {
        "code": 5001,
        "message": "no test is using this mockkling server right now",
        "request_id": "",
        "data": None,
    }
    await JSONResponse(body, status_code=503)(scope, receive, send)


# -- one namespace per test on the shared server (issue 20) ------------------------------------

# The namespaces the shared server gives its tests: "pytest-1", "pytest-2", ...
TEST_NAMESPACE_PREFIX = "pytest-"
_PREFIX_BYTES = TEST_NAMESPACE_PREFIX.encode()


class _Namespaced(httpx.BaseTransport):
    """A transport that sends a test's namespace with every request (unless it names one)."""

    def __init__(self, inner: httpx.BaseTransport, namespace: str | None) -> None:
        self.inner, self.namespace = inner, namespace

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.namespace is not None:
            request.headers.setdefault(HEADER, self.namespace)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class _AsyncNamespaced(httpx.AsyncBaseTransport):
    """The async :class:`_Namespaced`."""

    def __init__(self, inner: httpx.AsyncBaseTransport, namespace: str | None) -> None:
        self.inner, self.namespace = inner, namespace

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.namespace is not None:
            request.headers.setdefault(HEADER, self.namespace)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _gone_namespace(name: bytes) -> ASGIApp:
    """What a shared server answers a request of a test that has ended: 503 / 5001."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        shown = name.decode("latin-1")[:64]
        body = {
            "code": 5001,
            "message": f"the test of namespace {shown} has ended",
            "request_id": "",
            "data": None,
        }
        await JSONResponse(body, status_code=503)(scope, receive, send)

    return app


class SharedServer:
    """A live server that serves whichever app is mounted: started once per test session, with
    each test's own mock mounted for the length of that test (pytest-httpserver's model).

    Each mount is a namespace of its own (``pytest-N``): the test's clients and transports send
    ``X-Mockkling-Namespace: pytest-N``, and the server hands such a request to that test's
    mock only. A request of a test that has ended (a thread still polling, a late callback
    receiver) is answered 503 instead of reaching the next test's mock, so nothing carries
    over and no reset is needed between tests. A request without the header (the code under
    test, on its own client) goes to the test mounted now, as before; any other namespace is
    the mounted mock's own to serve."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls: TLSFiles | None = None) -> None:
        self.tls = tls
        self._mounted: tuple[bytes, ASGIApp] | None = None
        self._mounts = itertools.count(1)
        self._app: ASGIApp = _idle
        # uvicorn cannot tell a bound method's ASGI version; say it.
        options: dict[str, Any] = {"interface": "asgi3"}
        if tls is not None:
            options.update(ssl_certfile=str(tls.certfile), ssl_keyfile=str(tls.keyfile))
        self.server = LiveServer(self._dispatch, host=host, port=port, **options)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == HEADER_BYTES and value.startswith(_PREFIX_BYTES):
                    mounted = self._mounted
                    if mounted is None or mounted[0] != value:
                        app = _gone_namespace(value)
                    else:  # the test's own: its mock serves it in its default namespace
                        headers = [(n, v) for n, v in scope["headers"] if n != HEADER_BYTES]
                        scope = {**scope, "headers": headers}
                    break
        await app(scope, receive, send)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def running(self) -> bool:
        return self.server.running

    def start(self) -> SharedServer:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def mount(self, backend: Backend) -> KlingMock:
        """Serve ``backend`` from now on; return the handle a test uses."""
        backend.listening_on(self.server.host, self.server.port)
        namespace = f"{TEST_NAMESPACE_PREFIX}{next(self._mounts)}"
        mock = KlingMock(
            backend,
            base_url=self.url,
            live=True,
            ca_file=self.tls.ca_file if self.tls is not None else None,
            namespace=namespace,
        )
        self._mounted = (namespace.encode(), mock.app)
        self._app = mock.app
        return mock

    def unmount(self) -> None:
        self._mounted = None
        self._app = _idle

    def __enter__(self) -> SharedServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
