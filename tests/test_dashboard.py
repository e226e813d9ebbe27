"""The dashboard's server side: the page and its files, who may load them, the state it reads
(JSON, and the live stream of server-sent events that sends only what changed), and the media
mirror that keeps the page's own downloads out of the journal. The page itself is driven in a
real browser by tests/test_dashboard_browser.py."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import orjson
import pytest
from starlette.types import ASGIApp, Message

from mockkling import DEFAULT_ACCESS_KEY, Backend, Config, Journal, create_app, make_jwt
from mockkling.catalogue import FACE_SESSIONS
from mockkling.routes import dashboard
from mockkling.routes.dashboard import JOURNAL_SHOWN, TASKS_SHOWN, Watcher
from mockkling.server import LiveServer
from mockkling.transport import SyncASGITransport

C = "/__mockkling"
T2V = "/v1/videos/text2video"


def _client(backend: Backend, host: str = "127.0.0.1") -> httpx.Client:
    transport = SyncASGITransport(create_app(backend), client=(host, 40000))
    return httpx.Client(transport=transport, base_url="http://mock")


@pytest.fixture
def control(backend: Backend) -> Iterator[httpx.Client]:
    with _client(backend) as client:
        yield client


# -- the page --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "media_type", "marker"),
    [
        (f"{C}/", "text/html", b'<script src="dashboard.js" defer></script>'),
        (f"{C}/dashboard.css", "text/css", b"--succeed"),
        (f"{C}/dashboard.js", "text/javascript", b'new EventSource("state")'),
    ],
)
def test_the_page_and_its_files_are_served_from_the_package(
    control: httpx.Client, path: str, media_type: str, marker: bytes
) -> None:
    response = control.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert marker in response.content
    # Nothing from elsewhere, and the page may not be framed by another site.
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    again = control.get(path, headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_the_page_loads_nothing_from_another_host(control: httpx.Client) -> None:
    page = control.get(f"{C}/").text + control.get(f"{C}/dashboard.css").text
    page += control.get(f"{C}/dashboard.js").text
    assert "http://" not in page and "https://" not in page and "//cdn" not in page


def test_without_the_trailing_slash_the_page_is_a_redirect(control: httpx.Client) -> None:
    response = control.get(C)
    assert response.status_code in (307, 308) and response.headers["location"].endswith(f"{C}/")


def test_the_page_is_package_data() -> None:
    # Inside the package, so the wheel ships it (hatchling takes every file under mockkling/).
    assert {p.name for p in dashboard.PAGE_DIR.iterdir()} >= {"index.html", "dashboard.css", "dashboard.js"}


# -- who may see it and act from it -------------------------------------------------------------------


@pytest.mark.parametrize("path", [f"{C}/", f"{C}/dashboard.js", f"{C}/state", f"{C}/media/videos/x.mp4"])
def test_remote_clients_get_no_page_nor_state(backend: Backend, path: str) -> None:
    with _client(backend, "10.0.0.5") as client:
        response = client.get(path)
    assert response.status_code == 403 and response.json()["error"] == "forbidden"


def test_with_an_admin_token_a_browser_is_asked_for_it_and_may_give_it_as_basic_credentials() -> None:
    with _client(Backend(Config(admin_token="s3cret"))) as client:
        asked = client.get(f"{C}/")
        assert asked.status_code == 401
        assert asked.headers["www-authenticate"].startswith('Basic realm="mockkling control API"')
        basic = "Basic " + base64.b64encode(b"anyone:s3cret").decode()
        assert client.get(f"{C}/", headers={"Authorization": basic}).status_code == 200
        assert client.get(f"{C}/state", headers={"Authorization": basic}).status_code == 200
        assert client.post(f"{C}/reset", headers={"Authorization": basic}).status_code == 200
        assert client.get(f"{C}/state", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        for wrong in (
            "Basic " + base64.b64encode(b"anyone:nope").decode(),
            "Basic " + base64.b64encode(b"s3cret").decode(),  # no colon: no password
            "Basic not-base64!",
            "Digest s3cret",
        ):
            refused = client.get(f"{C}/state", headers={"Authorization": wrong})
            assert refused.status_code == 401, wrong
            assert refused.json() == {"error": "unauthorized", "message": "The admin token is wrong"}


def test_a_page_of_another_origin_cannot_change_the_mock(backend: Backend, control: httpx.Client) -> None:
    """Any web page can make the browser post to 127.0.0.1 (a form needs no CORS preflight)."""
    backend.faults.add(code=1303)
    for origin in ("http://evil.example", "null", "http://127.0.0.1:9999", "http://[bad"):
        response = control.post(f"{C}/reset", headers={"Origin": origin})
        assert response.status_code == 403, origin
        assert response.json()["message"] == "The control API takes no changes from a page of another origin"
        assert control.delete(f"{C}/faults/1", headers={"Origin": origin}).status_code == 403
    assert len(backend.faults) == 1
    # The page's own origin may; reading is left to the browser's same-origin policy.
    own = {"Host": "127.0.0.1:8000", "Origin": "http://127.0.0.1:8000"}
    assert control.delete(f"{C}/faults/1", headers=own).status_code == 200
    other = {"Host": "127.0.0.1:8000", "Origin": "http://evil.example"}
    assert control.get(f"{C}/state", headers=other).status_code == 200


def test_a_rebound_host_name_cannot_reach_the_control_api(backend: Backend) -> None:
    """DNS rebinding: evil.example now resolves to 127.0.0.1, so its page is "same origin" to the
    browser, which still sends Host: evil.example. A browser's request is answered only under the
    server's own names; other clients (no Origin, no Sec-Fetch-*) are not asked."""
    backend.faults.add(code=1303)
    with _client(backend) as client:
        rebound = {"Host": "evil.example:8000", "Origin": "http://evil.example:8000"}
        refused = client.post(f"{C}/reset", headers=rebound)
        assert refused.status_code == 403 and "own host name" in refused.json()["message"]
        reading = {"Host": "evil.example:8000", "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}
        for path in ("/journal", "/state", "/"):
            assert client.get(f"{C}{path}", headers=reading).status_code == 403, path
        assert len(backend.faults) == 1
        for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "LOCALHOST."):
            assert client.get(f"{C}/state", headers={**reading, "Host": host}).status_code == 200, host
        assert client.get(f"{C}/state", headers={"Host": "evil.example"}).status_code == 200  # curl
    with _client(Backend(Config(public_url="http://mock.internal:9000"))) as client:
        named = {"Host": "mock.internal:9000", "Sec-Fetch-Site": "same-origin"}
        assert client.get(f"{C}/state", headers=named).status_code == 200
    with _client(Backend(Config(control_remote=True))) as client:
        assert client.get(f"{C}/state", headers=reading).status_code == 200


