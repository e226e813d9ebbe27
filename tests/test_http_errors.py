"""Bad HTTP gets a clear official envelope, never a 500 or a traceback."""

from __future__ import annotations

import httpx
import pytest

from mockkling import Backend, Config, create_app
from mockkling.transport import SyncASGITransport

T2V = "/v1/videos/text2video"


def _error(response: httpx.Response, status: int, code: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "message", "request_id", "data"}
    assert body["code"] == code and body["data"] is None and body["request_id"]
    message: str = body["message"]
    return message


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"", b"   ", b"\xff\xfe{}", b'{"prompt": "\xc3\x28"}', b"[" * 5000 + b"]" * 5000],
)
def test_malformed_bodies(client: httpx.Client, auth: dict[str, str], content: bytes) -> None:
    response = client.post(T2V, content=content, headers=auth | {"Content-Type": "application/json"})
    _error(response, 400, 1200)


@pytest.mark.parametrize("content", [b"[]", b'"prompt"', b"42", b"null"])
def test_body_must_be_an_object(client: httpx.Client, auth: dict[str, str], content: bytes) -> None:
    message = _error(client.post(T2V, content=content, headers=auth), 400, 1200)
    assert "JSON object" in message


def test_wrong_content_type(client: httpx.Client, auth: dict[str, str]) -> None:
    response = client.post(T2V, data={"prompt": "x"}, headers=auth)  # form-encoded, as curl -d sends
    assert "Content-Type" in _error(response, 400, 1200)


def test_json_with_charset_is_fine(client: httpx.Client, auth: dict[str, str]) -> None:
    headers = auth | {"Content-Type": "application/json; charset=utf-8"}
    assert client.post(T2V, content=b'{"prompt": "x"}', headers=headers).status_code == 200


def test_nul_bytes_in_strings_are_data(client: httpx.Client, auth: dict[str, str]) -> None:
    assert client.post(T2V, json={"prompt": "a\u0000b"}, headers=auth).status_code == 200


def test_wrong_method_is_405_with_allow(client: httpx.Client, auth: dict[str, str]) -> None:
    response = client.delete(T2V, headers=auth)
    _error(response, 405, 1202)
    assert set(response.headers["allow"].split(", ")) >= {"GET", "POST"}
    _error(client.post(f"{T2V}/abc", headers=auth, json={}), 405, 1202)


def test_unknown_path_is_404_1202(client: httpx.Client) -> None:
    assert "/v1/videos/nothing" in _error(client.get("/v1/videos/nothing"), 404, 1202)


def test_body_over_the_limit_is_413_without_reading_it() -> None:
    backend = Backend(Config(max_body_bytes=1000))
    with httpx.Client(transport=SyncASGITransport(create_app(backend)), base_url="http://mock") as client:
        token = backend.auth.api_keys and next(iter(backend.auth.api_keys))
        headers = {"Authorization": f"Bearer {token}"}
        _error(client.post(T2V, json={"prompt": "x" * 2000}, headers=headers), 413, 1200)

        def chunks() -> object:  # no Content-Length: the limit is enforced while streaming
            yield b'{"prompt": "'
            for _ in range(100):
                yield b"x" * 100
            yield b'"}'

        _error(client.post(T2V, content=chunks(), headers=headers), 413, 1200)  # type: ignore[arg-type]
        assert client.post(T2V, json={"prompt": "x"}, headers=headers).status_code == 200


def test_unexpected_exceptions_become_5000(backend: Backend, auth: dict[str, str]) -> None:
    def boom(*args: object, **kwargs: object) -> object:
        raise RuntimeError("bug")

    backend.list_tasks = boom  # type: ignore[method-assign]
    transport = httpx.ASGITransport(app=create_app(backend), raise_app_exceptions=False)

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://mock") as client:
            return await client.get(T2V, headers=auth)

    import asyncio

    response = asyncio.run(call())
    message = _error(response, 500, 5000)
    assert "bug" not in message and "Traceback" not in response.text


def test_openapi_document_is_served(client: httpx.Client) -> None:
    response = client.get("/openapi.yaml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/yaml")
    assert response.text.startswith("openapi: 3.1")
