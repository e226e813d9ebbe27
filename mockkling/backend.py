"""The backend: the one object that owns the mock's state.

Accounts, tasks, the clock and the random source live here. Every API surface translates HTTP
into calls on a Backend, and tests configure the mock by calling it directly: the in-process
app and a live server share the same object, as moto's backends do.
"""

from __future__ import annotations

import base64
import random
import threading
from collections.abc import Iterable
from typing import Any

from .auth import Authenticator
from .clock import Clock, ManualClock, SystemClock
from .config import Config
from .errors import KlingError, invalid_value
from .faults import Fate, FateRules, FaultSet, as_fate, reschedule
from .journal import Journal
from .limits import Limiter
from .spec import Spec, default_spec
from .tasks import FAILED, SUCCEED, Task, TaskStore
from .validation import check_video_request


class Backend:
    """State and behaviour of one mock Kling service."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        clock: Clock | None = None,
        spec: Spec | None = None,
    ) -> None:
        self.config = (config or Config()).with_defaults()
        self.clock: Clock = clock or SystemClock()
        self.spec = spec or default_spec()
        self.tasks = TaskStore()
        self.auth = Authenticator(
            self.config.accounts,
            self.config.api_keys,
            accept_key_pairs=self.config.accept_key_pairs,
            leeway_seconds=self.config.leeway_seconds,
        )
        self._random = random.Random(self.config.seed)
        self._id_lock = threading.Lock()
        # What tests and the control API configure (logic in faults.py, limits.py, journal.py).
        self.faults = FaultSet(self.config.faults, seed=self.config.seed)
        self.fates = FateRules()
        self.limits = Limiter(self.config.limits, now=self.now_ms, tasks=self.tasks)
        self.journal = Journal(self.config.journal_size, self.config.journal_body_bytes)

    def __repr__(self) -> str:
        return f"Backend(tasks={len(self.tasks)}, accounts={len(self.auth.accounts)}, clock={self.clock!r})"

    # -- identities ----------------------------------------------------------------------------

    def new_id(self) -> str:
        """A 22-character id in the style of Kling's task and request ids; seeded by config.seed."""
        with self._id_lock:
            raw = self._random.getrandbits(128).to_bytes(16, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def reseed(self, seed: int | None) -> None:
        with self._id_lock:
            self._random.seed(seed)

    # -- accounts --------------------------------------------------------------------------------

    def add_account(self, access_key: str, secret_key: str, api_keys: Iterable[str] = ()) -> None:
        """Add (or re-key) an account; its raw API keys act for it too."""
        self.auth.accounts[access_key] = secret_key
        for key in api_keys:
            self.auth.api_keys[key] = access_key
        self.auth.clear_cache()

    def add_api_key(self, key: str, account: str | None = None) -> None:
        """Accept a raw key (``sk-...``); it acts for ``account``, or for an account of its own."""
        self.auth.api_keys[key] = account or key

    def authenticate(self, authorization: str | None) -> str:
        """The account an ``Authorization`` header acts for; KlingError 1000-1004 if none."""
        return self.auth.authenticate(authorization)

    # -- the clock -------------------------------------------------------------------------------

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def use_manual_clock(self, start_ms: int | None = None) -> ManualClock:
        """Swap in a clock that moves only when told to (starting now, or at ``start_ms``)."""
        current = self.clock.now_ms()
        clock = ManualClock(current if start_ms is None else start_ms)
        self.clock = clock
        return clock

    def advance(self, seconds: float) -> int:
        """Move a manual clock forward; return the new time in ms."""
        if not isinstance(self.clock, ManualClock):
            raise TypeError("advance() needs a manual clock: call use_manual_clock() first")
        return self.clock.advance(seconds)

    # -- tasks -----------------------------------------------------------------------------------

    def create_video_task(
        self,
        account: str,
        action: str,
        body: dict[str, Any],
        *,
        extra: dict[str, Any] | None = None,
    ) -> Task:
        """Create a text2video/image2video task from a schema-valid official request body."""
        params = check_video_request(action, body)
        now = self.clock.now_ms()
        timing = self.config.timing_for(params.model, params.mode)
        processing = now + round(timing.queue_seconds * 1000)
        outcome, message = self._outcome(body)
        callback_url = body.get("callback_url")
        if callback_url:
            extra = {**(extra or {}), "callback_url": callback_url}
        if (body.get("watermark_info") or {}).get("enabled"):
            extra = {**(extra or {}), "watermark": True}
        task = Task(
            task_id=self.new_id(),
            account=account,
            action=action,
            model=params.model,
            mode=params.mode,
            duration=params.duration,
            created_ms=now,
            processing_ms=processing,
            done_ms=processing + round(timing.run_seconds * 1000),
            outcome=outcome,
            status_msg=message,
            external_task_id=body.get("external_task_id"),
            extra=extra,
        )
        return self.add_task(task)

    def add_task(self, task: Task) -> Task:
        """Store a new task. Every create on every surface ends here, so whatever must happen
        to each new task (callbacks, limits, persistence) hooks in at this one place."""
        fate_rule = self.fates.apply(task, self.clock.now_ms())
        self.limits.admit(task)
        if not self.tasks.add(task):
            self.limits.release(task)
            raise invalid_value(f"external_task_id {task.external_task_id!r} already exists")
        self.fates.consume(fate_rule)
        return task

    def set_fate(self, task_id: str, fate: Fate | str | dict[str, Any] | None = None, **values: Any) -> Task:
        """Reschedule a stored task: ``set_fate(id, "failed", message=...)``, ``set_fate(id,
        "processing", seconds=30)``, ``set_fate(id, "succeed")`` or a :class:`Fate`.

        KlingError 1203 for an unknown task; FateError if the task has ended or the fate would
        move its status backwards."""
        task = self.tasks.get(task_id)
        if task is None:
            raise KlingError(1203, f"task {task_id} does not exist")
        old_outcome = task.outcome
        reschedule(task, as_fate(fate, values), self.clock.now_ms())
        self.limits.rescheduled(task, old_outcome)
        return task

    def _outcome(self, body: dict[str, Any]) -> tuple[str, str]:
        prompt = str(body.get("prompt") or "").lower()
        for rule in self.config.fail_rules:
            if rule.prompt_contains.lower() in prompt:
                return FAILED, rule.message
        return SUCCEED, ""

    def get_task(self, account: str, ident: str) -> Task:
        """An account's task by task_id or external_task_id; 404 / 1203 otherwise.

        Another account's task answers exactly as a missing one does.
        """
        task = self.tasks.get(ident)
        if task is None or task.account != account:
            task = self.tasks.get_external(account, ident)
        if task is None:
            raise KlingError(1203, f"task {ident} does not exist")
        return task

    def list_tasks(self, account: str, action: str, page_num: int = 1, page_size: int = 30) -> list[Task]:
        """One page of an account's tasks created on ``action``, newest first."""
        return self.tasks.page(account, action, page_num, page_size)

    def status(self, task: Task) -> str:
        return task.status(self.clock.now_ms())

    def reset(self) -> None:
        """Forget every task, fate and recorded request; fault rules and limits go back to the
        configuration, ids to the configured seed (accounts and the clock stay)."""
        self.tasks.clear()
        self.auth.clear_cache()
        self.faults.reset()
        self.fates.clear()
        self.limits.reset()
        self.journal.clear()
        if self.config.seed is not None:
            self.reseed(self.config.seed)
