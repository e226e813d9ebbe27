"""Signed callbacks (Standard Webhooks, as Kling's Webhook Signature): the official test vector
reproduces; a real receiver gets every status change of a model-in-path task in the new dialect,
signed, and verifies it with an independent implementation (the ``standardwebhooks`` package);
legacy tasks keep their dialect; rotation signs with both secrets; no secret, no signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mockkling import DEFAULT_API_KEY, Backend, Config, ConfigError, Timing, create_app, make_jwt, webhooks
from mockkling.config import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, DEFAULT_WEBHOOK_SECRET, CallbackSettings
from mockkling.server import LiveServer
from mockkling.transport import SyncASGITransport

# The official test vector (the callbacks page, "Webhook Signature").
VECTOR_SECRET = "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0MTI="
VECTOR_ID, VECTOR_TIMESTAMP = "9876543210", 1781080794
VECTOR_BODY = (
    b'{"id":"1234567890","status":"succeeded","message":"","create_time":1781080778802,'
    b'"update_time":1781080794151}'
)
VECTOR_SIGNATURE = "v1,UsKlJP00XoQyOn410NM9xv34sP+Gl0jnOO9Lcpr7NJ4="
OTHER_SECRET = "whsec_" + base64.b64encode(b"another secret, for the rotation").decode()
WAIT = 10.0


# -- the scheme --------------------------------------------------------------------------------


def test_the_official_test_vector_reproduces() -> None:
    assert webhooks.key_of(VECTOR_SECRET) == b"testsecrettestsecrettestsecret12"
    assert webhooks.sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE
    # The same, from an independent implementation and from the bare definition.
    when = datetime.fromtimestamp(VECTOR_TIMESTAMP, tz=UTC)
    assert Webhook(VECTOR_SECRET).sign(VECTOR_ID, when, VECTOR_BODY) == VECTOR_SIGNATURE
    digest = hmac.new(
        b"testsecrettestsecrettestsecret12",
        f"{VECTOR_ID}.{VECTOR_TIMESTAMP}.".encode() + VECTOR_BODY,
        hashlib.sha256,
    ).digest()
    assert "v1," + base64.b64encode(digest).decode() == VECTOR_SIGNATURE


def test_verify_takes_what_a_receiver_must_and_nothing_else() -> None:
    headers = {
        "Webhook-Id": VECTOR_ID,
        "WEBHOOK-TIMESTAMP": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    at = VECTOR_TIMESTAMP + 299
    assert webhooks.verify(VECTOR_SECRET, headers, VECTOR_BODY, now=at)["status"] == "succeeded"
    # Any one of several signatures (a rotation) passes; the secret may be one of several too.
    rotating = {
        **headers,
        "webhook-signature": f"v1,K5oZfzeVuQvI4x1jrjAgMlkpJDoe1JhVmAbjR6eKeTM= {VECTOR_SIGNATURE}",
    }
    assert webhooks.verify([OTHER_SECRET, VECTOR_SECRET], rotating, VECTOR_BODY, now=at)
    for secret, sent, body, now, words in [
        (OTHER_SECRET, headers, VECTOR_BODY, at, "no webhook-signature matches"),
        (
            VECTOR_SECRET,
            headers,
            VECTOR_BODY.replace(b"succeeded", b"failed"),
            at,
            "no webhook-signature matches",
        ),
        (VECTOR_SECRET, headers, VECTOR_BODY, VECTOR_TIMESTAMP + 301, "more than 300s"),
        (VECTOR_SECRET, headers, VECTOR_BODY, VECTOR_TIMESTAMP - 301, "more than 300s"),
        (VECTOR_SECRET, {**headers, "webhook-signature": ""}, VECTOR_BODY, at, "missing"),
        (VECTOR_SECRET, {**headers, "WEBHOOK-TIMESTAMP": "soon"}, VECTOR_BODY, at, "not Unix seconds"),
    ]:
        with pytest.raises(webhooks.WebhookError, match=words):
            webhooks.verify(secret, sent, body, now=now)


@pytest.mark.parametrize("secret", ["dGVzdA==", "whsec_", "whsec_not base64!", "", "whsec_=="])
def test_a_secret_is_whsec_and_base64(secret: str) -> None:
    with pytest.raises(webhooks.WebhookError):
        webhooks.key_of(secret)
    with pytest.raises(ConfigError, match="webhook_secret"):
        Config().merge({"webhook_secret": [secret or "x"]})


def test_new_secrets_are_usable() -> None:
    secret = webhooks.new_secret()
    assert len(webhooks.key_of(secret)) == 32 and secret != webhooks.new_secret()


# -- callbacks from the mock ---------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    raw: bytes


@dataclass
class Receiver:
    """A callback receiver on loopback that keeps each request's headers and raw body."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    async def endpoint(self, request: Request) -> Response:
        raw = await request.body()
        with self._cond:
            self.received.append(Received(dict(request.headers), raw))
            self._cond.notify_all()
        return Response(status_code=200)

    def wait_for(self, count: int) -> list[Received]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.received) >= count, WAIT), (
                f"expected {count} callbacks, got {len(self.received)}"
            )
            return list(self.received)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    server = LiveServer(Starlette(routes=[Route("/{path:path}", receiver.endpoint, methods=["POST"])]))
    with server:
        receiver.url = server.url
        yield receiver


def mock(config: Config | None = None) -> tuple[Backend, httpx.Client]:
    """A backend on a manual clock (1 s submitted, 4 s processing) retrying callbacks fast."""
    fast = CallbackSettings(attempts=2, backoff_seconds=0.01, timeout_seconds=5.0)
    backend = Backend(replace(config or Config(seed=3), timing=Timing(1, 4), callbacks=fast))
    backend.use_manual_clock()
    client = httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock")
    return backend, client


