"""The request journal records what clients sent and what they got, masks every credential,
filters, clears, and stays bounded."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping

import httpx
import orjson
import pytest

from mockkling import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, Backend, Config, Journal, create_app, make_jwt
from mockkling.journal import Recorded
from mockkling.transport import SyncASGITransport

T2V = "/v1/videos/text2video"


def test_records_what_was_sent_and_what_came_back(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    started = backend.now_ms()
    body = {"prompt": "a kitten", "duration": "10", "external_task_id": "order-1"}
    created = client.post(T2V, json=body, headers={**auth, "X-Trace": "t-1"})
    backend.advance(2)
    client.get(T2V, params={"pageNum": 1, "pageSize": 5}, headers=auth)
    first, second = backend.journal
    assert (first.method, first.path, first.query, first.status) == ("POST", T2V, "", 200)
    assert first.json() == body
    assert first.body_size == len(created.request.content) and not first.body_truncated
    assert first.headers["x-trace"] == "t-1"
    assert first.headers["content-type"] == "application/json"
    assert first.account == DEFAULT_ACCESS_KEY
    assert first.time == started and first.fault is None and first.duration_ms > 0
    assert (second.method, second.query, second.time) == ("GET", "pageNum=1&pageSize=5", started + 2000)
    assert second.id > first.id
    assert backend.journal.last() is not None and backend.journal.last().id == second.id  # type: ignore[union-attr]


def test_records_the_body_of_a_request_refused_before_it_was_read(
    backend: Backend, client: httpx.Client
) -> None:
    client.post(T2V, json={"prompt": "no credentials"})
    [entry] = backend.journal
    assert entry.status == 401 and entry.account is None
    assert entry.json() == {"prompt": "no credentials"}


def test_never_records_a_secret(backend: Backend, client: httpx.Client) -> None:
    token = make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)
    backend.add_api_key("sk-very-secret-key", DEFAULT_ACCESS_KEY)
    client.get(T2V, headers={"Authorization": f"Bearer {token}"})
    client.get(T2V, headers={"Authorization": "sk-very-secret-key", "X-Api-Key": "sk-very-secret-key"})
    client.get(
        T2V, params={"access_token": "qs-secret", "pageNum": "1"}, headers={"Cookie": "session=c-secret"}
    )
    client.get(T2V, headers={"Authorization": "Bearer AK|SK-pair-secret"})
    dumped = json.dumps([e.to_dict() for e in backend.journal])
    for secret in (
        token,
        "sk-very-secret-key",
        "qs-secret",
        "c-secret",
        "SK-pair-secret",
        DEFAULT_SECRET_KEY,
    ):
        assert secret not in dumped
    first, second, third, fourth = backend.journal
    assert first.headers["authorization"] == "Bearer ***"  # the scheme stays readable
    assert (first.account, second.account) == (DEFAULT_ACCESS_KEY, DEFAULT_ACCESS_KEY)
    assert second.headers["authorization"] == "***" and second.headers["x-api-key"] == "***"
    assert third.query == "access_token=***&pageNum=1"
    assert third.headers["cookie"] == "***"
    assert fourth.headers["authorization"] == "Bearer ***"


def test_credentials_in_a_body_are_masked(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    """A callback URL's token and a member named like a credential never leave the journal;
    the rest of the body reads as sent (session_id is an id, not a secret)."""
    body = {
        "prompt": "my token is safe",
        "callback_url": "https://hooks.example/cb?token=cb-secret&run=7",
        "webhook_secret": "wh-secret",
        "session_id": "s-1",
    }
    client.post(T2V, json=body, headers=auth)
    [entry] = backend.journal
    assert entry.json() == {
        **body,
        "callback_url": "https://hooks.example/cb?token=***&run=7",
        "webhook_secret": "***",
    }
    dumped = json.dumps([e.to_dict() for e in backend.journal])
    assert "cb-secret" not in dumped and "wh-secret" not in dumped


def test_a_percent_encoded_credential_name_is_masked_and_other_queries_kept_as_sent(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    client.get(f"{T2V}?%74oken=hunter2&pageNum=1", headers=auth)
    client.get(f"{T2V}?prompt=a%20cat&pageNum=2", headers=auth)
    masked, plain = backend.journal
    assert masked.query == "%74oken=***&pageNum=1"
    assert "hunter2" not in orjson.dumps([e.to_dict() for e in backend.journal]).decode()
    assert plain.query == "prompt=a%20cat&pageNum=2"  # exactly as the client sent it


def test_filters(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> None:
    backend.add_account("other", "other-secret")
    other = {"Authorization": f"Bearer {make_jwt('other', 'other-secret')}"}
    client.post(T2V, json={"prompt": "x"}, headers=auth)
    backend.advance(1)
    middle = backend.now_ms()
    client.get(T2V, headers=other)
    client.get("/v1/videos/image2video/nope", headers=auth)
    backend.advance(1)
    client.get("/openapi.yaml")
    journal = backend.journal
    assert [e.path for e in journal.find(method="get")] == [
        T2V,
        "/v1/videos/image2video/nope",
        "/openapi.yaml",
    ]
    assert [e.method for e in journal.find(path="/v1/videos/*")] == ["POST", "GET", "GET"]
    assert [e.path for e in journal.find(path="/v1/videos/*/*")] == ["/v1/videos/image2video/nope"]
    assert [e.status for e in journal.find(status=404)] == [404]
    assert journal.count(account="other") == 1
    assert journal.count(account=DEFAULT_ACCESS_KEY) == 2
    assert [e.path for e in journal.find(since=middle)] == [
        T2V,
        "/v1/videos/image2video/nope",
        "/openapi.yaml",
    ]
    assert [e.path for e in journal.find(limit=2)] == ["/v1/videos/image2video/nope", "/openapi.yaml"]
    assert journal.find(method="POST", status=200, account=DEFAULT_ACCESS_KEY)[0].json() == {"prompt": "x"}
    journal.clear()
    assert len(journal) == 0 and journal.last() is None


def test_bounded_in_entries_and_body_bytes(auth: dict[str, str]) -> None:
    backend = Backend(Config(journal_size=3, journal_body_bytes=16))
    with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock") as client:
        for n in range(5):
            client.get(T2V, params={"pageNum": n + 1}, headers=auth)
        client.post(T2V, json={"prompt": "a rather long prompt about kittens"}, headers=auth)
    entries = list(backend.journal)
    assert len(entries) == 3
    assert [e.query for e in entries[:2]] == ["pageNum=4", "pageNum=5"]
    last = entries[-1]
    assert last.body == '{"prompt":"a rat' and last.body_truncated and last.body_size > 16
    with pytest.raises(ValueError, match="truncated"):
        last.json()


def test_can_be_switched_off(auth: dict[str, str]) -> None:
    backend = Backend(Config(journal_size=0))
    with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock") as client:
        assert client.get(T2V, headers=auth).status_code == 200
    assert len(backend.journal) == 0 and not backend.journal.enabled


def test_the_control_api_is_not_recorded(backend: Backend, client: httpx.Client) -> None:
    client.get("/__mockkling/journal")
    client.post("/__mockkling/clock/advance", json={"seconds": 1})
    assert len(backend.journal) == 0


def test_a_large_body_is_refused_unread_and_recorded_by_its_declared_size(auth: dict[str, str]) -> None:
    backend = Backend(Config(max_body_bytes=1000, journal_body_bytes=10))
    with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock") as client:
        response = client.post(T2V, content=b"x" * 5000, headers={**auth, "Content-Type": "application/json"})
    assert response.status_code == 413
    # Not one byte is read, not even the journal's share: a client waiting for the answer
    # before it sends (Expect: 100-continue) must get its 413 at once.
    [entry] = backend.journal
    assert (entry.status, entry.body_size, entry.body) == (413, 5000, "")


def test_journal_object_on_its_own() -> None:
    journal = Journal(size=2, body_bytes=4)
    for n in range(3):
        journal.record(
            Recorded(n, "GET", f"/{n}", b"", [(b"authorization", b"Bearer t")], b"abcdef", 6, 200, None)
        )
    assert [e.path for e in journal] == ["/1", "/2"]
    assert [e.body for e in journal] == ["abcd", "abcd"]
    assert journal.last() is not None and journal.last().to_dict()["headers"] == {
        "authorization": "Bearer ***"
    }  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        Journal(size=-1)


@pytest.mark.parametrize(
    ("padding", "cut"),
    [(0, False), (1, True)],
    ids=["headers at the bound", "a byte over"],
)
@pytest.mark.parametrize(
    "body", [b"", b"b" * 200, b"b" * 2000], ids=["no body", "a body kept whole", "a body over body_bytes"]
)
def test_headers_are_kept_to_header_bytes_exactly(padding: int, cut: bool, body: bytes) -> None:
    """Headers are counted only when the packed entry is larger than header_bytes: the bound
    must hold at its edge, whatever the body, and with a body cut too."""
    journal = Journal(header_bytes=64, body_bytes=1000)
    headers = [(b"authorization", b"Bearer t"), (b"x-pad", b"p" * (64 - 33 + padding)), (b"x-last", b"v")]
    assert sum(len(n) + len(v) for n, v in headers) == 64 + padding
    journal.record(Recorded(1, "POST", "/", b"", headers, body, len(body), 200, None))
    entry = journal.last()
    assert entry is not None and entry.body == body[:1000].decode()
    assert entry.headers["x-last"] == ("..." if cut else "v")  # the header that does not fit


def test_a_header_repeated_is_counted_each_time() -> None:
    """The same header object sent ten times weighs ten times its size (a packing that shared
    repeated objects would hide them from the entry's size)."""
    journal = Journal(header_bytes=4096)
    header = (b"x-pad", b"p" * 995)
    journal.record(Recorded(1, "GET", "/", b"", [header] * 10, b"", 0, 200, None))
    entry = journal.last()
    assert entry is not None
    assert sum(len(name) + len(value) for name, value in entry.headers.items()) <= 4096 + 16


def test_a_records_headers_may_be_any_iterable() -> None:
    """Recorded takes headers as any iterable (a generator too): read once, kept whole."""
    journal = Journal()
    headers = ((name, b"v") for name in (b"a", b"b"))
    journal.record(Recorded(1, "GET", "/", b"", headers, b"", 0, 200, None))
    assert journal.last() is not None and journal.last().headers == {"a": "v", "b": "v"}  # type: ignore[union-attr]


def test_an_answer_whose_start_could_not_be_sent_is_recorded_without_its_body(auth: dict[str, str]) -> None:
    """The client went away before the answer's head could go: the entry has the status the
    mock chose, and no body, as the client got none."""
    backend = Backend(Config())
    app = create_app(backend)
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/v1/videos/text2video/nope",
        "raw_path": b"/v1/videos/text2video/nope",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"mock"), (b"authorization", auth["Authorization"].encode())],
        "client": ("127.0.0.1", 1),
        "server": ("mock", 80),
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, object]) -> None:
        raise OSError("the client is gone")

    with pytest.raises(OSError):
        asyncio.run(app(scope, receive, send))
    entry = backend.journal.last()
    assert entry is not None
    assert (entry.status, entry.response_size, entry.response_body) == (404, 0, "")


