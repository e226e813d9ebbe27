"""Task queries the request layer answers without the router (``routes.official.task_query``)
are answered, journaled and numbered exactly as the router's query route answers them: same
status, headers and body (request ids included), same journal entries, for any path, method and
credentials, and whatever happens to the tasks meanwhile."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from mockkling import Backend, Config, Timing, create_app, make_jwt
from mockkling.request_layer import RequestLayer
from mockkling.validation import ACTIONS

ACCOUNTS = {"ak-1": "sk-1", "ak-2": "sk-2"}
# A key configured on its own names its account, which the journal shows masked.
RAW_KEY = "sk-raw-key-0123456789"
TOKENS = {ak: make_jwt(ak, sk, ttl_seconds=36000) for ak, sk in ACCOUNTS.items()}
CREATE = b'{"model_name": "kling-v1", "prompt": "a kitten", "duration": "5", "external_task_id": "ext-%d"}'
START_MS = 1_780_000_000_000
# Every task query path's prefix, and paths that are none.
NOT_QUERIES = ["/v1/videos", "/v1/general", "/v2"]
PREFIXES = sorted(action.endpoint.path for action in ACTIONS.values()) + NOT_QUERIES * 5


def _layer(app: Starlette) -> RequestLayer:
    layer = app.build_middleware_stack()
    assert isinstance(layer, RequestLayer)
    app.middleware_stack = layer
    return layer


class _Pair:
    """Two mocks alike in all but the shortcut: ``fast`` has it, ``plain`` leaves every request
    to the router."""

    def __init__(self, **settings: Any) -> None:
        config = Config(
            seed=1, accounts=ACCOUNTS, api_keys={RAW_KEY: RAW_KEY}, timing=Timing(2, 5), **settings
        )
        self.backends = [Backend(config) for _ in range(2)]
        self.apps = [create_app(backend) for backend in self.backends]
        for backend in self.backends:
            backend.use_manual_clock(START_MS)
        fast, plain = (_layer(app) for app in self.apps)
        assert fast.shortcut is not None
        plain.shortcut = None
        self.answered = 0
        shortcut = fast.shortcut

        def counted(scope: Any, authorization: bytes | None) -> Any:
            response = shortcut(scope, authorization)
            self.answered += response is not None
            return response

        fast.shortcut = counted

    def both(
        self, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b"", root: str = ""
    ) -> Any:
        answers = [asyncio.run(_call(app, method, path, headers, body, root)) for app in self.apps]
        assert answers[0] == answers[1], (method, path, headers, root)
        return answers[0]

    def advance(self, seconds: float) -> None:
        for backend in self.backends:
            backend.advance(seconds)

    def journals(self) -> list[list[dict[str, Any]]]:
        out = []
        for backend in self.backends:
            entries = [entry.to_dict() for entry in backend.journal]
            for entry in entries:
                entry.pop("duration_ms")
            out.append(entries)
        return out


async def _call(
    app: Starlette,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    root: str,
    fail_on: str | None = None,
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "query_string": b"",
        "root_path": root,
        "headers": [(b"host", b"127.0.0.1:8000"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == fail_on:
            raise OSError("the client went away")
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], list(sent[0]["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


def _bearer(ak: str) -> tuple[bytes, bytes]:
    return (b"authorization", f"Bearer {TOKENS[ak]}".encode())


CREDENTIALS = {
    "ak-1": [_bearer("ak-1")],
    "ak-2": [_bearer("ak-2")],
    "raw key": [(b"authorization", f"Bearer {RAW_KEY}".encode())],
    "none": [],
    "empty": [(b"authorization", b"")],
    "no token": [(b"authorization", b"Bearer ")],
    "basic": [(b"authorization", b"Basic YTpi")],
    "bad token": [(b"authorization", b"Bearer abc.def.ghi")],
    "several": [_bearer("ak-1"), _bearer("ak-1")],
}

IDENTS = ["task-1", "task-2", "task-3", "ext-1", "ext-2", "ext-3"] * 2
IDENTS += ["nope", "init-selection", "", "a/b", "newline"]
# Weighted towards what the shortcut answers (the tasks are text2video ones), so that every
# example has some of both.
query = st.tuples(
    st.sampled_from(["GET"] * 6 + ["HEAD", "POST", "DELETE"]),
    st.sampled_from(["/v1/videos/text2video"] * len(PREFIXES) + PREFIXES),
    st.sampled_from(IDENTS),
    st.sampled_from(["", "", "", "", "/", "//"]),
    st.sampled_from(["ak-1"] * 6 + ["ak-2", "raw key"] * 3 + sorted(CREDENTIALS)),
    st.sampled_from([""] * 8 + ["/mk", "/v1"]),
    st.sampled_from([0.0, 0.0, 1.0, 3.0, 10.0]),
)


# The shortcut answers whether the journal is on (the default) or off.
JOURNAL_SIZES = pytest.mark.parametrize("journal_size", [1000, 0], ids=["journal", "no-journal"])


@JOURNAL_SIZES
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(query, min_size=1, max_size=25))
def test_a_query_answers_as_the_router_does(
    journal_size: int, steps: list[tuple[str, str, str, str, str, str, float]]
) -> None:
    pair = _Pair(journal_size=journal_size)
    ids = {}
    for n, who in ((1, "ak-1"), (2, "ak-2"), (3, "raw key")):
        created = pair.both("POST", "/v1/videos/text2video", CREDENTIALS[who], CREATE % n)
        ids[f"task-{n}"] = created[2].split(b'"task_id":"')[1].split(b'"')[0].decode()
    for method, prefix, ident, tail, who, root, seconds in steps:
        ident = ids.get(ident, ident)
        ident = ids["task-1"] + "\n" if ident == "newline" else ident
        path = f"{prefix}/{ident}"
        path = path.replace("/", "//", 1) if tail == "//" else path + tail
        pair.both(method, path, CREDENTIALS[who], root=root)
        pair.advance(seconds)
    fast, plain = pair.journals()
    assert fast == plain
    assert len(fast) == (len(steps) + 3 if journal_size else 0)


@JOURNAL_SIZES
def test_the_shortcut_answers_a_plain_query(journal_size: int) -> None:
    """Without this, the test above would pass with a shortcut that never answers."""
    pair = _Pair(journal_size=journal_size)
    created = pair.both("POST", "/v1/videos/text2video", [_bearer("ak-1")], CREATE % 1)
    task_id = created[2].split(b'"task_id":"')[1].split(b'"')[0].decode()
    pair.advance(10)
    status, _headers, body = pair.both("GET", f"/v1/videos/text2video/{task_id}", [_bearer("ak-1")])
    assert status == 200 and b'"task_status":"succeed"' in body
    pair.both("GET", "/v1/videos/text2video/ext-1", [_bearer("ak-1")])
    assert pair.answered == 2
    # Refusals are the router's to answer.
    pair.both("GET", f"/v1/videos/text2video/{task_id}", [_bearer("ak-2")])
    pair.both("GET", f"/v1/videos/text2video/{task_id}", CREDENTIALS["several"])
    assert pair.answered == 2


def test_a_crash_while_answering_is_answered_in_the_envelope(monkeypatch: Any) -> None:
    pair = _Pair()
    created = pair.both("POST", "/v1/videos/text2video", [_bearer("ak-1")], CREATE % 1)
    task_id = created[2].split(b'"task_id":"')[1].split(b'"')[0].decode()

    def broken(*args: object) -> None:
        raise RuntimeError("a bug in a view")

    monkeypatch.setattr("mockkling.routes.official.task_view", broken)
    fast = pair.apps[0]  # the one with the shortcut (a crash may cost it a request id more)
    status, _headers, body = asyncio.run(
        _call(fast, "GET", f"/v1/videos/text2video/{task_id}", [_bearer("ak-1")], b"", "")
    )
    assert status == 500 and b'"code":5000' in body


@pytest.mark.parametrize("fail_on", [None, "http.response.start", "http.response.body"])
def test_a_query_is_journaled_as_the_router_journals_it_when_the_client_goes_or_the_body_is_cut(
    fail_on: str | None,
) -> None:
    """Where the shortcut sends and journals the answer itself: a client gone before the head
    or the body goes, and a journal keeping fewer body bytes than the answer has."""
    pair = _Pair(journal_body_bytes=16)
    created = pair.both("POST", "/v1/videos/text2video", [_bearer("ak-1")], CREATE % 1)
    task_id = created[2].split(b'"task_id":"')[1].split(b'"')[0].decode()
    pair.advance(10)
    for app in pair.apps:
        call = _call(app, "GET", f"/v1/videos/text2video/{task_id}", [_bearer("ak-1")], b"", "", fail_on)
        if fail_on is None:
            asyncio.run(call)
        else:
            with pytest.raises(OSError):
                asyncio.run(call)
    assert pair.answered == 1
    fast, plain = pair.journals()
    assert fast == plain
    entry = fast[-1]
    assert entry["status"] == 200 and entry["response"]["body_truncated"] == (
        fail_on != "http.response.start"
    )


def test_with_the_journal_off_fault_rules_rate_limits_and_namespaces_still_apply() -> None:
    """With the journal off the shortcut answers only when nothing else is in force: a fault
    rule or a request rate still decides a query's answer, and a namespace still scopes it."""
    pair = _Pair(journal_size=0)
    app = pair.apps[0]  # the one with the shortcut

    def query(task_id: str, *headers: tuple[bytes, bytes]) -> tuple[int, bytes]:
        path = f"/v1/videos/text2video/{task_id}"
        status, _headers, body = asyncio.run(_call(app, "GET", path, [_bearer("ak-1"), *headers], b"", ""))
        return status, body

    created = pair.both("POST", "/v1/videos/text2video", [_bearer("ak-1")], CREATE % 1)
    task_id = created[2].split(b'"task_id":"')[1].split(b'"')[0].decode()
    assert query(task_id)[0] == 200 and pair.answered == 1
    backend = pair.backends[0]
    backend.faults.add("GET /v1/videos/*/* 5000 x1")
    status, body = query(task_id)
    assert status == 500 and b'"code":5000' in body
    backend.limits.set(rate=1, per_seconds=60)
    assert [query(task_id)[0] for _ in range(2)] == [200, 429]
    backend.limits.set()  # none
    assert pair.answered == 1  # none of these by the shortcut
    team = (b"x-mockkling-namespace", b"team-b")
    assert query(task_id, team)[0] == 404  # the task is in the default namespace
    made = asyncio.run(_call(app, "POST", "/v1/videos/text2video", [_bearer("ak-1"), team], CREATE % 2, ""))
    theirs = made[2].split(b'"task_id":"')[1].split(b'"')[0].decode()
    assert query(theirs, team)[0] == 200 and query(theirs)[0] == 404
    assert pair.answered == 2  # team-b's own query
