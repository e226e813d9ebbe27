"""Task fates: a :class:`Fate` reschedules a task, a :class:`FateRule` gives one to the next
new tasks that match it.

A task's status is derived from its schedule, so making a task fail, hold a status for a
while, or succeed at once is a change of schedule, and it is refused whenever it would move
the status a client has seen backwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Final

from . import catalogue
from .rules import RuleError, RuleRegistry, known_fields
from .tasks import FAILED, PROCESSING, RANK, SUBMITTED, SUCCEED, TERMINAL, Task

# A schedule time that is never reached: a task held "until further notice".
NEVER: Final = 2**62
DEFAULT_FAILURE_MESSAGE: Final = "Task failed"


class FateError(ValueError):
    """A fate that would move a task backwards, or change a task that has ended."""


@dataclass(frozen=True, slots=True)
class Fate:
    """A new schedule for a task.

    ``status`` ``succeed``/``failed``: the task ends so, now. ``status``
    ``submitted``/``processing``: the task is in that status from now for ``seconds``
    (``None``: until another fate), then ends as ``outcome`` says (default: as planned).
    ``outcome`` alone keeps the timing and changes only how the task ends. A failure carries
    ``message`` (``task_status_msg``) and, for the gateway surface, ``error_code``.
    """

    status: str | None = None
    seconds: float | None = None
    outcome: str | None = None
    message: str | None = None
    error_code: int | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in RANK:
            raise RuleError(f"status must be one of {', '.join(RANK)}, not {self.status!r}")
        if self.outcome is not None and self.outcome not in TERMINAL:
            raise RuleError(f"outcome must be one of {', '.join(sorted(TERMINAL))}, not {self.outcome!r}")
        if self.status is None and self.outcome is None:
            raise RuleError("a fate needs a status or an outcome")
        if self.status in TERMINAL:
            if self.seconds is not None:
                raise RuleError(f"seconds holds a task in submitted or processing, not in {self.status}")
            if self.outcome not in (None, self.status):
                raise RuleError(f"a task that ends {self.status} cannot have outcome {self.outcome}")
        seconds = self.seconds
        if seconds is not None and (
            isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= 10**8
        ):
            raise RuleError(f"seconds must be a number between 0 and 1e8, not {seconds!r}")
        if self.message is not None and not isinstance(self.message, str):
            raise RuleError(f"message must be a string, not {self.message!r}")
        code = self.error_code
        if code is not None and (isinstance(code, bool) or not isinstance(code, int)):
            raise RuleError(f"error_code must be an integer, not {code!r}")
        if (self.message is not None or code is not None) and self.ending != FAILED:
            raise RuleError("message and error_code go with a fate that ends failed")

    @property
    def ending(self) -> str | None:
        """How the task ends under this fate (None: as planned)."""
        return self.status if self.status in TERMINAL else self.outcome

    @property
    def ends_at_once(self) -> bool:
        """Whether a task that has ended when created keeps having ended: the fate holds no
        status (an ``outcome`` alone keeps the timing, which for such a task is now)."""
        return self.status is None or self.status in TERMINAL

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fate:
        return cls(**known_fields(cls, data, "fate"))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def reschedule(task: Task, fate: Fate, now_ms: int, *, new: bool = False) -> None:
    """Give ``task`` a new schedule from ``now_ms``; FateError if that would move the status a
    client may have seen backwards, or change a task that has ended. A ``new`` task (not yet
    stored, so never seen) counts as submitted whatever its timings."""
    current = SUBMITTED if new else task.status(now_ms)
    if current in TERMINAL:
        raise FateError(f"task {task.task_id} has already ended ({current}); its fate cannot change")
    target = fate.status
    if target is not None and RANK[target] < RANK[current]:
        raise FateError(f"task {task.task_id} is {current}: a fate never moves a status back to {target}")
    hold_ms = NEVER if fate.seconds is None else now_ms + round(fate.seconds * 1000)
    if target == SUBMITTED:
        run_ms = task.done_ms - task.processing_ms
        task.processing_ms = hold_ms
        task.done_ms = NEVER if hold_ms >= NEVER or task.done_ms >= NEVER else hold_ms + run_ms
    elif target == PROCESSING:
        if current == SUBMITTED:
            task.processing_ms = now_ms
        task.done_ms = hold_ms
    elif target in TERMINAL:
        if current == SUBMITTED:
            task.processing_ms = now_ms
        task.done_ms = now_ms
    ending = fate.ending
    if ending == FAILED:
        if task.outcome != FAILED or fate.message is not None:
            task.status_msg = fate.message or DEFAULT_FAILURE_MESSAGE
        task.outcome = FAILED
        if fate.error_code is not None:
            task.extra = {**(task.extra or {}), "error_code": fate.error_code}
    elif ending == SUCCEED:
        task.outcome = SUCCEED
        task.status_msg = ""


@dataclass(frozen=True, slots=True)
class FateRule:
    """A fate for the next ``times`` new tasks (None: every one) matching account, action
    (endpoint), model and mode."""

    fate: Fate
    account: str | None = None
    action: str | None = None
    model: str | None = None
    mode: str | None = None
    times: int | None = 1

    def __post_init__(self) -> None:
        if not isinstance(self.fate, Fate):
            raise RuleError("a fate rule needs a fate")
        for name in ("account", "action", "model", "mode"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise RuleError(f"{name} must be a non-empty string, not {value!r}")
        times = self.times
        if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
            raise RuleError(f"times must be an integer >= 1 (or null for every task), not {times!r}")
        if self.action in catalogue.INSTANT_ACTIONS and not self.fate.ends_at_once:
            raise RuleError(
                f"{self.action} is answered when it is created: its fate is succeed or failed, "
                "not a status to hold (a client could never see it end)"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FateRule:
        values = known_fields(cls, data, "fate rule")
        values["fate"] = Fate.from_dict(values.get("fate") or {})
        if "times" in data and data["times"] is None:
            values["times"] = None  # null here means "every task", not "left out"
        return cls(**values)

    def matches(self, task: Task) -> bool:
        """Whether the rule is for ``task``. An instant task (speech) is only the fate of a rule
        that names its endpoint: a rule for "the next task" is meant for one a client polls."""
        if task.action in catalogue.INSTANT_ACTIONS and self.action != task.action:
            return False
        return (
            (self.account is None or self.account == task.account)
            and (self.action is None or self.action == task.action)
            and (self.model is None or self.model == task.model)
            and (self.mode is None or self.mode == task.mode)
        )


class ActiveFate:
    __slots__ = ("applied", "id", "remaining", "rule")

    def __init__(self, rule_id: int, rule: FateRule) -> None:
        self.id = rule_id
        self.rule = rule
        self.remaining = rule.times
        self.applied = 0

    def to_dict(self) -> dict[str, Any]:
        rule = self.rule
        return {
            "id": self.id,
            "fate": rule.fate.to_dict(),
            "account": rule.account,
            "action": rule.action,
            "model": rule.model,
            "mode": rule.mode,
            "times": rule.times,
            "remaining": self.remaining,
            "applied": self.applied,
        }


class FateRules(RuleRegistry[FateRule, ActiveFate]):
    """Fates waiting for the next new tasks that match them, in the order they were added
    (ids as :mod:`mockkling.rules` says: never reused, from 1 again on :meth:`reset`)."""

    def __init__(self) -> None:
        super().__init__(ActiveFate)

    def add(self, rule: FateRule | Fate | None = None, /, **match: Any) -> ActiveFate:
        """Add a rule: a FateRule, or a Fate with the match fields (and ``times``) as keywords."""
        if isinstance(rule, Fate):
            rule = FateRule(rule, **match)
        elif rule is None:
            rule = FateRule.from_dict(match)
        elif match:
            raise TypeError("give a FateRule, or a Fate with keyword match fields")
        return super().add(rule)

    def apply(self, task: Task, now_ms: int) -> ActiveFate | None:
        """Reschedule a new task by the first rule that matches it; the rule is spent only
        when :meth:`consume` confirms the task was stored."""
        for active in self._rules:
            if active.remaining != 0 and active.rule.matches(task):
                reschedule(task, active.rule.fate, now_ms, new=True)
                return active
        return None

    def consume(self, active: ActiveFate | None) -> None:
        if active is None:
            return
        with self._lock:
            if active.remaining is not None:
                active.remaining = max(0, active.remaining - 1)
            active.applied += 1

    def cancel(self, active: ActiveFate | None) -> None:
        """The task :meth:`apply` gave a fate to was not stored: here nothing was spent yet (a
        store shared by processes spends a rule's turn in ``apply``, and gives it back here)."""


def as_fate(fate: Fate | str | Mapping[str, Any] | None, values: Mapping[str, Any]) -> Fate:
    """A Fate from what ``Backend.set_fate`` accepts: a Fate, a status plus keywords, or a dict."""
    if isinstance(fate, Fate):
        if values:
            raise TypeError("give a Fate, or a status with keyword fields, not both")
        return fate
    if isinstance(fate, str):
        return Fate(fate, **values)
    if fate is None:
        return Fate(**values)
    return Fate.from_dict({**fate, **values})