# -- the state ----------------------------------------------------------------------------------------


def test_the_state_shows_tasks_per_account_with_their_schedule_and_result(
    backend: Backend, control: httpx.Client, auth: dict[str, str]
) -> None:
    backend.add_api_key("sk-lonely-key-0123456789")
    created = control.post(T2V, json={"prompt": "a kitten"}, headers=auth).json()["data"]
    other = control.post(
        T2V, json={"prompt": "a dog"}, headers={"Authorization": "Bearer sk-lonely-key-0123456789"}
    )
    assert other.status_code == 200
    state = control.get(f"{C}/state").json()
    assert state["tasks"]["count"] == 2
    newest, oldest = state["tasks"]["tasks"]
    assert state["tasks"]["ids"] == [newest["task_id"], oldest["task_id"]]
    assert oldest["task_id"] == created["task_id"] and oldest["account"] == DEFAULT_ACCESS_KEY
    assert newest["account"] == "sk-***6789"  # a raw key is never shown, as in the journal
    assert (oldest["status"], oldest["result"], oldest["record"]) == ("submitted", None, False)
    assert oldest["created_at"] < oldest["processing_at"] < oldest["done_at"]

    backend.advance(600)
    cards = control.get(f"{C}/state").json()["tasks"]["tasks"]
    done = next(t for t in cards if t["task_id"] == oldest["task_id"])
    assert done["status"] == "succeed"
    [video] = done["result"]["videos"]
    assert video["url"] == f"{C}/media/videos/{oldest['task_id']}.mp4"
    # The same task_result the API answers, but for the mirror's URLs.
    official = control.get(f"{T2V}/{oldest['task_id']}", headers=auth).json()["data"]["task_result"]
    assert official["videos"][0]["url"] == "http://mock" + video["url"].replace(f"{C}/media", "/media")