def run_to_the_end(backend: Backend, receiver: Receiver, count: int) -> list[Received]:
    backend.advance(1)
    backend.advance(4)
    assert backend.callbacks.flush(WAIT)
    return receiver.wait_for(count)


@pytest.mark.slow
def test_every_status_change_arrives_signed_in_the_new_dialect(receiver: Receiver) -> None:
    backend, client = mock()
    with client:
        body = {
            "prompt": "a calm sea",
            "options": {"callback_url": f"{receiver.url}/hook", "external_task_id": "job-7"},
        }
        created = client.post(
            "/text-to-video/kling-3.0", json=body, headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"}
        )
        assert created.status_code == 200, created.text
        task_id = created.json()["data"]["id"]
        got = run_to_the_end(backend, receiver, 3)
    verifier = Webhook(DEFAULT_WEBHOOK_SECRET)  # independent of mockkling.webhooks
    bodies = [verifier.verify(r.raw, r.headers) for r in got]
    assert [b["status"] for b in bodies] == ["submitted", "processing", "succeeded"]
    assert all(b["id"] == task_id and b["external_id"] == "job-7" for b in bodies)
    assert bodies[0]["outputs"] == [] and bodies[0]["billing"] == []
    assert bodies[2]["outputs"][0]["type"] == "video" and bodies[2]["billing"][0]["amount"] == "3"
    assert "task_status" not in bodies[2]
    first = got[0].headers
    assert first["content-type"] == "application/json; charset=utf-8"
    assert first["webhook-id"].isdigit() and len({r.headers["webhook-id"] for r in got}) == 3
    assert abs(int(first["webhook-timestamp"]) - time.time()) < 60  # the wall clock, not the task clock
    # The handle's and the plugin's helper agree.
    assert webhooks.verify(DEFAULT_WEBHOOK_SECRET, got[2].headers, got[2].raw)["status"] == "succeeded"
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(got[2].raw, got[2].headers)


@pytest.mark.slow
def test_legacy_tasks_keep_their_dialect_and_are_signed_too(receiver: Receiver) -> None:
    backend, client = mock()
    with client:
        token = make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)
        body = {"prompt": "a calm sea", "callback_url": f"{receiver.url}/legacy"}
        created = client.post(
            "/v1/videos/text2video", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert created.status_code == 200, created.text
        got = run_to_the_end(backend, receiver, 3)
    bodies = [Webhook(DEFAULT_WEBHOOK_SECRET).verify(r.raw, r.headers) for r in got]
    assert [b["task_status"] for b in bodies] == ["submitted", "processing", "succeed"]
    assert got[0].headers["content-type"] == "application/json"


@pytest.mark.slow
def test_a_rotation_signs_with_both_secrets_and_no_secret_signs_nothing(receiver: Receiver) -> None:
    backend, client = mock()
    headers = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
    with client:
        backend.set_webhook_secret(OTHER_SECRET, VECTOR_SECRET)
        body = {"prompt": "a", "options": {"callback_url": f"{receiver.url}/rotation"}}
        assert client.post("/text-to-video/kling-2.6", json=body, headers=headers).status_code == 200
        assert backend.callbacks.flush(WAIT)
        [signed] = receiver.wait_for(1)
        assert len(signed.headers["webhook-signature"].split(" ")) == 2
        for secret in (OTHER_SECRET, VECTOR_SECRET):
            assert Webhook(secret).verify(signed.raw, signed.headers)["status"] == "submitted"

        backend.set_webhook_secret()  # every secret deleted: callbacks still come, unsigned
        assert client.post("/text-to-video/kling-2.6", json=body, headers=headers).status_code == 200
        assert backend.callbacks.flush(WAIT)
        unsigned = receiver.wait_for(2)[1]
        assert not any(name.startswith("webhook-") for name in unsigned.headers)
        assert orjson.loads(unsigned.raw)["status"] == "submitted"


@pytest.mark.slow
def test_each_account_signs_with_its_own_secret(receiver: Receiver) -> None:
    config = Config(seed=3).merge(
        {
            "webhook_secret": VECTOR_SECRET,
            "accounts": [
                {
                    "access_key": "ak-1",
                    "secret_key": "sk-1",
                    "api_keys": ["key-1"],
                    "webhook_secret": OTHER_SECRET,
                },
                {"access_key": "ak-2", "secret_key": "sk-2", "api_keys": ["key-2"]},
            ],
        }
    )
    backend, client = mock(config)
    with client:
        for key in ("key-1", "key-2"):
            body = {"prompt": key, "options": {"callback_url": f"{receiver.url}/{key}"}}
            response = client.post(
                "/text-to-video/kling-3.0", json=body, headers={"Authorization": f"Bearer {key}"}
            )
            assert response.status_code == 200, response.text
            assert backend.callbacks.flush(WAIT)
        first, second = receiver.wait_for(2)
    assert Webhook(OTHER_SECRET).verify(first.raw, first.headers)
    assert Webhook(VECTOR_SECRET).verify(second.raw, second.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(VECTOR_SECRET).verify(first.raw, first.headers)


def test_signing_is_idle_without_a_callback_url() -> None:
    """No callback_url, nothing watched: the dispatcher never starts a thread."""
    backend, client = mock()
    with client:
        body: dict[str, Any] = {"prompt": "a"}
        response = client.post(
            "/text-to-video/kling-3.0", json=body, headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"}
        )
        assert response.status_code == 200
    assert not backend.callbacks.running
