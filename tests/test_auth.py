"""Authentication: what passes (HS256 tokens, raw keys, key pairs), clock skew, and tokens cached
safely. The attacks, each with its own code on every operation, are in test_auth_attacks.py."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from mockkling import DEFAULT_ACCESS_KEY, DEFAULT_API_KEY, DEFAULT_SECRET_KEY, Backend, KlingError, make_jwt
from mockkling.auth import Authenticator

LIST = "/v1/videos/text2video"
# The tests sign attack tokens with short keys on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


def _code(client: httpx.Client, authorization: str | None) -> tuple[int, int]:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.get(LIST, headers=headers)
    return response.status_code, response.json()["code"]


def _token(claims: dict[str, object], key: object = DEFAULT_SECRET_KEY, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)  # type: ignore[arg-type]


def _claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    return {"iss": DEFAULT_ACCESS_KEY, "exp": now + 1800, "nbf": now - 5} | overrides


def test_valid_official_token_is_accepted(client: httpx.Client) -> None:
    token = make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    response = client.get(LIST, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json()["code"] == 0


def test_small_clock_skew_is_tolerated(client: httpx.Client) -> None:
    now = int(time.time())
    assert _code(client, f"Bearer {_token(_claims(nbf=now + 3))}") == (200, 0)


def test_raw_api_key_and_key_pair_are_accepted(client: httpx.Client) -> None:
    assert _code(client, f"Bearer {DEFAULT_API_KEY}") == (200, 0)
    assert _code(client, f"Bearer {DEFAULT_ACCESS_KEY}|{DEFAULT_SECRET_KEY}") == (200, 0)
    assert _code(client, f"Bearer {DEFAULT_ACCESS_KEY}|wrong") == (401, 1002)
    assert _code(client, "Bearer sk-unknown") == (401, 1002)


def test_key_pairs_can_be_switched_off() -> None:
    auth = Authenticator({"ak": "sk"}, {}, accept_key_pairs=False)
    with pytest.raises(KlingError) as caught:
        auth.authenticate("Bearer ak|sk")
    assert caught.value.code == 1002


def test_cached_token_is_refused_once_expired() -> None:
    now = [1_000_000.0]
    auth = Authenticator(
        {"ak": "secret-key-of-at-least-32-bytes-long"}, {}, leeway_seconds=10, now=lambda: now[0]
    )
    token = make_jwt("ak", "secret-key-of-at-least-32-bytes-long", ttl_seconds=60, now=now[0])
    assert auth.authenticate(f"Bearer {token}") == "ak"
    assert auth.authenticate(f"Bearer {token}") == "ak"  # served from the cache
    now[0] += 69
    assert auth.authenticate(f"Bearer {token}") == "ak"  # inside the leeway
    now[0] += 2
    with pytest.raises(KlingError) as caught:
        auth.authenticate(f"Bearer {token}")
    assert caught.value.code == 1004


def test_short_secrets_work_without_warnings(backend: Backend, client: httpx.Client) -> None:
    backend.add_account("short-ak", "short")
    token = make_jwt("short-ak", "short")
    assert client.get(LIST, headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_advancing_the_task_clock_does_not_expire_tokens(backend: Backend, client: httpx.Client) -> None:
    token = make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)
    backend.advance(7 * 24 * 3600)
    assert client.get(LIST, headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_re_keying_an_account_invalidates_cached_tokens(backend: Backend, client: httpx.Client) -> None:
    token = make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)
    assert _code(client, f"Bearer {token}") == (200, 0)
    backend.add_account(DEFAULT_ACCESS_KEY, "a-brand-new-secret-key-of-32-bytes!!")
    assert _code(client, f"Bearer {token}") == (401, 1000)