def test_the_state_has_the_journal_rules_limits_clock_and_endpoints_as_the_control_api_has_them(
    backend: Backend, control: httpx.Client, auth: dict[str, str]
) -> None:
    control.get(T2V, headers=auth)
    backend.faults.add("POST /v1/* 1303 x2")
    backend.fates.add(fate={"status": "failed"}, action="image2video")
    backend.limits.set(rate=5, concurrency=2)
    control.get(T2V, headers=auth)  # counts against the rate: usage appears
    state = control.get(f"{C}/state").json()
    assert state["faults"] == control.get(f"{C}/faults").json()
    assert state["fates"] == control.get(f"{C}/fates").json()
    assert state["limits"] == control.get(f"{C}/limits").json()
    assert state["clock"] == control.get(f"{C}/clock").json()
    assert state["endpoints"]["text2video"] == {"path": T2V, "results": ["videos"]}
    assert state["endpoints"]["image-generation"]["results"] == ["images"]
    first, second = state["journal"]["entries"]
    assert state["journal"]["first_id"] == first["id"]
    assert (second["method"], second["path"], second["status"]) == ("GET", T2V, 200)
    assert "headers" not in second  # the list is a summary: details are one click away
    assert set(control.get(f"{C}/journal/{second['id']}").json()) >= {"headers", "body", "response"}


def test_a_record_shows_as_one_with_no_result(backend: Backend, control: httpx.Client) -> None:
    record = backend.add_record(DEFAULT_ACCESS_KEY, FACE_SESSIONS, extra={"faces": 1})
    [card] = control.get(f"{C}/state").json()["tasks"]["tasks"]
    assert (card["task_id"], card["action"], card["record"], card["result"]) == (
        record.task_id,
        FACE_SESSIONS,
        True,
        None,
    )


def test_the_state_holds_the_newest_only(backend: Backend, auth: dict[str, str]) -> None:
    backend.journal = type(backend.journal)(size=JOURNAL_SHOWN + 50)
    with _client(backend) as client:
        for n in range(TASKS_SHOWN + 5):
            client.post(T2V, json={"prompt": f"task {n}"}, headers=auth)
        state = client.get(f"{C}/state").json()
    assert state["tasks"]["count"] == TASKS_SHOWN + 5 and len(state["tasks"]["ids"]) == TASKS_SHOWN
    entries = state["journal"]["entries"]
    assert len(entries) == JOURNAL_SHOWN and entries[-1]["id"] == TASKS_SHOWN + 5
    assert state["journal"]["first_id"] == 1  # the journal holds more than is shown


# -- what changed since the last look ---------------------------------------------------------------


