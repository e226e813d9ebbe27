"""The control API under /__mockkling/: who may use it, and each of its controls, JSON in and out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mockkling import BUSINESS_CODES, DEFAULT_ACCESS_KEY, Backend, Config, KlingMock, Timing, create_app
from mockkling.cli import _parser, build_config
from mockkling.spec import default_spec
from mockkling.transport import SyncASGITransport

C = "/__mockkling"
T2V = "/v1/videos/text2video"


def _client(backend: Backend, host: str = "127.0.0.1") -> httpx.Client:
    transport = SyncASGITransport(create_app(backend), client=(host, 40000))
    return httpx.Client(transport=transport, base_url="http://mock")


@pytest.fixture
def control(backend: Backend) -> Iterator[httpx.Client]:
    with _client(backend) as client:
        yield client


# -- who may use it ------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.4.5", "::1", "localhost", "testclient"])
def test_loopback_and_in_process_clients_are_served(backend: Backend, host: str) -> None:
    with _client(backend, host) as client:
        assert client.get(f"{C}/clock").status_code == 200


@pytest.mark.parametrize("host", ["10.0.0.5", "192.168.1.20", "2001:db8::1", "example.com"])
def test_remote_clients_are_refused_by_default(backend: Backend, host: str) -> None:
    with _client(backend, host) as client:
        response = client.post(f"{C}/reset")
        assert response.status_code == 403
        assert response.json() == {
            "error": "forbidden",
            "message": "The control API answers loopback clients only (set control_remote to allow others)",
        }
        # ... while the Kling API itself serves them as usual.
        assert client.get(T2V).json()["code"] == 1001


def test_remote_clients_when_allowed() -> None:
    backend = Backend(Config(control_remote=True))
    with _client(backend, "10.0.0.5") as client:
        assert client.get(f"{C}/clock").status_code == 200


def test_the_admin_token_is_required_when_configured() -> None:
    backend = Backend(Config(admin_token="s3cret", control_remote=True))
    with _client(backend, "10.0.0.5") as client:
        missing = client.get(f"{C}/faults")
        assert (missing.status_code, missing.json()["error"]) == (401, "unauthorized")
        for header in ("Bearer wrong", "s3cret", "Basic s3cret", "Bearer s3cret-and-more"):
            assert client.get(f"{C}/faults", headers={"Authorization": header}).status_code == 401
        assert client.get(f"{C}/faults", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    with _client(Backend(Config(admin_token="s3cret")), "10.0.0.5") as client:
        # Not loopback and not allowed: the token alone does not open it.
        assert client.get(f"{C}/faults", headers={"Authorization": "Bearer s3cret"}).status_code == 403


def test_admin_token_and_remote_from_the_command_line_and_environment() -> None:
    config = build_config(
        _parser().parse_args(["serve", "--admin-token", "t0k", "--control-remote"]), environ={}
    )
    assert (config.admin_token, config.control_remote) == ("t0k", True)
    config = build_config(_parser().parse_args(["serve"]), environ={"MOCKKLING_ADMIN_TOKEN": "from-env"})
    assert (config.admin_token, config.control_remote) == ("from-env", False)


def test_errors_have_the_control_format(control: httpx.Client) -> None:
    missing = control.get(f"{C}/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    wrong_method = control.put(f"{C}/clock")
    assert wrong_method.status_code == 405
    assert set(wrong_method.headers["allow"].split(", ")) == {"GET", "HEAD"}
    assert wrong_method.json()["error"] == "method_not_allowed"
    not_json = control.post(f"{C}/faults", content=b"{oops", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["message"]


# -- the controls -------------------------------------------------------------------------------------


def test_reset_forgets_tasks_rules_and_requests(
    backend: Backend, control: httpx.Client, auth: dict[str, str]
) -> None:
    control.post(T2V, json={"prompt": "x"}, headers=auth)
    control.post(f"{C}/faults", json={"path": "/nowhere", "code": 5000})
    control.post(f"{C}/fates", json={"fate": {"status": "failed"}})
    assert control.post(f"{C}/reset").json() == {"reset": True}
    assert len(backend.tasks) == len(backend.faults) == len(backend.fates) == len(backend.journal) == 0


def test_tasks_list_and_inspect(backend: Backend, control: httpx.Client, auth: dict[str, str]) -> None:
    backend.add_account("other", "other-secret")
    ids = [control.post(T2V, json={"prompt": "x"}, headers=auth).json()["data"]["task_id"] for _ in range(3)]
    backend.create_task("other", "text2video", {"prompt": "y", "external_task_id": "ext-9"})
    backend.advance(1)
    tasks = control.get(f"{C}/tasks").json()["tasks"]
    assert len(tasks) == 4 and tasks[0]["account"] == "other"  # newest first, every account
    assert [
        t["task_id"]
        for t in control.get(f"{C}/tasks", params={"account": DEFAULT_ACCESS_KEY}).json()["tasks"]
    ] == ids[::-1]
    assert len(control.get(f"{C}/tasks", params={"limit": 2}).json()["tasks"]) == 2
    assert len(control.get(f"{C}/tasks", params={"status": "processing"}).json()["tasks"]) == 4
    assert control.get(f"{C}/tasks", params={"status": "done"}).status_code == 400
    assert control.get(f"{C}/tasks", params={"limit": 0}).status_code == 400
    one = control.get(f"{C}/tasks/{ids[0]}").json()
    assert one["status"] == "processing" and one["account"] == DEFAULT_ACCESS_KEY
    assert one["processing_at"] == one["created_at"] + 1000 and one["done_at"] == one["created_at"] + 5000
    assert control.get(f"{C}/tasks/nope").status_code == 404


def test_set_a_task_fate(backend: Backend, control: httpx.Client, auth: dict[str, str]) -> None:
    task_id = control.post(T2V, json={"prompt": "x"}, headers=auth).json()["data"]["task_id"]
    held = control.put(f"{C}/tasks/{task_id}/fate", json={"status": "processing", "seconds": None})
    assert held.status_code == 200
    assert (held.json()["status"], held.json()["done_at"]) == ("processing", None)
    failed = control.put(
        f"{C}/tasks/{task_id}/fate", json={"status": "failed", "message": "GPU on fire", "error_code": 4001}
    ).json()
    assert (failed["status"], failed["status_msg"], failed["error_code"]) == ("failed", "GPU on fire", 4001)
    query = control.get(f"{T2V}/{task_id}", headers=auth).json()["data"]
    assert (query["task_status"], query["task_status_msg"]) == ("failed", "GPU on fire")
    conflict = control.put(f"{C}/tasks/{task_id}/fate", json={"status": "succeed"})
    assert conflict.status_code == 409 and "already ended" in conflict.json()["message"]
    assert control.put(f"{C}/tasks/{task_id}/fate", json={"status": "later"}).status_code == 400
    assert (
        control.put(f"{C}/tasks/{task_id}/fate", json={"status": "succeed", "seconds": 1}).status_code == 400
    )
    assert control.put(f"{C}/tasks/nope/fate", json={"status": "succeed"}).status_code == 404


def test_fate_rules(backend: Backend, control: httpx.Client, auth: dict[str, str]) -> None:
    added = control.post(
        f"{C}/fates", json={"fate": {"outcome": "failed", "message": "nope"}, "model": "kling-v1-6"}
    )
    assert added.status_code == 201
    rule = added.json()
    assert (rule["times"], rule["remaining"], rule["applied"]) == (1, 1, 0)
    task_id = control.post(T2V, json={"prompt": "x", "model_name": "kling-v1-6"}, headers=auth).json()[
        "data"
    ]["task_id"]
    assert control.get(f"{C}/tasks/{task_id}").json()["outcome"] == "failed"
    assert control.get(f"{C}/fates").json()["fates"][0]["applied"] == 1
    assert control.delete(f"{C}/fates/{rule['id']}").json() == {"removed": 1}
    assert control.delete(f"{C}/fates/{rule['id']}").status_code == 404
    assert control.delete(f"{C}/fates/x").status_code == 404
    control.post(f"{C}/fates", json={"fate": {"status": "succeed"}, "times": None})
    assert control.delete(f"{C}/fates").json() == {"removed": 1}
    assert control.post(f"{C}/fates", json={"fate": {}}).status_code == 400
    assert control.post(f"{C}/fates", json={"model": "kling-v1"}).status_code == 400


def test_the_clock(backend: Backend, control: httpx.Client) -> None:
    before = control.get(f"{C}/clock").json()
    assert before["manual"] is True
    after = control.post(f"{C}/clock/advance", json={"seconds": 2.5}).json()
    assert after == {"now_ms": before["now_ms"] + 2500, "manual": True}
    assert control.post(f"{C}/clock/advance", json={"seconds": -1}).status_code == 400
    assert control.post(f"{C}/clock/advance", json={}).status_code == 400


def test_advancing_switches_a_system_clock_to_manual(auth: dict[str, str]) -> None:
    backend = Backend(Config(timing=Timing(1, 4)))
    with _client(backend) as control:
        task_id = control.post(T2V, json={"prompt": "x"}, headers=auth).json()["data"]["task_id"]
        assert control.get(f"{C}/clock").json()["manual"] is False
        assert control.post(f"{C}/clock/advance", json={"seconds": 60}).json()["manual"] is True
        assert control.get(f"{T2V}/{task_id}", headers=auth).json()["data"]["task_status"] == "succeed"


def test_fault_rules(backend: Backend, control: httpx.Client, auth: dict[str, str]) -> None:
    added = control.post(
        f"{C}/faults", json={"method": "POST", "path": "/v1/videos/*", "code": 1303, "times": 1}
    )
    assert added.status_code == 201
    rule = added.json()
    assert (rule["id"], rule["status"], rule["remaining"], rule["fired"]) == (1, 429, 1, 0)
    assert control.post(T2V, json={"prompt": "x"}, headers=auth).json()["code"] == 1303
    listed = control.get(f"{C}/faults").json()
    assert listed["enabled"] is True and listed["faults"][0]["fired"] == 1
    assert control.delete(f"{C}/faults/1").json() == {"removed": 1}
    assert control.delete(f"{C}/faults/1").status_code == 404
    control.post(f"{C}/faults", json={"fault": "drop"})
    assert control.delete(f"{C}/faults").json() == {"removed": 1}
    bad = control.post(f"{C}/faults", json={"status": 429})
    assert bad.status_code == 400 and "several business codes" in bad.json()["message"]
    assert control.post(f"{C}/faults", json={"code": 1303, "colour": "red"}).status_code == 400


def test_the_journal(backend: Backend, control: httpx.Client, auth: dict[str, str]) -> None:
    control.post(T2V, json={"prompt": "x"}, headers=auth)
    control.get(f"{T2V}/nope", headers=auth)
    entries = control.get(f"{C}/journal").json()["requests"]
    assert [(e["method"], e["status"]) for e in entries] == [("POST", 200), ("GET", 404)]
    assert entries[0]["headers"]["authorization"] == "Bearer ***"
    assert entries[0]["account"] == DEFAULT_ACCESS_KEY
    assert [e["path"] for e in control.get(f"{C}/journal", params={"status": 404}).json()["requests"]] == [
        f"{T2V}/nope"
    ]
    assert (
        len(control.get(f"{C}/journal", params={"method": "POST", "path": "/v1/*"}).json()["requests"]) == 1
    )
    assert len(control.get(f"{C}/journal", params={"limit": 1}).json()["requests"]) == 1
    assert control.get(f"{C}/journal", params={"status": "teapot"}).status_code == 400
    assert control.delete(f"{C}/journal").json() == {"cleared": 2}
    assert control.get(f"{C}/journal").json() == {"requests": []}


def test_limits(backend: Backend, control: httpx.Client, auth: dict[str, str]) -> None:
    body: dict[str, Any] = {
        "rate": 1,
        "per_seconds": 60,
        "accounts": {DEFAULT_ACCESS_KEY: {"concurrency": 1}},
    }
    view = control.put(f"{C}/limits", json=body).json()
    assert view["limits"]["rate"] == 1 and view["limits"]["accounts"] == {
        DEFAULT_ACCESS_KEY: {"concurrency": 1}
    }
    assert control.get(T2V, headers=auth).status_code == 200
    assert control.get(T2V, headers=auth).json()["code"] == 1302
    usage = control.get(f"{C}/limits").json()["usage"][DEFAULT_ACCESS_KEY]
    assert usage == {"tokens": 0.0, "running": 0, "balance": None}
    assert control.put(f"{C}/limits", json={"rate": 0}).status_code == 400
    assert control.put(f"{C}/limits", json={"speed": 3}).status_code == 400
    assert control.put(f"{C}/limits", json={}).json()["limits"]["rate"] is None
    assert control.get(T2V, headers=auth).status_code == 200


def test_the_spec_lists_every_business_code_a_rule_may_use() -> None:
    schemas = default_spec().document["components"]["schemas"]
    assert schemas["BusinessCode"]["enum"] == list(BUSINESS_CODES)
    statuses = {c.http_status for c in BUSINESS_CODES.values()}
    assert set(schemas["FaultRule"]["properties"]["status"]["enum"]) - {None} == statuses


def test_an_account_named_by_its_raw_key_is_shown_masked() -> None:
    """A key configured as an account of its own names that account: the control API and the
    dashboard show it as the journal does ("sk-***-123"), never whole."""
    key = "sk-own-account-secret-key-123"
    limits = {"rate": 100, "accounts": {key: {"concurrency": 2}}}
    with KlingMock.in_process(api_keys=[key], limits=limits) as mock:
        mock.client.post(
            "/v1/videos/text2video", json={"prompt": "x"}, headers={"Authorization": f"Bearer {key}"}
        )
        (task,) = mock.client.get(f"{C}/tasks").json()["tasks"]
        shown = {
            task["account"],
            mock.client.get(f"{C}/tasks/{task['task_id']}").json()["account"],
            *mock.client.get(f"{C}/limits").json()["usage"],
            *mock.client.get(f"{C}/limits").json()["limits"]["accounts"],
            mock.client.get(f"{C}/journal").json()["requests"][0]["account"],
        }
        state = mock.client.get(f"{C}/state").text
    assert shown == {"sk-***-123"}
    assert key not in state
