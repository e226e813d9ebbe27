"""The model-in-path design (``POST /{operation}/{model}``, ``GET``/``POST /tasks``): API keys
only, its own error body, /tasks' documented answers, and a task's lawful lifecycle there
(``submitted -> processing -> succeeded | failed``, ``outputs[]`` and ``billing[]`` on success).

Needs ``--kling-api-key``: the design refuses AK/SK tokens. Creates at most one task (the
cheapest endpoint at its defaults), counted in ``--kling-max-tasks``."""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest

RANK = {"submitted": 0, "processing": 1, "succeeded": 2, "failed": 2}
GET_TASKS, LIST_TASKS = "getModelApiTasks", "listModelApiTasks"
CREATE = "createTextToVideoKling25Turbo"


def refused(response, code: int, status: int) -> None:
    body = response.json()
    got = (response.status_code, body.get("code"))
    assert got == (status, code), f"expected {status}/{code}, got {got}: {response.text}"
    assert set(body) >= {"code", "message", "request_id"}, f"not the error envelope: {body}"


# -- auth ------------------------------------------------------------------------------------------


def test_no_authorization_is_1001(kling, conform) -> None:
    kling.api_key_headers()  # this file runs with an API key only
    response = kling.client.get("/tasks", params={"task_ids": "1"}, headers={})
    conform(GET_TASKS, response, query={"task_ids": "1"})
    refused(response, 1001, 401)


def test_an_unknown_key_is_1002(kling, conform) -> None:
    kling.api_key_headers()
    headers = {"Authorization": f"Bearer api-key-kling-{uuid.uuid4().hex}"}
    response = kling.client.get("/tasks", params={"task_ids": "1"}, headers=headers)
    conform(GET_TASKS, response, query={"task_ids": "1"})
    refused(response, 1002, 401)


def test_an_ak_sk_token_is_refused_with_1002(kling, conform) -> None:
    kling.api_key_headers()
    if not kling.settings.access_key:
        pytest.skip("needs --kling-access-key/--kling-secret-key to build a legacy token")
    response = kling.client.get("/tasks", params={"task_ids": "1"}, headers=kling.headers())
    conform(GET_TASKS, response, query={"task_ids": "1"})
    refused(response, 1002, 401)
    assert "AK/SK" in response.json()["message"], response.text


# -- /tasks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", [{}, {"ids": "1"}], ids=["none", "ids"])
def test_tasks_without_an_id_parameter_is_400_1201(kling, conform, query: dict[str, str]) -> None:
    response = kling.client.get("/tasks", params=query, headers=kling.api_key_headers())
    conform(GET_TASKS, response, query=query)
    refused(response, 1201, 400)


@pytest.mark.parametrize("name", ["task_ids", "external_task_ids"])
def test_unknown_ids_answer_an_empty_list(kling, conform, name: str) -> None:
    query = {name: f"9{uuid.uuid4().int % 10**17:017d},mockkling-none-{uuid.uuid4().hex}"}
    response = kling.client.get("/tasks", params=query, headers=kling.api_key_headers())
    conform(GET_TASKS, response, query=query)
    assert response.status_code == 200 and response.json()["data"] == [], response.text


@pytest.mark.posts
def test_the_cursor_list_answers_its_shape(kling, conform) -> None:
    body = {"limit": 2, "filters": [{"key": "status", "values": ["succeeded"]}]}
    response = kling.client.post("/tasks", json=body, headers=kling.api_key_headers())
    conform(LIST_TASKS, response, body=body)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert isinstance(data["count"], int) and isinstance(data["has_more"], bool), data
    assert all(task["status"] == "succeeded" for task in data.get("result", [])), data


# Each invalid whatever a server makes of fields a page does not list: none may create a task.
INVALID = {
    "no prompt": {"settings": {"duration": 5}},
    "prompt not a string": {"prompt": 5},
    "duration out of range": {"prompt": "a cat", "settings": {"duration": 7}},
    "aspect ratio 4:3": {"prompt": "a cat", "settings": {"aspect_ratio": "4:3"}},
    "resolution 4k": {"prompt": "a cat", "settings": {"resolution": "4k"}},
}


@pytest.mark.posts
@pytest.mark.parametrize("body", INVALID.values(), ids=INVALID.keys())
def test_invalid_create_bodies_are_400(kling, conform, body: dict[str, Any]) -> None:
    response = kling.client.post(kling.model_api_probe, json=body, headers=kling.api_key_headers())
    conform(CREATE, response, body=body)
    assert response.status_code == 400 and response.json()["code"] in (1200, 1201), response.text


# -- a task's life -----------------------------------------------------------------------------------


def watch(kling, conform, budget) -> dict[str, Any]:
    headers = kling.api_key_headers()
    budget.spend("model-in-path probe")
    external = f"mockkling-contract-{uuid.uuid4().hex}"
    body = {
        "prompt": "mockkling contract check: a calm sea at dawn",
        "options": {"external_task_id": external},
    }
    response = kling.client.post(kling.model_api_probe, json=body, headers=headers)
    conform(CREATE, response, body=body)
    assert response.status_code == 200, f"create answered {response.status_code}: {response.text}"
    created = response.json()["data"]
    views = []
    deadline = time.monotonic() + kling.settings.task_timeout
    while True:
        query = {"task_ids": created["id"]}
        response = kling.client.get("/tasks", params=query, headers=headers)
        conform(GET_TASKS, response, query=query)
        found = response.json()["data"]
        assert [t["id"] for t in found] == [created["id"]], f"/tasks did not find {created['id']}: {found}"
        views.append(found[0])
        if views[-1]["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return {"external": external, "created": created, "views": views}
        time.sleep(kling.settings.poll_interval)


@pytest.fixture(scope="module")
def probe(kling, conform, budget) -> dict[str, Any]:
    return budget.once("model-in-path probe", lambda: watch(kling, conform, budget))


@pytest.mark.creates_tasks
class TestModelApiTask:
    def test_the_created_answer(self, probe) -> None:
        created = probe["created"]
        assert created["status"] == "submitted" and created["id"].isdigit(), created
        assert created["external_id"] == probe["external"], created

    def test_status_only_moves_forward_and_succeeds(self, probe) -> None:
        views = probe["views"]
        ranks = [RANK[view["status"]] for view in views]
        assert ranks == sorted(ranks), [view["status"] for view in views]
        assert len({view["create_time"] for view in views}) == 1
        last = views[-1]
        assert last["status"] == "succeeded", f"a plain prompt ended {last['status']}: {last['message']!r}"
        videos = [output for output in last["outputs"] if output["type"] == "video"]
        assert videos and all(urlsplit(v["url"]).scheme in ("http", "https") for v in videos), last
        assert last["billing"] and all(float(b["amount"]) >= 0 for b in last["billing"]), last

    def test_external_ids_and_the_list_find_it(self, probe, kling, conform) -> None:
        headers = kling.api_key_headers()
        query = {"external_task_ids": probe["external"]}
        response = kling.client.get("/tasks", params=query, headers=headers)
        conform(GET_TASKS, response, query=query)
        assert [t["id"] for t in response.json()["data"]] == [probe["created"]["id"]], response.text
        body = {"limit": 50}
        response = kling.client.post("/tasks", json=body, headers=headers)
        conform(LIST_TASKS, response, body=body)
        listed = [t["id"] for t in response.json()["data"].get("result", [])]
        assert probe["created"]["id"] in listed, f"not on the first page of POST /tasks: {listed}"