def test_records_the_body_of_a_request_answered_by_a_fault(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    rule = backend.faults.add(code=1303, times=1)
    backend.limits.set(rate=1, per_seconds=60)
    client.post(T2V, json={"prompt": "first"}, headers=auth)
    client.post(T2V, json={"prompt": "second"}, headers=auth)
    client.post(T2V, json={"prompt": "third"}, headers=auth)
    assert [(e.status, e.fault, e.json()["prompt"]) for e in backend.journal] == [
        (429, rule.id, "first"),
        (200, None, "second"),
        (429, None, "third"),  # over the rate
    ]


def test_a_request_is_in_the_journal_before_its_answer_completes(
    backend: Backend, auth: dict[str, str]
) -> None:
    """A client that reads the journal right after its answer must find its request there."""
    app = create_app(backend)
    journal_sizes: list[int] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, object]) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body"):
            journal_sizes.append(len(backend.journal))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": T2V,
        "raw_path": T2V.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"authorization", auth["Authorization"].encode())],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(app(scope, receive, send))
    assert journal_sizes == [1]
    assert backend.journal.last() is not None and backend.journal.last().status == 200  # type: ignore[union-attr]


def test_the_journal_names_the_account_a_key_acts_for_now(backend: Backend, client: httpx.Client) -> None:
    # A key moved to another account: the journal follows, as the API does.
    key = {"Authorization": "Bearer sk-moving-key-0001"}
    backend.add_account("alice", "alice-secret", api_keys=["sk-moving-key-0001"])
    client.get(T2V, headers=key)
    backend.add_account("bob", "bob-secret", api_keys=["sk-moving-key-0001"])
    client.get(T2V, headers=key)
    assert [e.account for e in backend.journal] == ["alice", "bob"]


