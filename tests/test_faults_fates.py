"""Task fates: a task (or the next task matching a rule) fails with a given message, holds a
status for a given time, or succeeds at once. A fate reschedules; it never moves a status a
client has seen backwards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockkling import (
    DEFAULT_ACCESS_KEY,
    Backend,
    Config,
    Fate,
    FateError,
    FateRule,
    KlingError,
    ManualClock,
    RuleError,
    Timing,
)
from mockkling.tasks import RANK

T2V = "/v1/videos/text2video"


def _backend(queue: float = 1, run: float = 4) -> Backend:
    backend = Backend(Config(seed=5, timing=Timing(queue, run)))
    backend.use_manual_clock()
    return backend


def _create(backend: Backend, **body: Any) -> str:
    task = backend.create_task(DEFAULT_ACCESS_KEY, "text2video", {"prompt": "a kitten", **body})
    return task.task_id


def _query(client: httpx.Client, auth: dict[str, str], task_id: str) -> dict[str, Any]:
    response = client.get(f"{T2V}/{task_id}", headers=auth)
    assert response.status_code == 200
    data: dict[str, Any] = response.json()["data"]
    return data


def test_fail_now_with_a_message_and_a_gateway_code(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    task_id = _create(backend)
    backend.advance(2)  # processing
    backend.set_fate(task_id, "failed", message="Engine overheated", error_code=4001)
    data = _query(client, auth, task_id)
    assert (data["task_status"], data["task_status_msg"]) == ("failed", "Engine overheated")
    assert data["updated_at"] == backend.now_ms()
    assert "task_result" not in data
    assert backend.tasks.get(task_id).extra["error_code"] == 4001  # type: ignore[union-attr,index]


def test_succeed_at_once_from_submitted(backend: Backend, client: httpx.Client, auth: dict[str, str]) -> None:
    task_id = _create(backend)
    backend.set_fate(task_id, "succeed")
    data = _query(client, auth, task_id)
    assert data["task_status"] == "succeed"
    assert client.get(data["task_result"]["videos"][0]["url"]).status_code == 200


def test_hold_processing_for_a_while_then_end_as_planned(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    task_id = _create(backend)
    backend.set_fate(task_id, "processing", seconds=30)
    assert _query(client, auth, task_id)["task_status"] == "processing"  # at once, from submitted
    backend.advance(29.999)
    assert _query(client, auth, task_id)["task_status"] == "processing"
    backend.advance(0.001)
    assert _query(client, auth, task_id)["task_status"] == "succeed"


def test_hold_submitted_keeps_the_processing_time() -> None:
    backend = _backend(queue=1, run=4)
    task_id = _create(backend)
    backend.set_fate(task_id, "submitted", seconds=60)
    task = backend.tasks.get(task_id)
    assert task is not None
    backend.advance(59.9)
    assert backend.status(task) == "submitted"
    backend.advance(0.1)
    assert backend.status(task) == "processing"
    backend.advance(4)
    assert backend.status(task) == "succeed"


def test_hold_until_further_notice_then_release() -> None:
    backend = _backend()
    task_id = _create(backend)
    task = backend.tasks.get(task_id)
    assert task is not None
    backend.set_fate(task_id, "processing", outcome="failed", message="timed out upstream")
    backend.advance(10**6)
    assert backend.status(task) == "processing"
    backend.set_fate(task_id, "processing", seconds=1)  # the outcome chosen earlier stays
    backend.advance(1)
    assert (backend.status(task), task.status_msg) == ("failed", "timed out upstream")


def test_outcome_alone_keeps_the_timing() -> None:
    backend = _backend(queue=1, run=4)
    task_id = _create(backend)
    task = backend.tasks.get(task_id)
    assert task is not None
    backend.set_fate(task_id, outcome="failed")
    backend.advance(4.999)
    assert backend.status(task) == "processing"
    backend.advance(0.001)
    assert (backend.status(task), task.status_msg) == ("failed", "Task failed")


def test_a_fate_never_moves_a_status_backwards() -> None:
    backend = _backend()
    task_id = _create(backend)
    backend.advance(1)  # processing
    with pytest.raises(FateError, match="never moves a status back to submitted"):
        backend.set_fate(task_id, "submitted", seconds=5)
    backend.advance(4)  # succeed
    for fate in ("failed", "processing"):
        with pytest.raises(FateError, match="already ended"):
            backend.set_fate(task_id, fate)
    with pytest.raises(KlingError, match="does not exist"):
        backend.set_fate("no-such-task", "succeed")


@pytest.mark.parametrize(
    ("fate", "message"),
    [
        ({"status": "finished"}, "status must be one of"),
        ({}, "needs a status or an outcome"),
        ({"status": "succeed", "seconds": 3}, "seconds holds a task"),
        ({"status": "succeed", "outcome": "failed"}, "cannot have outcome failed"),
        ({"status": "processing", "seconds": -1}, "seconds must be a number"),
        ({"status": "succeed", "message": "hi"}, "go with a fate that ends failed"),
        ({"outcome": "processing"}, "outcome must be one of"),
        ({"status": "failed", "error_code": "4001"}, "error_code must be an integer"),
    ],
)
def test_invalid_fates_are_refused(fate: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleError, match=message):
        Fate.from_dict(fate)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from([None, "submitted", "processing", "succeed", "failed"]),
            st.one_of(st.none(), st.floats(0, 20)),
            st.floats(0, 8),
        ),
        max_size=8,
    )
)
def test_statuses_only_move_forward_whatever_the_fates(
    steps: list[tuple[str | None, float | None, float]],
) -> None:
    backend = _backend()
    task_id = _create(backend)
    task = backend.tasks.get(task_id)
    assert task is not None
    seen = [RANK[backend.status(task)]]
    for status, seconds, wait in steps:
        before = backend.status(task)
        try:
            if status is None:
                backend.set_fate(task_id, outcome="failed")
            elif status in ("succeed", "failed"):
                backend.set_fate(task_id, status)
            else:
                backend.set_fate(task_id, status, seconds=seconds)
        except FateError:
            assert backend.status(task) == before  # a refused fate changes nothing
        seen.append(RANK[backend.status(task)])
        backend.advance(wait)
        seen.append(RANK[backend.status(task)])
        assert task.updated_ms(backend.now_ms()) <= backend.now_ms()
    assert seen == sorted(seen)


# -- fate rules: the next task(s) matching ---------------------------------------------------------


def test_the_next_task_matching_a_rule_gets_the_fate(
    backend: Backend, client: httpx.Client, auth: dict[str, str]
) -> None:
    rule = backend.fates.add(
        Fate("failed", message="Failure to pass the risk control system"), model="kling-v1-6"
    )
    other = _create(backend)  # kling-v1: not matched
    doomed = _create(backend, model_name="kling-v1-6")
    spared = _create(backend, model_name="kling-v1-6")  # times=1: spent
    assert [_query(client, auth, t)["task_status"] for t in (other, doomed, spared)] == [
        "submitted",
        "failed",
        "submitted",
    ]
    assert (rule.remaining, rule.applied) == (0, 1)
    # The create answer itself is always "submitted", as the real service's is.
    created = client.post(T2V, json={"prompt": "x"}, headers=auth).json()["data"]
    assert created["task_status"] == "submitted"


def test_fate_rules_for_every_task_and_by_account_and_action() -> None:
    backend = _backend(queue=0, run=0)  # tasks would succeed at once
    backend.add_account("other", "secret")
    backend.fates.add(FateRule(Fate("processing"), account="other", action="text2video", times=None))
    held = [backend.create_task("other", "text2video", {"prompt": "x"}) for _ in range(3)]
    free = backend.create_task(DEFAULT_ACCESS_KEY, "text2video", {"prompt": "x"})
    backend.advance(100)
    assert [backend.status(t) for t in held] == ["processing"] * 3
    assert backend.status(free) == "succeed"


def test_a_refused_create_does_not_spend_a_fate_rule() -> None:
    backend = _backend()
    rule = backend.fates.add(Fate("failed"))
    _create(backend, external_task_id="order-1")
    assert rule.remaining == 0
    rule = backend.fates.add(Fate("failed"))
    with pytest.raises(KlingError):
        _create(backend, external_task_id="order-1")
    assert rule.remaining == 1


def test_fate_rules_are_forgotten_on_reset() -> None:
    backend = _backend()
    backend.fates.add(Fate("failed"))
    backend.reset()
    task_id = _create(backend)
    backend.advance(10)
    task = backend.tasks.get(task_id)
    assert task is not None and backend.status(task) == "succeed"


def test_a_fate_survives_a_restart_on_a_state_file(tmp_path: Path) -> None:
    config = Config(seed=5, timing=Timing(1, 4), state_file=str(tmp_path / "state.db"))
    first = Backend(config, clock=ManualClock(1_000_000))
    held = _create(first)
    failed = _create(first)
    first.set_fate(held, "processing", seconds=None)
    first.set_fate(failed, "failed", message="GPU on fire", error_code=4290)
    first.close()
    second = Backend(config, clock=ManualClock(1_000_000 + 10**7))
    held_task, failed_task = second.tasks.get(held), second.tasks.get(failed)
    assert held_task is not None and failed_task is not None
    assert second.status(held_task) == "processing"
    assert (second.status(failed_task), failed_task.status_msg) == ("failed", "GPU on fire")
    assert failed_task.extra is not None and failed_task.extra["error_code"] == 4290
    second.close()
