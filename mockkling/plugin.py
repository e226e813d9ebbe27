"""The pytest plugin (entry point ``pytest11``, active once mockkling is installed).

Fixtures, after pytest-httpserver's design:

- ``kling_mock``: an in-process mock (no socket) on a manual clock, fresh for each test;
- ``kling_mock_live`` / ``kling_mock_live_https``: the same handle on a real server on a free
  loopback port, shared by the session (one per xdist worker) and reset for each test;
- ``kling_mock_server`` / ``kling_mock_https_server``: those session servers themselves;
- overridable configuration: ``kling_mock_config`` (the Config each test starts from),
  ``kling_mock_listen_address`` (MOCKKLING_PYTEST_HOST / MOCKKLING_PYTEST_PORT) and
  ``kling_mock_tls`` (the HTTPS certificate; a throwaway CA by default).

The ``@pytest.mark.kling_mock(...)`` marker configures a test's mock; markers on the module, the
class and the test combine, the closest winning.

The fixtures import the server machinery (uvicorn, the certificate code) only when used.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

# Loaded with the package already (mockkling/__init__.py): importing them here costs nothing.
from .config import Config, ConfigError
from .webhooks import verify

if TYPE_CHECKING:
    from .testing import KlingMock, SharedServer
    from .tls import TLSFiles

MARKER = "kling_mock"
HOST_ENV, PORT_ENV, HTTPS_PORT_ENV = (
    "MOCKKLING_PYTEST_HOST",
    "MOCKKLING_PYTEST_PORT",
    "MOCKKLING_PYTEST_HTTPS_PORT",
)

# The shared servers a session started, kept on that session's config: a session run in
# process by another (pytester) must stop its own servers at its end, not the outer one's.
_SERVERS = pytest.StashKey["list[SharedServer]"]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): configure the test's mockkling mock: queue_seconds, run_seconds, "
        "timings, fail_words, seed, accounts, api_keys, clock ('manual' or 'system'), faults, limits, "
        "polls_per_status, gateway ('seed', 'ppwapi' or 'new-api'), webhook_secret, model_api, "
        "intercept, other_hosts, sleep ('virtual' or 'real').",
    )


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A safety net: stop any shared server of this session a fixture teardown did not."""
    servers = session.config.stash.get(_SERVERS, [])
    while servers:
        servers.pop().stop()


def marker_options(node: pytest.Item) -> dict[str, Any]:
    """The ``kling_mock`` markers' keyword options, module first, so the closest one wins."""
    options: dict[str, Any] = {}
    for marker in reversed(list(node.iter_markers(MARKER))):
        if marker.args:
            pytest.fail(
                f"@pytest.mark.{MARKER} takes keyword options only, not {marker.args!r}", pytrace=False
            )
        options.update(marker.kwargs)
    return options


def _new_backend(request: pytest.FixtureRequest, config: Config, options: dict[str, Any]) -> Any:
    from .testing import new_backend

    try:
        return new_backend(config, **options)
    except ConfigError as exc:
        problem = str(exc)
    pytest.fail(f"@pytest.mark.{MARKER}: {problem}", pytrace=False)


def _harness(options: dict[str, Any]) -> dict[str, Any]:
    """Take the fixture's own options (interception, sleeps) out of the marker's options."""
    from .testing import HARNESS_OPTIONS

    return {name: options.pop(name) for name in list(options) if name in HARNESS_OPTIONS}


# -- signed callbacks --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kling_verify_webhook() -> Any:
    """``verify(secret, headers, body)``: check a callback the way a receiver must (Standard
    Webhooks, as Kling signs them): the headers in any case, the timestamp within 5 minutes, a
    ``v1`` signature under the secret (or any of a list). Returns the parsed body, raises
    ``mockkling.webhooks.WebhookError``. For a receiver's own tests, e.g. on what it stored; the
    mock's secret is ``kling_mock.webhook_secret``."""
    return verify


# -- configuration fixtures: override any of them in a conftest.py ---------------------------------


@pytest.fixture
def kling_mock_config() -> Config:
    """The configuration each test's mock starts from (before its marker). Override it to give
    every test, say, your own accounts or timings."""
    return Config()


@pytest.fixture(scope="session")
def kling_mock_listen_address() -> tuple[str, int]:
    """Where the shared live server listens: loopback, a free port (0), unless MOCKKLING_PYTEST_HOST
    or MOCKKLING_PYTEST_PORT say otherwise. A fixed port cannot be shared by xdist workers."""
    return os.environ.get(HOST_ENV, "127.0.0.1"), int(os.environ.get(PORT_ENV, "0"))