# -- the answer -----------------------------------------------------------------------------------


def test_records_the_answer_a_client_got(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    created = client.post(T2V, json={"prompt": "a kitten"}, headers=auth)
    refused = client.get(f"{T2V}/nope", headers=auth)
    first, second = backend.journal
    assert first.response_json() == created.json()
    assert first.response_size == len(created.content) and not first.response_truncated
    assert first.response_headers["content-type"] == "application/json"
    assert second.status == 404 and second.response_json() == refused.json()
    assert first.to_dict()["response"] == {
        "headers": first.response_headers,
        "body": created.text,
        "body_size": len(created.content),
        "body_truncated": False,
    }


def test_keeps_only_the_first_bytes_of_a_long_answer(auth: dict[str, str]) -> None:
    backend = Backend(Config(journal_body_bytes=20))
    backend.use_manual_clock()
    with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock") as client:
        answer = client.get(T2V, headers=auth)
    entry = backend.journal.last()
    assert entry is not None
    assert entry.response_body == answer.text[:20] and entry.response_truncated
    assert entry.response_size == len(answer.content)
    with pytest.raises(ValueError, match="kept to 20 bytes"):
        entry.response_json()


def test_keeps_no_bytes_of_a_video_only_its_size(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    task_id = client.post(T2V, json={"prompt": "a kitten"}, headers=auth).json()["data"]["task_id"]
    backend.advance(600)
    video = client.get(f"/media/videos/{task_id}.mp4")
    entry = backend.journal.last()
    assert entry is not None and entry.path.startswith("/media/videos/")
    assert entry.response_headers["content-type"] == "video/mp4"
    assert (entry.response_body, entry.response_size) == ("", len(video.content))


def test_an_answer_cut_by_a_fault_is_recorded_as_sent_and_a_dropped_one_as_nothing(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    backend.faults.add(fault="malformed", times=1)
    cut = client.get(T2V, headers=auth)
    backend.faults.add(fault="drop", times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(T2V, headers=auth)
    malformed, dropped = backend.journal
    assert malformed.response_body == cut.text and malformed.response_size == len(cut.content)
    assert (dropped.status, dropped.response_headers, dropped.response_size) == (None, {}, 0)


def test_answer_headers_are_masked_like_request_headers() -> None:
    journal = Journal()
    journal.record(
        Recorded(
            1, "GET", "/x", b"", [], b"", 0, 200, None,
            response_headers=[(b"Set-Cookie", b"session=s3cret"), (b"content-type", b"text/plain")],
            response_body=b"hello",
            response_size=5,
        )
    )  # fmt: skip
    entry = journal.last()
    assert entry is not None
    assert entry.response_headers == {"set-cookie": "***", "content-type": "text/plain"}
    assert "s3cret" not in json.dumps(entry.to_dict())


def test_entries_by_id_and_the_newest_since_an_id() -> None:
    journal = Journal(size=3)
    for n in range(5):
        journal.record(Recorded(n, "GET", f"/{n}", b"", [], b"", 0, 200, None))
    assert journal.get(1) is None and journal.get(6) is None  # gone from the ring; never recorded
    entry = journal.get(4)
    assert entry is not None and entry.path == "/3"
    first, newest = journal.newest(10)
    assert first == 3 and [e.id for e in newest] == [3, 4, 5]
    assert [e.id for e in journal.newest(2)[1]] == [4, 5]
    assert [e.id for e in journal.newest(10, after=4)[1]] == [5]
    assert journal.newest(10, after=5)[1] == []
    journal.clear()
    assert journal.newest(10) == (None, [])


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        (b'{"\\u0074oken": "t-secret"}', {"token": "***"}),  # an escaped name is still a name
        (b'{"u": "https://h/cb?%74oken=t-secret"}', {"u": "https://h/cb?%74oken=***"}),
        (b'{"private_key": "t-secret", "key": "status"}', {"private_key": "***", "key": "status"}),
        (b'{"u": "https://h/cb?token=t-secret\\"&run=1"}', {"u": 'https://h/cb?token=***"&run=1'}),
    ],
)
def test_body_masking_reads_names_as_json_does_and_keeps_json_whole(sent: bytes, kept: object) -> None:
    from mockkling.journal import mask_body

    masked = mask_body(sent)
    assert orjson.loads(masked) == kept and b"t-secret" not in masked
