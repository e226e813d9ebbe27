"""Tenant isolation and the list endpoints' pagination."""

from __future__ import annotations

import httpx
import pytest

from mockkling import Backend, make_jwt

T2V = "/v1/videos/text2video"
I2V = "/v1/videos/image2video"
OTHER_SECRET = "other-secret-key-with-plenty-of-bytes"


@pytest.fixture
def other(backend: Backend) -> dict[str, str]:
    backend.add_account("other-ak", OTHER_SECRET)
    return {"Authorization": f"Bearer {make_jwt('other-ak', OTHER_SECRET)}"}


def test_another_accounts_task_is_not_found(
    client: httpx.Client, auth: dict[str, str], other: dict[str, str]
) -> None:
    task_id = client.post(T2V, json={"prompt": "x", "external_task_id": "mine"}, headers=auth).json()["data"][
        "task_id"
    ]
    for ident in (task_id, "mine"):
        response = client.get(f"{T2V}/{ident}", headers=other)
        assert response.status_code == 404
        assert response.json()["code"] == 1203
    assert client.get(T2V, headers=other).json()["data"] == []
    assert client.get(f"{T2V}/{task_id}", headers=auth).status_code == 200


def test_external_task_ids_are_unique_per_account_only(
    client: httpx.Client, auth: dict[str, str], other: dict[str, str]
) -> None:
    for headers in (auth, other):
        assert (
            client.post(T2V, json={"prompt": "x", "external_task_id": "same"}, headers=headers).status_code
            == 200
        )
    mine = client.get(f"{T2V}/same", headers=auth).json()["data"]["task_id"]
    theirs = client.get(f"{T2V}/same", headers=other).json()["data"]["task_id"]
    assert mine != theirs


def test_unknown_task_is_1203(client: httpx.Client, auth: dict[str, str]) -> None:
    response = client.get(f"{T2V}/no-such-task", headers=auth)
    assert (response.status_code, response.json()["code"]) == (404, 1203)


def test_list_pages_newest_first(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> None:
    ids = []
    for i in range(7):
        ids.append(client.post(T2V, json={"prompt": f"n{i}"}, headers=auth).json()["data"]["task_id"])
        backend.advance(0.001)
    client.post(I2V, json={"image": "https://example.com/a.png"}, headers=auth)
    newest_first = ids[::-1]

    def page(num: int | None = None, size: int | None = None) -> list[str]:
        params = {k: v for k, v in (("pageNum", num), ("pageSize", size)) if v is not None}
        response = client.get(T2V, params=params, headers=auth)
        assert response.status_code == 200
        return [t["task_id"] for t in response.json()["data"]]

    assert page() == newest_first
    assert page(1, 3) == newest_first[:3]
    assert page(2, 3) == newest_first[3:6]
    assert page(3, 3) == newest_first[6:]
    assert page(4, 3) == []
    assert len(client.get(I2V, headers=auth).json()["data"]) == 1
    created = [t["created_at"] for t in client.get(T2V, headers=auth).json()["data"]]
    assert created == sorted(created, reverse=True)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"pageNum": "0"}, "pageNum"),
        ({"pageNum": "1001"}, "pageNum"),
        ({"pageNum": "-1"}, "pageNum"),
        ({"pageNum": "one"}, "pageNum"),
        ({"pageSize": "0"}, "pageSize"),
        ({"pageSize": "501"}, "pageSize"),
        ({"pageSize": "99999999999999999999999"}, "pageSize"),
        ({"pageSize": "1.5"}, "pageSize"),
        ({"pageSize": ""}, "pageSize"),
    ],
)
def test_bad_page_parameters(
    client: httpx.Client, auth: dict[str, str], params: dict[str, str], name: str
) -> None:
    response = client.get(T2V, params=params, headers=auth)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 1201
    assert name in body["message"]
