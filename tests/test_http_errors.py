"""Bad HTTP gets a clear official envelope, never a 500 or a traceback: wrong methods, unknown
paths, crashes. The catalogue of bad bodies, fields and sizes is test_hostile_input.py."""

from __future__ import annotations

import httpx

from mockkling import Backend, create_app

T2V = "/v1/videos/text2video"


def _error(response: httpx.Response, status: int, code: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "message", "request_id", "data"}
    assert body["code"] == code and body["data"] is None and body["request_id"]
    message: str = body["message"]
    return message


def test_json_with_charset_is_fine(client: httpx.Client, auth: dict[str, str]) -> None:
    headers = auth | {"Content-Type": "application/json; charset=utf-8"}
    assert client.post(T2V, content=b'{"prompt": "x"}', headers=headers).status_code == 200


def test_wrong_method_is_404_1202_with_allow(client: httpx.Client, auth: dict[str, str]) -> None:
    """The official table pairs 1202 ("invalid request method") with HTTP 404 (common-info.md,
    错误码); Allow still says which methods the path takes."""
    response = client.delete(T2V, headers=auth)
    _error(response, 404, 1202)
    assert set(response.headers["allow"].split(", ")) >= {"GET", "POST"}
    _error(client.post(f"{T2V}/abc", headers=auth, json={}), 404, 1202)


def test_unknown_path_is_404_1202(client: httpx.Client) -> None:
    assert "/v1/videos/nothing" in _error(client.get("/v1/videos/nothing"), 404, 1202)


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


def test_allow_lists_the_methods_of_every_route_on_the_path(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    """/v1/general/custom-elements is served by two routes (create and list): a method neither
    takes answers 404 / 1202 with both in Allow (schemathesis' allow-header conformance)."""
    response = client.patch("/v1/general/custom-elements", headers=auth, json={})
    _error(response, 404, 1202)
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}


def test_allow_leaves_out_a_templated_path_that_also_matches(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    """/v1/videos/multi-elements/add-selection is its own path, though it also fits
    /v1/videos/multi-elements/{task_id}: Allow gives its methods only."""
    response = client.patch("/v1/videos/multi-elements/add-selection", headers=auth, json={})
    _error(response, 404, 1202)
    assert response.headers["allow"] == "POST"
