"""Task queries and creates the request layer answers without the router
(``routes.official.shortcut``) are answered, journaled and numbered exactly as the router's
routes answer them: same status, headers and body (request ids included), same journal entries,
same tasks stored, for any path, method, credentials and body, refusals and crashes included,
and whatever happens to the tasks meanwhile. So are those it answers at once, with no ASGI call,
to the in-process transports (``answer_at_once``)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from mockkling import Backend, Config, FailRule, Fate, Limits, Timing, create_app, make_jwt
from mockkling.request_layer import RequestLayer
from mockkling.tasks import Task
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
            answer = shortcut(scope, authorization)
            if not callable(answer):
                self.answered += answer is not None
                return answer

            def finish(body: bytes) -> Any:  # a create's answer, once its body has come
                done = answer(body)
                self.answered += done is not None
                return done

            return finish

        fast.shortcut = counted
        self.answered_at_once = 0

    def both(
        self,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes = b"",
        root: str = "",
        split: bool = False,
        at_once: bool = False,
    ) -> Any:
        """The answer both mocks give; with ``at_once``, the fast one is asked as the in-process
        transport asks it: ``answer_at_once`` first, then, if it has no answer, the ASGI call."""
        fast = None
        if at_once:
            fast = _at_once(self.apps[0], method, path, headers, body, root)
            self.answered_at_once += fast is not None
        answers = [
            answer or asyncio.run(_call(app, method, path, headers, body, root, split=split))
            for app, answer in zip(self.apps, (fast, None), strict=True)
        ]
        assert answers[0] == answers[1], (method, path, headers, body, root, at_once)
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

    def stores(self) -> list[list[dict[str, Any]]]:
        """Each mock's tasks, every field of each."""
        return [
            sorted(
                ({name: getattr(task, name) for name in Task.__slots__} for task in backend.tasks), key=str
            )
            for backend in self.backends
        ]


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]], root: str = "") -> dict[str, Any]:
    return {
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


async def _call(
    app: Starlette,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    root: str,
    fail_on: str | None = None,
    split: bool = False,
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Send a request to ``app``; with ``split``, its body comes in two messages."""
    scope = _scope(method, path, headers, root)
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    if split and len(body) > 1:
        half = len(body) // 2
        messages = [
            {"type": "http.request", "body": body[half:], "more_body": False},
            {"type": "http.request", "body": body[:half], "more_body": True},
        ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == fail_on:
            raise OSError("the client went away")
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], list(sent[0]["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


def _at_once(
    app: Starlette, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes, root: str
) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
    answered = app.answer_at_once(_scope(method, path, headers, root), body)  # type: ignore[attr-defined]
    if answered is None:
        return None
    status, answer_headers, content, _account = answered
    return status, list(answer_headers), content


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
    st.booleans(),  # asked at once, as the in-process transports ask
    st.sampled_from([b""] * 3 + [b'{"x": 1}']),  # a body sent without a Content-Length
)


# The shortcut answers whether the journal is on (the default) or off.
JOURNAL_SIZES = pytest.mark.parametrize("journal_size", [1000, 0], ids=["journal", "no-journal"])


@JOURNAL_SIZES
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(query, min_size=1, max_size=25))
def test_a_query_answers_as_the_router_does(
    journal_size: int, steps: list[tuple[str, str, str, str, str, str, float, bool, bytes]]
) -> None:
    pair = _Pair(journal_size=journal_size)
    ids = {}
    for n, who in ((1, "ak-1"), (2, "ak-2"), (3, "raw key")):
        created = pair.both("POST", "/v1/videos/text2video", CREDENTIALS[who], CREATE % n)
        ids[f"task-{n}"] = created[2].split(b'"task_id":"')[1].split(b'"')[0].decode()
    for method, prefix, ident, tail, who, root, seconds, at_once, stray in steps:
        ident = ids.get(ident, ident)
        ident = ids["task-1"] + "\n" if ident == "newline" else ident
        path = f"{prefix}/{ident}"
        path = path.replace("/", "//", 1) if tail == "//" else path + tail
        pair.both(method, path, CREDENTIALS[who], stray, root=root, at_once=at_once)
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
    # A refusal too (another account's task); several credentials are the router's to refuse.
    status, _headers, body = pair.both("GET", f"/v1/videos/text2video/{task_id}", [_bearer("ak-2")])
    assert status == 404 and b'"code":1203' in body
    pair.both("GET", f"/v1/videos/text2video/{task_id}", CREDENTIALS["several"])
    assert pair.answered == 3


def test_a_crash_while_answering_a_query_is_answered_as_the_router_answers_it(monkeypatch: Any) -> None:
    pair = _Pair()
    created = pair.both("POST", "/v1/videos/text2video", [_bearer("ak-1")], CREATE % 1)
    task_id = created[2].split(b'"task_id":"')[1].split(b'"')[0].decode()

    def broken(*args: object) -> None:
        raise RuntimeError("a bug in a view")

    monkeypatch.setattr("mockkling.routes.official.task_view", broken)
    status, _headers, body = pair.both("GET", f"/v1/videos/text2video/{task_id}", [_bearer("ak-1")])
    assert status == 500 and b'"code":5000' in body
    assert pair.answered == 1


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
    assert query(theirs, team)[0] == 200
    assert pair.answered == 3  # team-b's two queries (a refusal is the shortcut's too)
    assert query(theirs)[0] == 404


@JOURNAL_SIZES
def test_answered_at_once_only_when_nothing_else_applies(journal_size: int) -> None:
    """``answer_at_once`` (the in-process transports' first question) answers a plain query
    and create as the router does, and has no answer, leaving the request to the ASGI call, for
    one the shortcut leaves, or whenever a fault rule, a request rate or a namespace is in force
    or a body is declared over the size limit. Without this, the properties above would pass
    with an ``answer_at_once`` that never answers."""
    pair = _Pair(journal_size=journal_size, max_body_bytes=1000)
    created = pair.both(
        "POST", T2V, _create_headers(CREATE % 1, (), "length", "ak-1"), CREATE % 1, at_once=True
    )
    task_id = created[2].split(b'"task_id":"')[1].split(b'"')[0].decode()
    pair.advance(10)
    status, _headers, body = pair.both("GET", f"{T2V}/{task_id}", [_bearer("ak-1")], at_once=True)
    assert status == 200 and b'"task_status":"succeed"' in body
    status, _headers, body = pair.both("GET", f"{T2V}/{task_id}", [_bearer("ak-2")], at_once=True)
    assert status == 404 and pair.answered_at_once == 3
    pair.both("GET", T2V, [_bearer("ak-1")], at_once=True)  # a list: the router's
    pair.both("GET", f"{T2V}/{task_id}", CREDENTIALS["several"], at_once=True)
    over = BODIES["largest"]
    pair.both("POST", T2V, _create_headers(over, (), "length", "ak-2"), over, at_once=True)
    assert pair.answered_at_once == 3
    fast = pair.backends[0]
    team = (b"x-mockkling-namespace", b"team-b")
    assert _at_once(pair.apps[0], "GET", f"{T2V}/{task_id}", [_bearer("ak-1"), team], b"", "") is None
    fast.limits.set(rate=100, per_seconds=60)
    assert _at_once(pair.apps[0], "GET", f"{T2V}/{task_id}", [_bearer("ak-1")], b"", "") is None
    fast.limits.set()
    rule = fast.faults.add("GET /v1/videos/*/* 5000 x1")
    assert _at_once(pair.apps[0], "GET", f"{T2V}/{task_id}", [_bearer("ak-1")], b"", "") is None
    status, _headers, body = asyncio.run(
        _call(pair.apps[0], "GET", f"{T2V}/{task_id}", [_bearer("ak-1")], b"", "")
    )
    assert status == 500 and b'"code":5000' in body  # the rule applies on the ASGI call
    fast.faults.remove(rule.id)
    assert _at_once(pair.apps[0], "GET", f"{T2V}/{task_id}", [_bearer("ak-1")], b"", "") is not None
    # Each request the mocks were both asked is journaled alike, whichever way it was answered.
    fast_entries, plain_entries = pair.journals()
    assert fast_entries[:6] == plain_entries and len(plain_entries) == (6 if journal_size else 0)


# -- creates ---------------------------------------------------------------------------------

T2V = "/v1/videos/text2video"
PROMPT = b'{"model_name": "kling-v1", "prompt": "%s", "duration": "5"}'
# Bodies the create route takes or refuses, each way it can: for text2video, and for every
# other task endpoint (most of which refuse them for a missing field).
BODIES = {
    "valid": PROMPT % b"a kitten",
    "external id": b'{"model_name": "kling-v1", "prompt": "a kitten", "external_task_id": "same"}',
    "fails later": PROMPT % b"a forbidden kitten",
    "pro": b'{"model_name": "kling-v2-1-master", "prompt": "a kitten", "mode": "pro", "duration": "10"}',
    "bad duration": b'{"model_name": "kling-v1", "prompt": "a kitten", "duration": "7"}',
    "unknown model": b'{"model_name": "kling-v9", "prompt": "a kitten"}',
    "wrong type": b'{"model_name": "kling-v1", "prompt": 5}',
    "unknown field": b'{"model_name": "kling-v1", "prompt": "a kitten", "colour": "red"}',
    "no prompt": b'{"model_name": "kling-v1"}',
    "not json": b'{"model_name": ',
    "not utf-8": b'{"prompt": "\xff"}',
    "array": b"[1, 2]",
    "string": b'"a kitten"',
    "too deep": b'{"a":' * 40 + b"1" + b"}" * 40,
    "blank": b"   ",
    "largest": b'{"model_name": "kling-v1", "prompt": "%s"}' % (b"k" * 980),
    "over the shortcut's size": b'{"model_name": "kling-v1", "prompt": "%s"}' % (b"k" * 1100),
}
JSON = b"application/json"
# Content-Type headers: the route reads the first of several.
CONTENT_TYPES = [(JSON,)] * 4 + [(), (b"application/json; charset=utf-8",), (b"text/plain",), (b"",)]
CONTENT_TYPES += [(JSON, b"text/plain"), (b"text/plain", JSON)]
# Content-Length headers: the body's, none, the body's in two messages, two (the first over the
# size limit, read by the route; a server would refuse them), or one over the limit for a shorter
# body (an in-process client may send either).
LENGTHS = ["length"] * 4 + ["none", "split", "twice", "over"]
create = st.tuples(
    st.sampled_from(["POST"] * 8 + ["GET", "PUT"]),
    st.sampled_from([T2V] * len(PREFIXES) + PREFIXES),
    st.sampled_from(["", "", "", "", "/", "//"]),
    st.sampled_from(["valid"] * 6 + sorted(BODIES)),
    st.sampled_from(CONTENT_TYPES),
    st.sampled_from(LENGTHS),
    st.sampled_from(["ak-1"] * 6 + ["ak-2", "raw key"] * 3 + sorted(CREDENTIALS)),
    st.sampled_from([""] * 8 + ["/mk"]),
    st.sampled_from([0.0, 0.0, 1.0, 3.0, 10.0]),
    st.booleans(),  # asked at once, as the in-process transports ask
)
# Refusals the store and the settings make: a second running task for an account (1303), a
# body over the size limit (413); and tasks whose prompt makes them fail.
CREATE_SETTINGS: dict[str, Any] = {
    "limits": Limits(concurrency=1),
    "fail_rules": [FailRule("forbidden")],
    "max_body_bytes": 1000,
}


def _create_headers(
    body: bytes, content_types: tuple[bytes, ...], length: str, who: str
) -> list[tuple[bytes, bytes]]:
    headers = list(CREDENTIALS[who])
    headers += [(b"content-type", content_type) for content_type in content_types]
    if length == "twice":
        headers.append((b"content-length", b"40000000"))
    if length == "over":
        headers.append((b"content-length", b"1010"))
    elif length != "none":
        headers.append((b"content-length", str(len(body)).encode()))
    return headers


@JOURNAL_SIZES
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(create, min_size=1, max_size=20), st.booleans())
def test_a_create_answers_as_the_router_does(journal_size: int, steps: list[Any], limited: bool) -> None:
    pair = _Pair(journal_size=journal_size, **(CREATE_SETTINGS if limited else {}))
    if limited:  # a fate waiting for the next task: consumed once, by one path or the other
        for backend in pair.backends:
            backend.fates.add(Fate(status="failed", message="fated"), action="text2video")
    for method, path, tail, body_name, content_type, length, who, root, seconds, at_once in steps:
        body = BODIES[body_name]
        path = path.replace("/", "//", 1) if tail == "//" else path + tail
        headers = _create_headers(body, content_type, length, who)
        split = length == "split" and not at_once  # the transport has the body whole
        status, _headers, answer = pair.both(method, path, headers, body, root, split=split, at_once=at_once)
        if status == 200 and method == "POST":  # its task, queried
            task_id = answer.split(b'"task_id":"')[1].split(b'"')[0].decode()
            pair.both("GET", f"{path.rstrip('/')}/{task_id}", CREDENTIALS[who], at_once=at_once)
        pair.advance(seconds)
    fast, plain = pair.journals()
    assert fast == plain
    assert pair.stores()[0] == pair.stores()[1]


@JOURNAL_SIZES
def test_the_shortcut_answers_a_plain_create_and_its_refusals(journal_size: int) -> None:
    """Without this, the test above would pass with a shortcut that never answers."""
    pair = _Pair(journal_size=journal_size, **CREATE_SETTINGS)
    ak1 = _create_headers(BODIES["valid"], (JSON,), "length", "ak-1")
    status, _headers, body = pair.both("POST", T2V, ak1, BODIES["valid"])
    assert status == 200 and b'"task_status":"submitted"' in body and pair.answered == 1
    refusals = {
        "another running task": (BODIES["valid"], (JSON,), 429, 1303),
        "refused by the schema": (BODIES["bad duration"], (JSON,), 400, 1201),
        "not json": (BODIES["not json"], (JSON,), 400, 1200),
        "not declared as json": (BODIES["valid"], (b"text/plain",), 400, 1200),
    }
    for body_in, content_type, want_status, code in refusals.values():
        headers = _create_headers(body_in, content_type, "length", "ak-1")
        status, _headers, body = pair.both("POST", T2V, headers, body_in)
        assert status == want_status and f'"code":{code}'.encode() in body
    bad_token = _create_headers(BODIES["valid"], (), "length", "bad token")
    status, _headers, body = pair.both("POST", T2V, bad_token, BODIES["valid"])
    assert status == 401
    # A body declared over the size limit (1000 bytes here), refused before it is read: by the
    # shortcut with the journal off; with it on, the layer hands such a request to the router.
    over_limit = BODIES["largest"]
    status, _headers, body = pair.both(
        "POST", T2V, _create_headers(over_limit, (), "length", "ak-2"), over_limit
    )
    assert status == 413
    answered = 1 + len(refusals) + 1 + (journal_size == 0)
    assert pair.answered == answered
    # A body longer than it declared, over the limit: refused by its size, once read.
    understated = [*CREDENTIALS["ak-2"], (b"content-length", b"10")]
    status, _headers, body = pair.both("POST", T2V, understated, over_limit)
    assert status == 413
    answered += 1
    assert pair.answered == answered
    # The router's: a body over the size the shortcut takes, one without a length or declared
    # empty (the route reads what comes: an in-process client may send a body all the same),
    # a root path.
    large = BODIES["over the shortcut's size"]
    pair.both("POST", T2V, _create_headers(large, (), "length", "ak-2"), large)
    empty = [*CREDENTIALS["ak-2"], (b"content-length", b"0")]
    status, _headers, body = pair.both("POST", T2V, empty, BODIES["valid"])
    assert status == 200
    pair.both("POST", T2V, _create_headers(BODIES["valid"], (), "none", "ak-2"), BODIES["valid"])
    pair.both("POST", T2V, ak1, BODIES["valid"], root="/mk")
    assert pair.answered == answered


def test_a_crash_while_creating_is_answered_once(monkeypatch: Any) -> None:
    """A crash after the task is stored is answered 500 / 5000 as the router answers it, with
    one task stored: not a second one, made by the router asked again."""
    pair = _Pair()

    def broken(*args: object) -> None:
        raise RuntimeError("a bug in a view")

    monkeypatch.setattr("mockkling.routes.official.created_view", broken)
    headers = _create_headers(BODIES["valid"], (), "length", "ak-1")
    status, _headers, body = pair.both("POST", T2V, headers, BODIES["valid"])
    assert status == 500 and b'"code":5000' in body
    assert pair.answered == 1
    assert [len(store) for store in pair.stores()] == [1, 1]


def test_with_the_journal_off_a_body_the_shortcut_leaves_reaches_the_app_whole() -> None:
    """With the journal off the layer reads the body of a create the shortcut has taken so far:
    one that comes in two messages is replayed to the app; one the shortcut leaves at its head
    (an untidy path) is not read at all."""
    pair = _Pair(journal_size=0)
    body = BODIES["valid"]
    headers = _create_headers(body, (), "length", "ak-1")
    status, _headers, _body = pair.both("POST", T2V, headers, body, split=True)
    assert status == 200 and pair.answered == 0
    status, _headers, _body = pair.both("POST", f"{T2V}/", headers, body)  # an untidy path
    assert status == 200 and pair.answered == 0
    status, _headers, _body = pair.both("POST", T2V, headers, body)
    assert status == 200 and pair.answered == 1
    assert [len(store) for store in pair.stores()] == [3, 3]


async def _call_withholding(
    app: Starlette, method: str, path: str, headers: list[tuple[bytes, bytes]]
) -> Any:
    """Send a request whose client holds its body back: its answer if the app gives one without
    reading the body, else "waits" (the app asked for the body)."""
    scope = _scope(method, path, headers)
    asked = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        asked.set()
        await asyncio.Event().wait()  # never comes
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    serving = asyncio.ensure_future(app(scope, receive, send))
    waiting = asyncio.ensure_future(asked.wait())
    await asyncio.wait([serving, waiting], return_when=asyncio.FIRST_COMPLETED)
    for task in (serving, waiting):
        task.cancel()
    if not serving.done() or serving.cancelled():
        return "waits"
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@JOURNAL_SIZES
def test_what_the_router_refuses_before_reading_the_body_is_refused_without_waiting_for_it(
    journal_size: int,
) -> None:
    """With the journal off the layer reads no body the router would not: a request the router
    refuses before reading its body (credentials, Content-Type, a declared length over the
    limit, by its first Content-Length) is refused as soon as its head has come, and one it
    reads waits for the body in both. (With the journal on, the layer reads the body ahead for
    the journal, but never one declared over the limit.)"""
    pair = _Pair(journal_size=journal_size, max_body_bytes=1000)
    body = BODIES["valid"]
    requests = {
        "bad token": ("POST", T2V, _create_headers(body, (), "length", "bad token")),
        "not JSON": ("POST", T2V, _create_headers(body, (b"text/plain",), "length", "ak-1")),
        "declared over the limit": ("POST", T2V, _create_headers(body, (), "over", "ak-1")),
        "declared twice, first over": ("POST", T2V, _create_headers(body, (), "twice", "ak-1")),
        "a query with a length": ("GET", f"{T2V}/nope", _create_headers(body, (), "length", "ak-1")),
        "unknown path": ("POST", "/v1/nope", _create_headers(body, (), "length", "ak-1")),
        "valid": ("POST", T2V, _create_headers(body, (), "length", "ak-1")),
    }
    answers = {}
    for name, (method, path, headers) in requests.items():
        fast, plain = (asyncio.run(_call_withholding(app, method, path, headers)) for app in pair.apps)
        assert fast == plain, name
        answers[name] = fast if fast == "waits" else fast[0]
    over = {"declared over the limit": 413, "declared twice, first over": 413}
    refused = {"bad token": 401, "not JSON": 400, **over}
    if journal_size:
        assert answers == {**dict.fromkeys(requests, "waits"), **over}
    else:
        assert answers == {**refused, "a query with a length": 404, "unknown path": 404, "valid": "waits"}


def test_a_crash_is_logged_as_the_router_logs_it(caplog: pytest.LogCaptureFixture, monkeypatch: Any) -> None:
    pair = _Pair()

    def broken(*args: object) -> None:
        raise RuntimeError("a bug in a view")

    monkeypatch.setattr("mockkling.routes.official.created_view", broken)
    headers = _create_headers(BODIES["valid"], (), "length", "ak-1")
    logged = []
    for app in pair.apps:
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="mockkling"):
            asyncio.run(_call(app, "POST", T2V, headers, BODIES["valid"], ""))
        logged.append([(r.name, r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records])
    assert logged[0] == logged[1] == [("mockkling", "ERROR", f"unhandled error on POST {T2V}", True)]
    assert pair.answered == 1
    # A query of a task whose external id the log must escape, as the router's log line does.
    body = b'{"model_name": "kling-v1", "prompt": "a kitten", "external_task_id": "a#b?c"}'
    monkeypatch.undo()
    pair.both("POST", T2V, _create_headers(body, (), "length", "ak-1"), body)
    monkeypatch.setattr("mockkling.routes.official.task_view", broken)
    logged = []
    for app in pair.apps:
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="mockkling"):
            asyncio.run(_call(app, "GET", f"{T2V}/a#b?c", CREDENTIALS["ak-1"], b"", ""))
        logged.append([r.getMessage() for r in caplog.records])
    assert logged[0] == logged[1] == [f"unhandled error on GET {T2V}/a%23b%3Fc"]
    assert pair.answered == 3


@JOURNAL_SIZES
def test_refused_credentials_are_read_for_the_journal_only(journal_size: int) -> None:
    """The account of a request refused for its credentials is read for its journal entry, as
    the router reads it, and not at all with the journal off (on a shared state, a read of
    credentials that fail costs a round trip to the store)."""
    pair = _Pair(journal_size=journal_size)
    reads = []
    for backend in pair.backends:
        calls = [0]
        account_of = backend.auth.account_of

        def counted(
            authorization: bytes | None, calls: list[int] = calls, account_of: Any = account_of
        ) -> Any:
            calls[0] += 1
            return account_of(authorization)

        backend.auth.account_of = counted  # type: ignore[method-assign]
        reads.append(calls)
    bad = CREDENTIALS["bad token"]
    pair.both("GET", f"{T2V}/nope", bad)
    pair.both("POST", T2V, _create_headers(BODIES["valid"], (), "length", "bad token"), BODIES["valid"])
    assert pair.answered == 2
    assert reads[0] == reads[1] == [2 if journal_size else 0]


def test_the_size_limit_is_read_when_a_request_comes() -> None:
    pair = _Pair(journal_size=0)  # with the journal on, the layer leaves such a body to the router
    for backend in pair.backends:
        backend.config.max_body_bytes = 50
    headers = _create_headers(BODIES["valid"], (), "length", "ak-1")
    status, _headers, _body = pair.both("POST", T2V, headers, BODIES["valid"])
    assert status == 413 and pair.answered == 1