@pytest.fixture(scope="session")
def kling_mock_tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """The HTTPS server's certificate: by default a throwaway CA and a loopback certificate made
    for this session. Override it to return your own ``TLSFiles(certfile, keyfile, ca_file)``."""
    from .tls import make_self_signed

    return make_self_signed(tmp_path_factory.mktemp("mockkling-tls"))


# -- session servers -------------------------------------------------------------------------------


def _serve(config: pytest.Config, host: str, port: int, tls: TLSFiles | None) -> Iterator[SharedServer]:
    from .testing import SharedServer

    servers = config.stash.setdefault(_SERVERS, [])
    server = SharedServer(host, port, tls).start()
    servers.append(server)
    try:
        yield server
    finally:
        server.stop()
        if server in servers:
            servers.remove(server)


@pytest.fixture(scope="session")
def kling_mock_server(
    request: pytest.FixtureRequest, kling_mock_listen_address: tuple[str, int]
) -> Iterator[SharedServer]:
    """The session's live HTTP server (started on first use, stopped at the end)."""
    yield from _serve(request.config, *kling_mock_listen_address, None)


@pytest.fixture(scope="session")
def kling_mock_https_server(
    request: pytest.FixtureRequest, kling_mock_listen_address: tuple[str, int], kling_mock_tls: TLSFiles
) -> Iterator[SharedServer]:
    """The session's live HTTPS server, on its own free port (MOCKKLING_PYTEST_HTTPS_PORT fixes it)."""
    host = kling_mock_listen_address[0]
    yield from _serve(request.config, host, int(os.environ.get(HTTPS_PORT_ENV, "0")), kling_mock_tls)


# -- the handles -----------------------------------------------------------------------------------


@pytest.fixture
def kling_mock(request: pytest.FixtureRequest, kling_mock_config: Config) -> Iterator[KlingMock]:
    """An in-process mock, fresh for this test: ``.client`` and ``.async_client()`` talk to it with
    no socket, ``.advance(s)`` moves its clock, ``.backend`` is everything else."""
    from .testing import KlingMock

    options = marker_options(request.node)
    harness = _harness(options)
    with contextlib.ExitStack() as stack:
        mock = stack.enter_context(KlingMock(_new_backend(request, kling_mock_config, options)))
        _sleeps(stack, harness, mock)
        hosts = harness.get("intercept")
        if hosts:
            from .interception import route_hosts

            extra = () if hosts is True else hosts
            stack.enter_context(route_hosts(mock, extra, harness.get("other_hosts", "pass")))
        yield mock


def _sleeps(stack: contextlib.ExitStack[Any], harness: dict[str, Any], mock: KlingMock) -> None:
    """On a manual clock, the test's sleeps move the clock, unless the marker says sleep="real"."""
    sleep = harness.get("sleep", "virtual")
    if sleep not in ("virtual", "real"):
        pytest.fail(f"@pytest.mark.{MARKER}: sleep must be 'virtual' or 'real'", pytrace=False)
    if sleep == "virtual" and mock.manual_clock:
        from .virtual_sleep import virtual_sleep

        stack.enter_context(virtual_sleep(mock.advance))


def _live(request: pytest.FixtureRequest, server: SharedServer, config: Config) -> Iterator[KlingMock]:
    options = marker_options(request.node)
    harness = _harness(options)
    if set(harness) - {"sleep"}:
        pytest.fail(
            f"@pytest.mark.{MARKER}: intercept and other_hosts are options of the in-process "
            "kling_mock fixture",
            pytrace=False,
        )
    mock = server.mount(_new_backend(request, config, options))
    try:
        with contextlib.ExitStack() as stack:
            # The server's threads (mockkling-PORT) keep real sleeps: only the test's move the clock.
            _sleeps(stack, harness, mock)
            yield mock
    finally:
        server.unmount()
        mock.close()


@pytest.fixture
def kling_mock_live(
    request: pytest.FixtureRequest, kling_mock_server: SharedServer, kling_mock_config: Config
) -> Iterator[KlingMock]:
    """A fresh mock for this test, served over real HTTP by the session's server."""
    yield from _live(request, kling_mock_server, kling_mock_config)


@pytest.fixture
def kling_mock_live_https(
    request: pytest.FixtureRequest, kling_mock_https_server: SharedServer, kling_mock_config: Config
) -> Iterator[KlingMock]:
    """A fresh mock for this test, served over HTTPS; ``.ca_file`` is the CA to trust."""
    yield from _live(request, kling_mock_https_server, kling_mock_config)
