"""Interception: every call the code under test makes to the Kling hosts is answered by an
in-process mock, with no change to that code (moto's ``mock_aws``, openai-responses' way).

httpx (sync and async) is routed with respx, requests with responses and aiohttp with
aioresponses: well-kept libraries that patch each client at its transport. A library is patched
only if it is installed; requests and aiohttp need the ``intercept`` extra for their patchers.
Other hosts pass through untouched, or are refused (``other_hosts="refuse"``). Result URLs point
at the real service's media host, which is intercepted too, so a client downloads its video from
where it would in production, never from a loopback address.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib.util
import inspect
import re
import warnings
from collections.abc import Awaitable, Callable, Iterable, Iterator
from types import SimpleNamespace, TracebackType
from typing import Any, Final, Literal, TypeVar

import httpx
import respx

from .catalogue import KLING_HOSTS, MEDIA_HOST, MEDIA_URL
from .config import Config, ConfigError
from .request_layer import DroppedConnection
from .testing import KlingMock
from .virtual_sleep import virtual_sleep

OtherHosts = Literal["pass", "refuse"]
_METHODS: Final = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
F = TypeVar("F", bound=Callable[..., Any])


class InterceptionError(ConnectionError):
    """A call to a host that interception refuses (``other_hosts="refuse"``)."""


def hosts_pattern(hosts: Iterable[str]) -> re.Pattern[str]:
    """A URL pattern matching http(s) URLs on exactly these hosts (any port)."""
    names = "|".join(re.escape(host.lower()) for host in hosts)
    return re.compile(rf"^https?://(?:{names})(?::\d+)?(?:[/?#]|$)", re.IGNORECASE)


def _refused(url: object) -> str:
    return f"mockkling.intercept refuses {url}: only the Kling hosts are answered (other_hosts='refuse')"


@contextlib.contextmanager
def route_hosts(
    mock: KlingMock, hosts: Iterable[str] = (), other_hosts: OtherHosts = "pass"
) -> Iterator[list[str]]:
    """Route calls to the Kling hosts, the media host and ``hosts`` into ``mock``'s app, from every
    installed client library; yields the names of the libraries patched. Result URLs point at the
    media host for as long as the block runs."""
    if other_hosts not in ("pass", "refuse"):
        raise ConfigError(f'other_hosts must be "pass" or "refuse", not {other_hosts!r}')
    routed = tuple(dict.fromkeys(h.lower() for h in (*KLING_HOSTS, MEDIA_HOST, *hosts)))
    backend, media_url = mock.backend, mock.backend.media_url
    backend.media_url = MEDIA_URL
    patched = ["httpx"]
    with contextlib.ExitStack() as stack:
        stack.callback(setattr, backend, "media_url", media_url)
        stack.enter_context(_route_httpx(mock, routed, other_hosts))
        for library, patcher in (("requests", _route_requests), ("aiohttp", _route_aiohttp)):
            if importlib.util.find_spec(library) is None:
                continue
            entered = patcher(mock, routed, other_hosts)
            if entered is None:
                warnings.warn(
                    f"{library} is installed but not intercepted: pip install 'mockkling[intercept]'",
                    stacklevel=3,
                )
                continue
            stack.enter_context(entered)
            patched.append(library)
        yield patched


# -- httpx, through respx -------------------------------------------------------------------------

# Set while respx resolves a request of an async client: the side effect must then return an
# awaitable (respx awaits it), where a sync client needs the response itself.
_in_async_client: contextvars.ContextVar[bool] = contextvars.ContextVar("mockkling_async", default=False)


class _Router(respx.MockRouter):
    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        token = _in_async_client.set(True)
        try:
            return await super().async_handler(request)
        finally:
            _in_async_client.reset(token)


@contextlib.contextmanager
def _route_httpx(mock: KlingMock, hosts: tuple[str, ...], other_hosts: OtherHosts) -> Iterator[None]:
    sync_transport = mock.transport
    async_transport = mock.async_transport

    def answer(request: httpx.Request) -> httpx.Response | Awaitable[httpx.Response]:
        if _in_async_client.get():
            return async_transport.handle_async_request(request)
        return sync_transport.handle_request(request)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(_refused(request.url), request=request)

    # using="httpx" patches httpx's own HTTP transports: a client given another transport (the
    # fixture's in-process one, say) is left alone.
    router = _Router(assert_all_called=False, assert_all_mocked=False, using="httpx")
    router.route(url__regex=hosts_pattern(hosts).pattern).mock(side_effect=answer)
    if other_hosts == "pass":
        router.route().pass_through()
    else:
        router.route().mock(side_effect=refuse)
    with router:
        yield


# -- requests, through responses ------------------------------------------------------------------


def _route_requests(
    mock: KlingMock, hosts: tuple[str, ...], other_hosts: OtherHosts
) -> contextlib.AbstractContextManager[Any] | None:
    try:
        import requests
        import responses
    except ImportError:
        return None
    transport = mock.transport
    ours = hosts_pattern(hosts)

    def answer(prepared: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        body = prepared.body
        if isinstance(body, str):
            body = body.encode()
        elif body is not None and not isinstance(body, bytes):
            body = b"".join(chunk.encode() if isinstance(chunk, str) else chunk for chunk in body)
        request = httpx.Request(
            str(prepared.method), str(prepared.url), headers=dict(prepared.headers), content=body or b""
        )
        try:
            response = transport.handle_request(request)
        except DroppedConnection as exc:
            raise requests.ConnectionError(str(exc)) from None
        content = response.read()
        # responses recomputes the length and would repeat a content-length given to it
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        return response.status_code, headers, content

    rsps = responses.RequestsMock(assert_all_requests_are_fired=False)
    for method in _METHODS:
        # content_type=None: the answer's own Content-Type, not responses' text/plain beside it
        rsps.add_callback(method, ours, callback=answer, content_type=None)
    if other_hosts == "pass":
        rsps.add_passthru(re.compile(rf"^(?!{ours.pattern[1:]})", re.IGNORECASE))
    return rsps


# -- aiohttp, through aioresponses ----------------------------------------------------------------


def _route_aiohttp(
    mock: KlingMock, hosts: tuple[str, ...], other_hosts: OtherHosts
) -> contextlib.AbstractContextManager[Any] | None:
    try:
        import aiohttp
        from aioresponses import CallbackResult, aioresponses
    except ImportError:
        return None
    transport = mock.async_transport
    ours = hosts_pattern(hosts)

    class Response(aiohttp.ClientResponse):
        """aiohttp 3.14 made ``stream_writer`` required, which aioresponses 0.7.9 does not pass:
        an answer that never touched a socket gets a writer that wrote nothing."""

        def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
            kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
            super().__init__(method, url, **kwargs)

    def callback_for(method: str) -> Callable[..., Awaitable[CallbackResult]]:
        async def answer(url: Any, **kwargs: Any) -> CallbackResult:
            headers = dict(kwargs.get("headers") or {})
            content: bytes = b""
            if kwargs.get("json") is not None:
                content = httpx.Request("POST", "http://x", json=kwargs["json"]).read()
                headers.setdefault("Content-Type", "application/json")
            elif isinstance(kwargs.get("data"), bytes | str):
                data = kwargs["data"]
                content = data.encode() if isinstance(data, str) else data
            elif kwargs.get("data") is not None:
                form = httpx.Request("POST", "http://x", data=kwargs["data"])
                content = form.read()
                headers.setdefault("Content-Type", form.headers["content-type"])
            request = httpx.Request(method, str(url), headers=headers, content=content)
            try:
                response = await transport.handle_async_request(request)
            except DroppedConnection:
                raise aiohttp.ServerDisconnectedError() from None
            body = await response.aread()
            return CallbackResult(
                status=response.status_code,
                headers=dict(response.headers),
                body=body,
                content_type=response.headers.get("content-type", "application/octet-stream"),
                response_class=Response,
            )

        return answer

    class Mocked(aioresponses):
        def start(self) -> None:
            super().start()  # which clears the routes: add them after
            for method in _METHODS:
                self.add(ours, method=method, callback=callback_for(method), repeat=True)

    return Mocked(passthrough_unmatched=other_hosts == "pass")


# -- mockkling.intercept() --------------------------------------------------------------------------


class Interception:
    """What :func:`intercept` returns: a context manager that yields the mock's handle, and a
    decorator for sync and async test functions."""

    def __init__(
        self,
        config: Config | None,
        *,
        hosts: Iterable[str],
        other_hosts: OtherHosts,
        sleep: Literal["virtual", "real"],
        options: dict[str, Any],
    ) -> None:
        if sleep not in ("virtual", "real"):
            raise ConfigError(f'sleep must be "virtual" or "real", not {sleep!r}')
        self._config = config
        self._hosts = tuple(hosts)
        self._other_hosts = other_hosts
        self._sleep = sleep
        self._options = options
        self._stack: contextlib.ExitStack | None = None
        self.mock: KlingMock | None = None

    def __enter__(self) -> KlingMock:
        with contextlib.ExitStack() as stack:
            mock = stack.enter_context(KlingMock.in_process(self._config, **self._options))
            stack.enter_context(route_hosts(mock, self._hosts, self._other_hosts))
            if self._sleep == "virtual" and mock.manual_clock:
                stack.enter_context(virtual_sleep(mock.advance))
            self._stack, self.mock = stack.pop_all(), mock
        return mock

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack, self._stack, self.mock = self._stack, None, None
        if stack is not None:
            stack.close()

    def __call__(self, func: F) -> F:
        """Run ``func`` (sync or async) with interception on, a fresh mock each call."""
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with self:
                    return await func(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        return run  # type: ignore[return-value]


def intercept(
    config: Config | None = None,
    *,
    hosts: Iterable[str] = (),
    other_hosts: OtherHosts = "pass",
    sleep: Literal["virtual", "real"] = "virtual",
    **options: Any,
) -> Interception:
    """Answer every call to the Kling hosts (and ``hosts``, e.g. your gateway's) from an
    in-process mock, whatever library the code under test uses::

        with mockkling.intercept(run_seconds=30) as kling:
            video = my_app.generate("a cat")   # talks to https://api-singapore.klingai.com

    ``options`` are the ``kling_mock`` marker's (accounts, timings, faults, ...). On the manual
    clock (the default), ``time.sleep`` and ``asyncio.sleep`` move the mock's clock instead of
    waiting (``sleep="real"`` to keep real sleeps).
    """
    return Interception(config, hosts=hosts, other_hosts=other_hosts, sleep=sleep, options=options)
