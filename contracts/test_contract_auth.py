"""Auth failures answer 401 with the documented business code (openapi.yaml, 1000-1004), in the
error envelope. Read-only: every probe is a GET, or a POST whose body is invalid anyway."""

from __future__ import annotations

import time
import uuid

import pytest

LIST = "/v1/videos/text2video"
LIST_OP = "listText2VideoTasks"


def refused(kling, conform, authorization: str | None, code: int) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = kling.client.get(LIST, headers=headers)
    conform(LIST_OP, response)
    assert response.status_code == 401, f"{authorization!r}: expected 401, got {response.status_code}"
    body = response.json()
    assert body["code"] == code, f"{authorization!r}: expected business code {code}, got {body['code']}"


def test_no_authorization_is_1001(kling, conform) -> None:
    refused(kling, conform, None, 1001)


@pytest.mark.parametrize("authorization", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer not-a-jwt"])
def test_malformed_authorization_is_1002(kling, conform, authorization: str) -> None:
    refused(kling, conform, authorization, 1002)


def test_unknown_access_key_is_1000(kling, conform) -> None:
    from mockkling.auth import make_jwt

    token = make_jwt(f"unknown-{uuid.uuid4().hex}", "no-such-secret-key-of-32-bytes-or-more")
    refused(kling, conform, f"Bearer {token}", 1000)


def needs_key_pair(kling) -> None:
    if not kling.settings.access_key:
        pytest.skip("needs --kling-access-key/--kling-secret-key (a raw key has no signature or times)")


def test_wrong_signature_is_1000(kling, conform) -> None:
    needs_key_pair(kling)
    from mockkling.auth import make_jwt

    token = make_jwt(kling.settings.access_key, kling.settings.secret_key + "-wrong")
    refused(kling, conform, f"Bearer {token}", 1000)


def test_token_not_yet_valid_is_1003(kling, conform) -> None:
    needs_key_pair(kling)
    token = kling.token(now=time.time() + 3600, nbf_offset=0)
    refused(kling, conform, f"Bearer {token}", 1003)


def test_expired_token_is_1004(kling, conform) -> None:
    needs_key_pair(kling)
    token = kling.token(now=time.time() - 7200)
    refused(kling, conform, f"Bearer {token}", 1004)


@pytest.mark.posts
def test_create_without_authorization_is_refused(kling, conform) -> None:
    # The body is invalid too, so even a server that ignored auth would create nothing.
    response = kling.client.post(LIST, json={}, headers={})
    conform("createText2Video", response, body={})
    got = (response.status_code, response.json().get("code"))
    assert got == (401, 1001), f"create without Authorization: expected 401/1001, got {got}"


def test_valid_credentials_are_accepted(kling, conform) -> None:
    response = kling.get(LIST, params={"pageNum": 1, "pageSize": 1})
    conform(LIST_OP, response, query={"pageNum": 1, "pageSize": 1})
    assert response.status_code == 200, f"valid credentials refused: {response.status_code} {response.text}"
    assert response.json()["code"] == 0, f"valid credentials: expected code 0, got {response.text}"
