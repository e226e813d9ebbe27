"""What fault rules and fate rules share: the error for a rule that cannot be used, reading a
rule from a dict, and the registry that holds the rules in force.

The registry numbers its rules from 1 and never reuses a number: removing or clearing rules
keeps counting, so an id a test still holds can never remove a rule added after it. Only
:meth:`RuleRegistry.reset` (a backend going back to its configuration) starts again at 1.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import fields
from typing import Any, Generic, Protocol, TypeVar


class RuleError(ValueError):
    """A fault rule, fate or fate rule that cannot be used; the message says why."""


def known_fields(cls: type, data: Mapping[str, Any], what: str) -> dict[str, Any]:
    """``data``'s fields for ``cls`` (a dataclass), nulls dropped; RuleError for other keys."""
    if not isinstance(data, Mapping):
        raise RuleError(f"a {what} must be a table/object, not {data!r}")
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise RuleError(f"unknown {what} keys {sorted(unknown)}; known: {', '.join(sorted(known))}")
    return {k: v for k, v in data.items() if v is not None}


class Numbered(Protocol):
    """What the registry needs of a rule in force: its id, to find and remove it."""

    @property
    def id(self) -> int: ...


R = TypeVar("R")  # a rule, as given
A = TypeVar("A", bound=Numbered)  # a rule in force: its id and counters


class RuleRegistry(Generic[R, A]):
    """Rules in force, in the order they were added, each under its own id.

    ``activate(id, rule)`` puts a rule in force; ``rules`` are those configured, in force from
    the start and again after :meth:`reset`. Writers swap in a new list under a lock
    (copy-on-write), so readers (a request matching the rules) iterate without one.
    """

    def __init__(self, activate: Callable[[int, R], A], rules: Iterable[R] = ()) -> None:
        self._activate = activate
        self._configured = tuple(rules)
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Back to the configured rules, with fresh counters, numbered from 1 again."""
        with self._lock:
            self._ids = itertools.count(1)
            self._rules: list[A] = [self._activate(next(self._ids), r) for r in self._configured]

    def add(self, rule: R, /) -> A:
        with self._lock:
            active = self._activate(next(self._ids), rule)
            self._rules = [*self._rules, active]
        return active

    def get(self, rule_id: int) -> A | None:
        return next((r for r in self._rules if r.id == rule_id), None)

    def remove(self, rule_id: int) -> bool:
        """Remove rule ``rule_id``; False if there is none (its id is not given out again)."""
        with self._lock:
            kept = [r for r in self._rules if r.id != rule_id]
            removed = len(kept) != len(self._rules)
            self._rules = kept
        return removed

    def clear(self) -> int:
        """Remove every rule, and say how many there were; ids go on counting."""
        with self._lock:
            removed = len(self._rules)
            self._rules = []
        return removed

    def __iter__(self) -> Iterator[A]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)