def test_a_watcher_sends_everything_first_then_only_what_changed(
    backend: Backend, control: httpx.Client, auth: dict[str, str]
) -> None:
    watcher = Watcher(backend)
    assert [name for name, _ in watcher.changes()] == [
        "endpoints", "clock", "tasks", "journal", "faults", "fates", "limits",
    ]  # fmt: skip
    assert watcher.changes() == []  # nothing happened

    first = control.post(T2V, json={"prompt": "one"}, headers=auth).json()["data"]["task_id"]
    changed = dict(watcher.changes())
    assert set(changed) == {"tasks", "journal"}
    tasks = orjson.loads(changed["tasks"])
    assert tasks["ids"] == [first] and [t["task_id"] for t in tasks["tasks"]] == [first]
    assert [e["path"] for e in orjson.loads(changed["journal"])["entries"]] == [T2V]

    second = control.post(T2V, json={"prompt": "two"}, headers=auth).json()["data"]["task_id"]
    tasks = orjson.loads(dict(watcher.changes())["tasks"])
    assert tasks["ids"] == [second, first] and [t["task_id"] for t in tasks["tasks"]] == [second]

    backend.advance(1.5)  # both start processing: the clock moved, both cards changed
    changed = dict(watcher.changes())
    assert set(changed) == {"clock", "tasks"}
    assert orjson.loads(changed["clock"])["now_ms"] == backend.now_ms()
    assert {t["status"] for t in orjson.loads(changed["tasks"])["tasks"]} == {"processing"}

    backend.set_fate(first, "failed", message="no luck")
    [card] = orjson.loads(dict(watcher.changes())["tasks"])["tasks"]
    assert (card["task_id"], card["status"], card["status_msg"]) == (first, "failed", "no luck")

    backend.faults.add(code=1303)
    assert [name for name, _ in watcher.changes()] == ["faults"]

    backend.reset()
    changed = dict(watcher.changes())
    assert orjson.loads(changed["tasks"]) == {"count": 0, "ids": [], "tasks": []}
    assert orjson.loads(changed["journal"]) == {"first_id": None, "entries": []}  # the page drops its rows
    assert set(changed) == {"tasks", "journal", "faults"}

    backend.journal = Journal(size=10)  # a new journal numbers from 1 again
    control.get(T2V, headers=auth)
    assert [e["id"] for e in orjson.loads(dict(watcher.changes())["journal"])["entries"]] == [1]


def test_a_system_clock_is_sent_once_and_runs_on_in_the_page() -> None:
    backend = Backend(Config())
    watcher = Watcher(backend)
    assert "clock" in dict(watcher.changes())
    assert "clock" not in dict(watcher.changes())
    backend.use_manual_clock()
    assert orjson.loads(dict(watcher.changes())["clock"])["manual"] is True


# -- the stream ---------------------------------------------------------------------------------------


class Stream:
    """``GET /__mockkling/state`` with ``Accept: text/event-stream``, straight into the app."""

    def __init__(self, app: ASGIApp, receive: Any = None) -> None:
        self.app = app
        self.start: Message | None = None
        self.buffer = b""
        self.events: list[tuple[str, Any]] = []
        self.gone = anyio.Event()
        self.ended = anyio.Event()
        self.arrived = anyio.Event()
        self._receive = receive

    async def receive(self) -> Message:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
            return
        self.buffer += message.get("body", b"")
        while b"\n\n" in self.buffer:
            block, self.buffer = self.buffer.split(b"\n\n", 1)
            fields = dict(line.split(b": ", 1) for line in block.split(b"\n") if b": " in line)
            if b"event" in fields:
                self.events.append((fields[b"event"].decode(), orjson.loads(fields[b"data"])))
                self.arrived.set()

    async def run(self) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": f"{C}/state",
            "raw_path": f"{C}/state".encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"mock"), (b"accept", b"text/event-stream")],
            "client": ("127.0.0.1", 5000),
            "server": ("mock", 80),
        }
        await self.app(scope, self._receive or self.receive, self.send)
        self.ended.set()

    async def wait_for(self, name: str, seconds: float = 2.0) -> Any:
        """The next event ``name`` (within ``seconds`` of real time: the stream ticks on its own)."""
        with anyio.fail_after(seconds):
            while True:
                for i, (event, data) in enumerate(self.events):
                    if event == name:
                        del self.events[: i + 1]
                        return data
                self.arrived = anyio.Event()
                await self.arrived.wait()


@asynccontextmanager
async def streaming(app: ASGIApp, receive: Any = None) -> AsyncIterator[Stream]:
    stream = Stream(app, receive)
    async with anyio.create_task_group() as group:
        group.start_soon(stream.run)
        yield stream
        stream.gone.set()


def test_the_stream_sends_the_state_then_each_change_within_a_tick(
    backend: Backend, auth: dict[str, str]
) -> None:
    app = create_app(backend)

    async def scenario() -> None:
        async with streaming(app) as stream:
            first = await stream.wait_for("tasks")
            assert first == {"count": 0, "ids": [], "tasks": []}
            assert stream.start is not None and dict(stream.start["headers"])[b"content-type"].startswith(
                b"text/event-stream"
            )
            task = backend.create_task(DEFAULT_ACCESS_KEY, "text2video", {"prompt": "live"})
            with anyio.fail_after(1):  # the promise: a new task shows within a second
                shown = await stream.wait_for("tasks")
            assert shown["ids"] == [task.task_id]
            backend.advance(600)
            clock = await stream.wait_for("clock")
            assert clock["now_ms"] == backend.now_ms()
            [card] = (await stream.wait_for("tasks"))["tasks"]
            assert card["status"] == "succeed" and card["result"]["videos"][0]["url"].startswith(
                f"{C}/media/"
            )
        assert stream.ended.is_set()  # the client went away: the stream ended

    anyio.run(scenario)


