"""callback_url: the mock POSTs each status change, in the official flat shape, to a receiver
on loopback; it retries a failing receiver with backoff, never makes the API wait, sends
nothing to hosts the configuration does not allow, and leaves nothing running once closed.

The receiver is a real HTTP server (LiveServer on 127.0.0.1, a free port). Tests wait for it
with a bounded wait, never a fixed sleep; the task clock is manual, so statuses change only
when a test calls ``backend.advance``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mockkling import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_SECRET_KEY,
    Backend,
    Config,
    ConfigError,
    FailRule,
    Timing,
    create_app,
    make_jwt,
)
from mockkling.callbacks import DeliveryAttempt, host_allowed, lifecycle_path
from mockkling.cli import _parser, build_config
from mockkling.config import CallbackSettings
from mockkling.server import LiveServer
from mockkling.spec import default_spec
from mockkling.transport import SyncASGITransport

T2V = "/v1/videos/text2video"
WAIT = 10.0  # the most any test waits for a callback; normally it takes milliseconds
FAST = CallbackSettings(attempts=3, backoff_seconds=0.01, timeout_seconds=5.0)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Receiver:
    """A callback receiver: records every POST, answers with scripted statuses (then 200),
    and can hold requests open until released."""

    url: str = ""
    answers: list[int] = field(default_factory=list)
    hang: bool = False
    received: list[Received] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _held: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(default_factory=list)

    async def endpoint(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        with self._cond:
            self.received.append(Received(request.url.path, dict(request.headers), body))
            status = self.answers.pop(0) if self.answers else 200
            hang = self.hang
            self._cond.notify_all()
        if hang:
            event = asyncio.Event()
            with self._cond:
                self._held.append((asyncio.get_running_loop(), event))
            await event.wait()
        return Response(status_code=status)

    def wait_for(self, count: int, timeout: float = WAIT) -> list[Received]:
        """The first ``count`` requests, waiting for them at most ``timeout`` seconds."""
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.received) >= count, timeout), (
                f"expected {count} callbacks, got {len(self.received)}"
            )
            return list(self.received)

    def release(self) -> None:
        with self._cond:
            self.hang = False
            held, self._held = self._held, []
        for loop, event in held:
            loop.call_soon_threadsafe(event.set)

    def statuses(self) -> list[str]:
        with self._cond:
            return [r.body["task_status"] for r in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    app = Starlette(routes=[Route("/{path:path}", receiver.endpoint, methods=["POST"])])
    server = LiveServer(app)
    with server:
        receiver.url = server.url
        yield receiver
        receiver.release()


def dispatcher_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "mockkling-callbacks"}


@pytest.fixture(autouse=True)
def no_thread_left_behind() -> Iterator[None]:
    before = dispatcher_threads()
    yield
    assert not dispatcher_threads() - before, "a callback dispatcher was not closed"


def make_backend(**settings: Any) -> Backend:
    config = Config(seed=7, callbacks=CallbackSettings(**{**_asdict(FAST), **settings}))
    backend = Backend(config)
    backend.use_manual_clock()
    return backend


def _asdict(settings: CallbackSettings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in settings.__dataclass_fields__}


@pytest.fixture
def backend() -> Iterator[Backend]:
    backend = make_backend()
    yield backend
    backend.close()


@pytest.fixture
def client(backend: Backend) -> Iterator[httpx.Client]:
    with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock") as client:
        yield client


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)}"}


def create(client: httpx.Client, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post(T2V, json={"prompt": "a kitten", **body}, headers=auth)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def query(client: httpx.Client, auth: dict[str, str], task_id: str) -> dict[str, Any]:
    data: dict[str, Any] = client.get(f"{T2V}/{task_id}", headers=auth).json()["data"]
    return data


def callback_validator() -> Draft202012Validator:
    """The callback body schema documented in openapi.yaml."""
    document = default_spec().document
    registry: Registry[Any] = Registry().with_resource("urn:spec", DRAFT202012.create_resource(document))
    return Draft202012Validator({"$ref": "urn:spec#/components/schemas/CallbackTask"}, registry=registry)


# -- delivery, in order, in the official shape ---------------------------------------------------


@pytest.mark.slow
def test_a_full_lifecycle_arrives_in_order_in_the_official_shape(
    backend: Backend, client: httpx.Client, auth: dict[str, str], receiver: Receiver
) -> None:
    created = create(client, auth, callback_url=f"{receiver.url}/kling/hook", external_task_id="order-1")
    task_id, t0 = created["task_id"], created["created_at"]

    [first] = receiver.wait_for(1)
    assert first.path == "/kling/hook"
    assert first.headers["content-type"] == "application/json"
    # Flat: the task object itself, no {code, message, request_id, data} envelope.
    assert first.body == {
        "task_id": task_id,
        "task_status": "submitted",
        "task_status_msg": "",
        "task_info": {"external_task_id": "order-1"},
        "watermark_info": {"enabled": False},
        "created_at": t0,
        "updated_at": t0,
        "final_unit_deduction": "0",
    }

    backend.advance(3600)  # one move past both transitions: both are sent, in order
    received = receiver.wait_for(3)
    assert [r.body["task_status"] for r in received] == ["submitted", "processing", "succeed"]
    processing, succeed = received[1].body, received[2].body
    assert processing["updated_at"] == t0 + 1000 and "task_result" not in processing
    assert succeed["updated_at"] == t0 + 5000
    # The same task object a query returns, with result URLs on the configured public address.
    expected = query(client, auth, task_id)
    expected["task_result"]["videos"][0]["url"] = (
        f"{backend.config.public_base_url()}/media/videos/{task_id}.mp4"
    )
    assert succeed == expected
    assert backend.config.public_base_url() == "http://127.0.0.1:8000"

    validator = callback_validator()
    for r in received:
        validator.validate(r.body)

    # Each status once: more time brings no more callbacks.
    backend.advance(3600)
    assert backend.callbacks.flush(WAIT)
    assert receiver.statuses() == ["submitted", "processing", "succeed"]
    log = backend.callbacks.deliveries(task_id)
    assert [(d.status, d.attempt, d.outcome, d.http_status) for d in log] == [
        ("submitted", 1, "delivered", 200),
        ("processing", 1, "delivered", 200),
        ("succeed", 1, "delivered", 200),
    ]
    assert all(d.url == f"{receiver.url}/kling/hook" and d.error is None for d in log)


@pytest.mark.slow
def test_the_result_url_in_a_callback_downloads_from_the_live_mock(
    receiver: Receiver, auth: dict[str, str]
) -> None:
    backend = make_backend()
    try:
        with LiveServer(create_app(backend)) as mock, httpx.Client(base_url=mock.url, timeout=WAIT) as api:
            backend.public_url = mock.url  # known only once the server has its port
            create(api, auth, callback_url=receiver.url)
            backend.advance(5)
            succeed = receiver.wait_for(3)[2].body
            url = succeed["task_result"]["videos"][0]["url"]
            assert url.startswith(mock.url)
            video = api.get(url)
            assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    finally:
        backend.close()


@pytest.mark.slow
def test_a_failed_task_step_by_step(receiver: Receiver, auth: dict[str, str]) -> None:
    backend = Backend(Config(seed=1, fail_rules=[FailRule("forbidden")], timing=Timing(2, 3), callbacks=FAST))
    backend.use_manual_clock()
    try:
        with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://m") as client:
            created = create(client, auth, prompt="something forbidden", callback_url=receiver.url)
            receiver.wait_for(1)
            backend.advance(1.999)
            assert backend.callbacks.flush(WAIT)
            assert receiver.statuses() == ["submitted"]
            backend.advance(0.001)
            receiver.wait_for(2)
            backend.advance(3)
            received = receiver.wait_for(3)
    finally:
        backend.close()
    assert [r.body["task_status"] for r in received] == ["submitted", "processing", "failed"]
    failed = received[2].body
    assert failed["task_status_msg"] == "Failure to pass the risk control system"
    assert failed["updated_at"] == created["created_at"] + 5000
    assert "task_result" not in failed
    callback_validator().validate(failed)


@pytest.mark.slow
def test_statuses_are_computed_from_the_current_schedule(
    backend: Backend, client: httpx.Client, auth: dict[str, str], receiver: Receiver
) -> None:
    """A task rescheduled after creation is followed as it is now, not as it was planned."""
    task_id = create(client, auth, callback_url=receiver.url)["task_id"]
    receiver.wait_for(1)
    task = backend.tasks.get(task_id)
    assert task is not None
    task.processing_ms += 60_000  # what a "fate" that delays a task does
    task.done_ms += 60_000
    backend.advance(30)
    assert backend.callbacks.flush(WAIT)
    assert receiver.statuses() == ["submitted"]
    backend.advance(31.5)  # past the new start, before the new end
    receiver.wait_for(2)
    assert backend.callbacks.flush(WAIT)
    assert receiver.statuses() == ["submitted", "processing"]
    assert receiver.received[1].body["updated_at"] == task.processing_ms


@pytest.mark.slow
def test_many_tasks_each_in_order(
    backend: Backend, client: httpx.Client, auth: dict[str, str], receiver: Receiver
) -> None:
    ids = [create(client, auth, callback_url=f"{receiver.url}/{i}")["task_id"] for i in range(10)]
    backend.advance(60)
    received = receiver.wait_for(30)
    for task_id in ids:
        mine = [r.body["task_status"] for r in received if r.body["task_id"] == task_id]
        assert mine == ["submitted", "processing", "succeed"]


@pytest.mark.slow
def test_the_system_clock_wakes_the_dispatcher_when_a_transition_is_due(
    receiver: Receiver, auth: dict[str, str]
) -> None:
    backend = Backend(Config(timing=Timing(0.05, 0.05), callbacks=FAST))  # the wall clock
    try:
        with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://m") as client:
            create(client, auth, callback_url=receiver.url)
            received = receiver.wait_for(3)
        assert [r.body["task_status"] for r in received] == ["submitted", "processing", "succeed"]
    finally:
        backend.close()


# -- retries and the delivery log ----------------------------------------------------------------


@pytest.mark.slow
def test_a_failing_receiver_is_retried_and_every_attempt_is_logged(
    backend: Backend, client: httpx.Client, auth: dict[str, str], receiver: Receiver
) -> None:
    seen: list[DeliveryAttempt] = []
    backend.callbacks.add_listener(seen.append)
    receiver.answers = [500, 503]  # then 200
    task_id = create(client, auth, callback_url=receiver.url)["task_id"]
    received = receiver.wait_for(3)
    assert backend.callbacks.flush(WAIT)
    assert len({orjson.dumps(r.body) for r in received}) == 1  # the same notification, resent
    log = backend.callbacks.deliveries(task_id)
    assert [(d.attempt, d.outcome, d.http_status, d.error) for d in log] == [
        (1, "retrying", 500, "HTTP 500"),
        (2, "retrying", 503, "HTTP 503"),
        (3, "delivered", 200, None),
    ]
    assert all(d.status == "submitted" and d.task_id == task_id for d in log)
    assert all(d.at_ms > 0 and d.elapsed_ms >= 0 for d in log)
    assert seen == log
    assert log[0].to_dict()["outcome"] == "retrying"


@pytest.mark.slow
def test_retries_are_bounded_and_later_statuses_still_go_out(
    backend: Backend, client: httpx.Client, auth: dict[str, str], receiver: Receiver
) -> None:
    receiver.answers = [500] * 6  # submitted and processing: every attempt fails
    task_id = create(client, auth, callback_url=receiver.url)["task_id"]
    backend.advance(1)
    receiver.wait_for(6)
    backend.advance(4)
    assert backend.callbacks.flush(WAIT)
    assert receiver.statuses() == ["submitted"] * 3 + ["processing"] * 3 + ["succeed"]
    outcomes = [(d.status, d.outcome) for d in backend.callbacks.deliveries(task_id)]
    assert outcomes == [
        ("submitted", "retrying"),
        ("submitted", "retrying"),
        ("submitted", "failed"),
        ("processing", "retrying"),
        ("processing", "retrying"),
        ("processing", "failed"),
        ("succeed", "delivered"),
    ]


@pytest.mark.slow
def test_a_given_up_callback_is_logged_without_the_receivers_secret(
    backend: Backend,
    client: httpx.Client,
    auth: dict[str, str],
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver.answers = [500] * 3
    url = receiver.url.replace("://", "://hooks:pass-secret@") + "/hook?order=7&token=hunter2-secret"
    task_id = create(client, auth, callback_url=url)["task_id"]
    receiver.wait_for(3)
    assert backend.callbacks.flush(WAIT)
    [warning] = [r.getMessage() for r in caplog.records if r.name == "mockkling.callbacks"]
    assert task_id in warning and "failed after 3 attempts" in warning
    assert receiver.url.replace("://", "://hooks:***@") + "/hook?order=7&token=***" in warning
    assert "hunter2" not in caplog.text and "pass-secret" not in caplog.text
    assert backend.callbacks.deliveries(task_id)[-1].url == url  # the test's own log keeps it whole


def test_a_refusing_receiver_is_logged_as_a_connection_error(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    task_id = create(client, auth, callback_url=f"http://127.0.0.1:{port}/hook")["task_id"]
    assert backend.callbacks.flush(WAIT)
    log = backend.callbacks.deliveries(task_id)
    assert [(d.attempt, d.outcome, d.http_status) for d in log] == [
        (1, "retrying", None),
        (2, "retrying", None),
        (3, "failed", None),
    ]
    assert all(d.error is not None and d.error.startswith("ConnectError") for d in log)


# -- the API never waits ---------------------------------------------------------------------------


@pytest.mark.slow
def test_a_hanging_receiver_never_blocks_the_api(receiver: Receiver, auth: dict[str, str]) -> None:
    """The mock on real HTTP keeps answering while every callback it sends hangs."""
    backend = Backend(Config(seed=3, callbacks=CallbackSettings(attempts=1, timeout_seconds=60)))
    backend.use_manual_clock()
    receiver.hang = True
    try:
        with LiveServer(create_app(backend)) as mock, httpx.Client(base_url=mock.url, timeout=WAIT) as api:
            first = create(api, auth, callback_url=receiver.url)
            receiver.wait_for(1)  # the callback is now held open by the receiver
            started = time.perf_counter()
            second = create(api, auth, callback_url=receiver.url)
            latency = time.perf_counter() - started
            print(f"create latency while a callback hangs: {latency * 1000:.1f} ms")
            backend.advance(5)
            assert query(api, auth, first["task_id"])["task_status"] == "succeed"
            assert query(api, auth, second["task_id"])["task_status"] == "succeed"
            assert not backend.callbacks.flush(0.05)  # deliveries are still held open
            receiver.release()
            assert backend.callbacks.flush(WAIT)
    finally:
        backend.close()
    for task_id in (first["task_id"], second["task_id"]):
        statuses = [d.status for d in backend.callbacks.deliveries(task_id) if d.outcome == "delivered"]
        assert statuses == ["submitted", "processing", "succeed"]


@pytest.mark.slow
def test_close_cancels_a_hanging_delivery(receiver: Receiver, auth: dict[str, str]) -> None:
    backend = Backend(Config(callbacks=CallbackSettings(attempts=1, timeout_seconds=60)))
    backend.use_manual_clock()
    receiver.hang = True
    with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://m") as client:
        create(client, auth, callback_url=receiver.url)
    receiver.wait_for(1)
    backend.close()
    assert not backend.callbacks.running
    assert backend.callbacks.deliveries() == []  # cancelled in flight: no outcome to log


# -- allowed hosts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hook",
        "http://10.0.0.1:8080/hook",
        "http://169.254.169.254/latest",
        "http://127.1/x",
    ],
)
def test_disallowed_hosts_are_accepted_but_never_called(
    backend: Backend, client: httpx.Client, auth: dict[str, str], url: str
) -> None:
    """A client configured with its production webhook still works; the mock sends nothing."""
    task_id = create(client, auth, callback_url=url)["task_id"]
    backend.advance(60)
    assert query(client, auth, task_id)["task_status"] == "succeed"
    assert not backend.callbacks.running  # no dispatcher thread, so no request
    [skipped] = backend.callbacks.deliveries(task_id)
    assert (skipped.outcome, skipped.attempt, skipped.http_status) == ("skipped", 0, None)
    assert skipped.error is not None and "not in the allowed callback hosts" in skipped.error


@pytest.mark.slow
def test_only_configured_hosts_get_requests(receiver: Receiver, auth: dict[str, str]) -> None:
    backend = make_backend(allowed_hosts=("localhost",))
    port = receiver.url.rsplit(":", 1)[1]
    try:
        with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://m") as client:
            blocked = create(client, auth, callback_url=f"http://127.0.0.1:{port}/by-ip")["task_id"]
            allowed = create(client, auth, callback_url=f"http://localhost:{port}/by-name")["task_id"]
        backend.advance(60)
        assert backend.callbacks.flush(WAIT)
    finally:
        backend.close()
    assert {r.path for r in receiver.received} == {"/by-name"}
    assert len(receiver.received) == 3
    assert [d.outcome for d in backend.callbacks.deliveries(blocked)] == ["skipped"]
    assert [d.outcome for d in backend.callbacks.deliveries(allowed)] == ["delivered"] * 3


@pytest.mark.parametrize(
    "url", ["not a url", "ftp://127.0.0.1/x", "http://", "//127.0.0.1/hook", "http:///x"]
)
def test_a_callback_url_that_is_no_url_is_refused(
    backend: Backend, client: httpx.Client, auth: dict[str, str], url: str
) -> None:
    response = client.post(T2V, json={"prompt": "x", "callback_url": url}, headers=auth)
    assert response.status_code == 400
    assert response.json()["code"] == 1201
    assert "callback_url" in response.json()["message"]
    assert client.get(T2V, headers=auth).json()["data"] == []  # nothing stored


def test_an_empty_callback_url_means_no_callback(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    create(client, auth, callback_url="")
    assert backend.callbacks.deliveries() == [] and not backend.callbacks.running


@pytest.mark.parametrize(
    ("host", "allowed", "expected"),
    [
        ("127.0.0.1", ("127.0.0.0/8",), True),
        ("127.8.9.10", ("127.0.0.0/8",), True),
        ("::1", ("::1",), True),
        ("LocalHost", ("localhost",), True),
        ("localhost.", ("localhost",), True),
        ("localhost.evil.test", ("localhost",), False),
        ("hooks.ci.test", ("*.ci.test",), True),
        ("ci.test", ("*.ci.test",), False),
        ("anything.example", ("*",), True),
        ("127.1", ("127.0.0.0/8",), False),  # not an address as written; names are not resolved
        ("10.1.2.3", ("10.0.0.0/8", "localhost"), True),
        ("10.1.2.3", (), False),
    ],
)
def test_host_matching(host: str, allowed: tuple[str, ...], expected: bool) -> None:
    assert host_allowed(host, allowed) is expected


def test_lifecycle_path() -> None:
    assert lifecycle_path("submitted") == ["submitted"]
    assert lifecycle_path("processing") == ["submitted", "processing"]
    assert lifecycle_path("succeed") == ["submitted", "processing", "succeed"]
    assert lifecycle_path("failed") == ["submitted", "processing", "failed"]


# -- lifetime ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_close_stops_everything_and_the_backend_stays_usable(
    backend: Backend, client: httpx.Client, auth: dict[str, str], receiver: Receiver
) -> None:
    assert not backend.callbacks.running  # lazy: no thread before a task has a callback
    create(client, auth, callback_url=receiver.url)
    receiver.wait_for(1)
    assert backend.callbacks.running
    backend.close()
    backend.close()  # idempotent
    assert not backend.callbacks.running
    assert not dispatcher_threads()
    create(client, auth, callback_url=receiver.url)  # starts afresh
    receiver.wait_for(2)
    assert backend.callbacks.running


@pytest.mark.slow
def test_reset_drops_the_callbacks_of_forgotten_tasks(
    backend: Backend, client: httpx.Client, auth: dict[str, str], receiver: Receiver
) -> None:
    create(client, auth, callback_url=receiver.url)
    receiver.wait_for(1)
    backend.reset()
    backend.advance(60)
    assert backend.callbacks.flush(WAIT)
    assert receiver.statuses() == ["submitted"]


# -- configuration ----------------------------------------------------------------------------------


def test_callback_defaults() -> None:
    config = Config()
    assert config.callbacks.allowed_hosts == ("localhost", "127.0.0.0/8", "::1")
    assert (config.callbacks.attempts, config.callbacks.backoff_seconds) == (4, 1.0)
    assert config.callbacks.timeout_seconds == 5.0
    assert config.public_base_url() == "http://127.0.0.1:8000"
    assert Config(host="0.0.0.0", port=9000).public_base_url() == "http://127.0.0.1:9000"
    assert Config(host="::1").public_base_url() == "http://[::1]:8000"
    assert Config(public_url="https://mock.test/").public_base_url() == "https://mock.test"


def test_callback_settings_from_file_env_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "mock.toml"
    path.write_text(
        'public_url = "http://mock.internal:8000"\n'
        "[callbacks]\n"
        'allowed_hosts = ["receiver", "10.0.0.0/8"]\n'
        "attempts = 2\nbackoff_seconds = 0.5\ntimeout_seconds = 1\n"
    )
    config = Config.from_file(path)
    assert config.public_base_url() == "http://mock.internal:8000"
    assert config.callbacks == CallbackSettings(("receiver", "10.0.0.0/8"), 2, 0.5, 1)

    env = {"MOCKKLING_CONFIG": str(path), "MOCKKLING_CALLBACK_HOSTS": "a.test, b.test"}
    config = build_config(_parser().parse_args(["serve"]), environ=env)
    assert config.callbacks.allowed_hosts == ("a.test", "b.test")
    assert config.callbacks.attempts == 2  # the rest of the file's table stays

    args = _parser().parse_args(
        ["serve", "--callback-host", "hooks.test", "--callback-attempts", "6", "--callback-timeout", "2.5",
         "--public-url", "http://127.0.0.1:9999"]
    )  # fmt: skip
    config = build_config(args, environ={})
    assert config.callbacks.allowed_hosts == ("localhost", "127.0.0.0/8", "::1", "hooks.test")
    assert (config.callbacks.attempts, config.callbacks.timeout_seconds) == (6, 2.5)
    assert config.public_base_url() == "http://127.0.0.1:9999"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[callbacks]\nattempts = 0", "attempts"),
        ("[callbacks]\nattempts = true", "attempts"),
        ("[callbacks]\ntimeout_seconds = 0", "timeout_seconds"),
        ("[callbacks]\nbackoff_seconds = -1", "backoff_seconds"),
        ("[callbacks]\nallowed_hosts = 'localhost'", "allowed_hosts"),
        ("[callbacks]\nallowed_hosts = ['10.0.0.0/99']", "not a valid network"),
        ("[callbacks]\nallowed_hosts = ['']", "allowed_hosts"),
        ("[callbacks]\nretries = 3", "unknown keys"),
        ("public_url = 'mock:8000'", "public_url"),
    ],
)
def test_bad_callback_settings_say_what_is_wrong(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=words):
        Config.from_file(path)


def test_bad_callback_flags_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="attempts"):
        build_config(_parser().parse_args(["serve", "--callback-attempts", "0"]), environ={})
