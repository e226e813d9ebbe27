"""Rule ids, the same for fault rules and fate rules: never given out twice, so an id a test
kept cannot remove a rule added after it; only a reset numbers the rules from 1 again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mockkling import Backend, Config, Fate, FaultRule
from mockkling.rules import RuleRegistry

C = "/__mockkling"

# kind -> (the backend's registry, a rule to add to it, the same rule as a control-API body)
KINDS: dict[str, tuple[Callable[[Backend], RuleRegistry[Any, Any]], Any, dict[str, Any]]] = {
    "faults": (lambda b: b.faults, FaultRule(code=5000), {"code": 5000}),
    "fates": (lambda b: b.fates, Fate("failed"), {"fate": {"status": "failed"}}),
}


@pytest.mark.parametrize("kind", KINDS)
def test_ids_are_not_reused_after_remove_or_clear(backend: Backend, kind: str) -> None:
    registry_of, rule, _ = KINDS[kind]
    rules = registry_of(backend)
    first, second = rules.add(rule), rules.add(rule)
    assert (first.id, second.id) == (1, 2)
    assert rules.remove(second.id)
    assert rules.add(rule).id == 3
    assert rules.clear() == 2 and len(rules) == 0
    newest = rules.add(rule)
    assert newest.id == 4
    # A stale id removes nothing, and the rule added since is still in force.
    assert not rules.remove(first.id) and not rules.remove(second.id)
    assert [r.id for r in rules] == [4] and rules.get(4) is newest and rules.get(1) is None


@pytest.mark.parametrize("kind", KINDS)
def test_ids_are_not_reused_over_the_control_api(client: httpx.Client, kind: str) -> None:
    _, _, body = KINDS[kind]
    assert client.post(f"{C}/{kind}", json=body).json()["id"] == 1
    assert client.delete(f"{C}/{kind}").json() == {"removed": 1}
    assert client.post(f"{C}/{kind}", json=body).json()["id"] == 2
    stale = client.delete(f"{C}/{kind}/1")
    assert stale.status_code == 404 and stale.json()["error"] == "not_found"
    assert [r["id"] for r in client.get(f"{C}/{kind}").json()[kind]] == [2]


@pytest.mark.parametrize("kind", KINDS)
def test_reset_numbers_the_rules_from_one_again(backend: Backend, kind: str) -> None:
    registry_of, rule, _ = KINDS[kind]
    rules = registry_of(backend)
    rules.add(rule)
    rules.add(rule)
    rules.reset()
    assert len(rules) == 0
    assert rules.add(rule).id == 1


def test_a_backend_reset_puts_the_configured_fault_rules_back_first() -> None:
    backend = Backend(Config(faults=[FaultRule(code=5000, times=1), FaultRule(fault="drop")]))
    assert [r.id for r in backend.faults] == [1, 2]
    backend.faults.clear()
    assert backend.faults.add(code=5001).id == 3
    backend.reset()
    assert [(r.id, r.rule.code, r.rule.fault) for r in backend.faults] == [(1, 5000, None), (2, None, "drop")]
    assert backend.faults.add(code=5001).id == 3


def test_fate_rule_ids_start_again_after_a_backend_reset(backend: Backend) -> None:
    backend.fates.add(Fate("failed"))
    backend.fates.add(Fate("failed"))
    backend.reset()
    assert len(backend.fates) == 0
    assert backend.fates.add(Fate("failed")).id == 1  # a reset mock is a fresh one