def test_the_stream_ends_when_the_server_asks_to_close_the_connection(backend: Backend) -> None:
    """uvicorn, shutting down, marks the requests in progress not to be kept alive, then waits
    for them: a stream that went on would hold up the shutdown."""

    class Cycle:  # the object uvicorn's receive belongs to
        keep_alive = True

        async def receive(self) -> Message:
            await anyio.sleep_forever()
            raise AssertionError

    cycle = Cycle()

    async def scenario() -> None:
        async with streaming(create_app(backend), cycle.receive) as stream:
            await stream.wait_for("limits")
            cycle.keep_alive = False
            with anyio.fail_after(1):
                await stream.ended.wait()

    anyio.run(scenario)


# -- the media mirror and the journal's own entries -----------------------------------------------------


def test_the_page_plays_results_through_a_mirror_that_stays_out_of_the_journal(
    backend: Backend, control: httpx.Client, auth: dict[str, str]
) -> None:
    task_id = control.post(T2V, json={"prompt": "a kitten"}, headers=auth).json()["data"]["task_id"]
    backend.advance(600)
    recorded = len(backend.journal)
    mirrored = control.get(f"{C}/media/videos/{task_id}.mp4")
    assert mirrored.status_code == 200 and mirrored.headers["content-type"] == "video/mp4"
    ranged = control.get(f"{C}/media/videos/{task_id}.mp4", headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and len(ranged.content) == 100  # a <video> seeks with ranges
    control.get(f"{C}/state")
    assert len(backend.journal) == recorded  # the dashboard's own requests are not the client's
    direct = control.get(f"/media/videos/{task_id}.mp4")
    assert direct.content == mirrored.content and len(backend.journal) == recorded + 1
    for gone in (
        f"{C}/media/videos/unknown.mp4",
        f"{C}/media/nothing/here",
        f"{C}/media/videos/{task_id}.png",
    ):
        response = control.get(gone)
        assert response.status_code == 404 and response.json()["error"] == "not_found", gone


def test_one_journal_entry_in_full(backend: Backend, control: httpx.Client) -> None:
    token = make_jwt(DEFAULT_ACCESS_KEY, "wrong-secret")
    control.post(T2V, json={"prompt": "x"}, headers={"Authorization": f"Bearer {token}"})
    entry = backend.journal.last()
    assert entry is not None
    full = control.get(f"{C}/journal/{entry.id}").json()
    assert full == entry.to_dict()
    assert full["headers"]["authorization"] == "Bearer ***" and token not in str(full)
    assert full["response"]["body"] and orjson.loads(full["response"]["body"])["code"] == 1000
    for missing in ("0", str(entry.id + 1), "abc", "9" * 30):
        response = control.get(f"{C}/journal/{missing}")
        assert response.status_code == 404 and response.json()["error"] == "not_found"


@pytest.mark.slow
def test_a_live_server_stops_at_once_with_a_stream_open(backend: Backend) -> None:
    """uvicorn waits for the answers in progress when it stops; the stream sees it asked to
    close (its connection is no longer kept alive) and ends within a tick."""
    server = LiveServer(create_app(backend)).start()
    events: list[str] = []

    def watch() -> None:
        headers = {"Accept": "text/event-stream"}
        with httpx.stream("GET", f"{server.url}{C}/state", headers=headers, timeout=30) as response:
            for line in response.iter_lines():
                events.append(line)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    deadline = time.monotonic() + 10
    while not any(line.startswith("event: limits") for line in events) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert any(line.startswith("event: limits") for line in events)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2.0  # not STREAM_SECONDS, nor forever
    watcher.join(5)
    assert not watcher.is_alive()
