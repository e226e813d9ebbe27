"""The backend: the one object that owns the mock's state.

Accounts, tasks, the clock and the random source live here. Every API surface translates HTTP
into calls on a Backend, and tests configure the mock by calling it directly: the in-process
app and a live server share the same object, as moto's backends do.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from typing import Any

from . import catalogue, contents, media, namespaces, packs, validation, webhooks
from .auth import Authenticator
from .callbacks import CallbackDispatcher, Renderer, Secrets, official_renderer
from .clock import Clock, ManualClock
from .config import CallbackSettings, Config, is_redis_url
from .errors import KlingError, invalid_value
from .fates import NEVER, Fate, FateRules, as_fate, reschedule
from .fault_rules import FaultSet
from .journal import Journal
from .limits import Limiter
from .spec import Spec, default_spec
from .state import MemoryState, Space, State
from .tasks import FAILED, PROCESSING, SUBMITTED, SUCCEED, TERMINAL, Task, TaskStorage
from .validation import OFFICIAL_RULES, Rules


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
        self.spec = spec or default_spec()
        # Everything that changes, per namespace (state.py): in memory, SQLite or Redis.
        self.state: State = open_state(self.config, clock)
        self._spaces: dict[str, Space] = {}  # the state's spaces, as this backend has met them
        shared = self.state.accounts() is not None
        self.auth = Authenticator(
            self.config.accounts,
            self.config.api_keys,
            accept_key_pairs=self.config.accept_key_pairs,
            leeway_seconds=self.config.leeway_seconds,
            reload=self.state.accounts if shared else None,
        )
        # The mock's address as callback receivers reach it: result URLs in callback bodies. A
        # test handle that learns where it is served sets it (when the configuration names none).
        self.public_url = self.config.public_base_url()
        # Where result URLs point when set (the real CDN's host, under interception); else they
        # use the address each client reached the mock at (callbacks: public_url).
        self.media_url = self.config.media_url.rstrip("/") if self.config.media_url else None
        self.state.reseed(self._id_seed(self.config.seed))
        # Sends callback_url notifications; its thread starts with the first task that has one.
        self.callbacks = make_dispatcher(
            self.state,
            self.config.callbacks,
            lambda: self.clock,
            official_renderer(lambda: self.media_url or self.public_url),
            secrets=self.webhook_secrets,
        )

    # -- the state of the namespace in use (namespaces.py: the request's, or the default) ---------

    def space(self) -> Space:
        """The state of the namespace in use: one look-up, for code that reads several parts."""
        name = namespaces.CURRENT.get()
        space = self._spaces.get(name)
        if space is None:
            space = self._spaces[name] = self.state.space(name)
        return space

    @property
    def namespace(self) -> str:
        """The namespace this backend acts in now (the request's, or ``namespaces.using``)."""
        return namespaces.CURRENT.get()

    @property
    def tasks(self) -> TaskStorage:
        return self.space().tasks

    @property
    def faults(self) -> FaultSet:
        """Fault rules in force (what tests and the control API configure; fault_rules.py)."""
        return self.space().faults

    @property
    def fates(self) -> FateRules:
        return self.space().fates

    @property
    def limits(self) -> Limiter:
        return self.space().limits

    @property
    def journal(self) -> Journal:
        return self.space().journal

    @journal.setter
    def journal(self, journal: Journal) -> None:
        self.space().journal = journal

    @property
    def clock(self) -> Clock:
        return self.space().clock

    def __repr__(self) -> str:
        return f"Backend(tasks={len(self.tasks)}, accounts={len(self.auth.accounts)}, clock={self.clock!r})"

    # -- identities ----------------------------------------------------------------------------

    def new_id(self, *, numeric: bool = False) -> str:
        """A 22-character id in the style of Kling's task and request ids, or with ``numeric``
        an 18-digit one as the model-in-path design and element ids are; seeded by config.seed."""
        raw = self.state.draw_id()
        if numeric:
            return str(10**17 + raw % (9 * 10**17))
        return base64.urlsafe_b64encode(raw.to_bytes(16, "big")).rstrip(b"=").decode("ascii")

    def reseed(self, seed: int | None) -> None:
        self.state.reseed(self._id_seed(seed))

    def _id_seed(self, seed: int | None) -> int | str | None:
        """A seed stays reproducible, yet each store opened on a shared state file draws ids of
        its own (workers, restarts), so that their ids never collide."""
        if seed is None or not self.tasks.salt:
            return seed
        return f"{seed}:{self.tasks.salt}"

    # -- accounts --------------------------------------------------------------------------------

    def add_account(self, access_key: str, secret_key: str, api_keys: Iterable[str] = ()) -> None:
        """Add (or re-key) an account; its raw API keys act for it too."""
        self.auth.add_account(access_key, secret_key, api_keys)
        self.state.add_account(access_key, secret_key, tuple(api_keys))

    def add_api_key(self, key: str, account: str | None = None) -> None:
        """Accept a raw key (``sk-...``); it acts for ``account``, or for an account of its own."""
        self.auth.add_api_key(key, account)
        self.state.add_api_key(key, account or key)

    def account_of(self, authorization: bytes | None) -> str | None:
        """The account a raw ``Authorization`` value acts for, or None (never raises)."""
        return self.auth.account_of(authorization)

    def account_label(self, account: str | None) -> str | None:
        """``account`` as the journal shows it: never a raw key."""
        return self.auth.label(account)

    def authenticate(self, authorization: str | None) -> str:
        """The account an ``Authorization`` header acts for; KlingError 1000-1004 if none."""
        return self.auth.authenticate(authorization)

    def authenticate_key(self, authorization: str | None) -> str:
        """The account a gateway key (``sk-...``, bare or after ``Bearer``) acts for; 401 if none."""
        return self.auth.authenticate_key(authorization)

    def listening_on(self, host: str, port: int) -> None:
        """Say where a server serves this backend: callbacks are never sent there."""
        self.callbacks.listening.add((host, port))

    # -- the clock -------------------------------------------------------------------------------

    def now_ms(self) -> int:
        return self.space().now_ms()

    def use_manual_clock(self, start_ms: int | None = None) -> ManualClock:
        """Swap in a clock that moves only when told to (starting now, or at ``start_ms``)."""
        space = self.space()
        return space.use_manual_clock(space.now_ms() if start_ms is None else start_ms)

    def advance(self, seconds: float) -> int:
        """Move a manual clock forward; return the new time in ms."""
        if not isinstance(self.clock, ManualClock):
            raise TypeError("advance() needs a manual clock: call use_manual_clock() first")
        now = self.clock.advance(seconds)
        self.callbacks.wake()  # send the status changes this move made due
        return now

    # -- tasks -----------------------------------------------------------------------------------

    def create_task(
        self,
        account: str,
        action: str,
        body: dict[str, Any],
        *,
        extra: dict[str, Any] | None = None,
        rules: Rules = OFFICIAL_RULES,
    ) -> Task:
        """Create a task on any official action from a schema-valid request body.

        The action's checker (``validation.ACTIONS``) refuses what the official API refuses and
        says what the task is; every action then schedules and stores its task the same way.
        ``rules`` are the surface's checks beyond its schema (a gateway skips the catalogue's).
        """
        plan = validation.action(action).check(body, self.lookup(account), rules)
        now = self.clock.now_ms()
        timing = self.config.timing_for(plan.model, plan.mode)
        # Progressing by polls, a task holds each status until it has been queried enough.
        processing = NEVER if self.config.polls_per_status else now + round(timing.queue_seconds * 1000)
        external = validation.external_id("external_task_id", body.get("external_task_id"))
        outcome, message = self._outcome(plan.prompt)
        details = {**(plan.extra or {}), **(extra or {})}
        if body.get("callback_url"):
            details["callback_url"] = body["callback_url"]
        watermark = body.get("watermark_info")
        if isinstance(watermark, dict) and watermark.get("enabled"):
            details["watermark"] = True
        task = Task(
            task_id=self.new_id(),
            account=account,
            action=action,
            model=plan.model,
            mode=plan.mode,
            duration=plan.duration,
            created_ms=now,
            processing_ms=processing,
            done_ms=NEVER if processing >= NEVER else processing + round(timing.run_seconds * 1000),
            outcome=outcome,
            status_msg=message,
            external_task_id=external,
            extra=details or None,
        )
        return self.add_task(task)

    def lookup(self, account: str) -> validation.Lookup:
        """What a request's checks may look up (its videos, clips, records), within ``account``."""
        return _AccountLookup(self, account)

    def find_video(self, account: str, video_id: str) -> Task | None:
        """The task behind one of ``account``'s result videos, while it can still be used as a
        source (finished, and within the official 30-day retention); None otherwise."""
        task_id = media.task_id_of_video(video_id)
        task = self.tasks.get(task_id) if task_id else None
        if task is None or task.account != account:
            return None
        now = self.clock.now_ms()
        if task.status(now) != SUCCEED or now >= task.done_ms + media.RETENTION_MS:
            return None
        endpoint = catalogue.ENDPOINTS.get(task.action)
        return task if endpoint is None or endpoint.makes(catalogue.VIDEOS) else None

    def find_audio(self, account: str, audio_id: str) -> Task | None:
        """The task behind one of ``account``'s result audio clips (``task_result.audios[].id``),
        while it can still be used as a source; None otherwise."""
        task_id = media.task_id_of_audio(audio_id)
        task = self.tasks.get(task_id) if task_id else None
        if task is None or task.account != account:
            return None
        now = self.clock.now_ms()
        if task.status(now) != SUCCEED or now >= task.done_ms + media.RETENTION_MS:
            return None
        endpoint = catalogue.ENDPOINTS.get(task.action)
        return task if endpoint is not None and endpoint.makes(catalogue.AUDIOS) else None

    def add_record(
        self,
        account: str,
        action: str,
        *,
        ident: str | None = None,
        extra: dict[str, Any] | None = None,
        lifetime_seconds: float | None = None,
    ) -> Task:
        """Store a resource an endpoint makes at once (a face session, a custom element, a
        speech clip) under its own ``action``, as a task that has finished when it is created:
        every store keeps it, namespaces and resets included, and the control API shows it. It
        has no lifecycle, so no fate, limit or callback applies. ``ident`` is its id (a new one
        by default); after ``lifetime_seconds`` it is gone."""
        now = self.clock.now_ms()
        details = {**(extra or {}), RECORD: True}
        if lifetime_seconds is not None:
            details["expires_ms"] = now + round(lifetime_seconds * 1000)
        task = Task(
            task_id=ident or self.new_id(),
            account=account,
            action=action,
            model="",
            mode="",
            duration="",
            created_ms=now,
            processing_ms=now,
            done_ms=now,
            extra=details,
        )
        if not self.tasks.add(task):  # only an external id can collide, and records have none
            raise KlingError(5000)
        return task

    def find_record(self, account: str, action: str, ident: str) -> Task | None:
        """``account``'s record of ``action`` with id ``ident`` (or a task of that action that has
        succeeded: a custom voice); None if it is unknown, another account's, unfinished,
        expired or deleted (``extra["deleted"]``)."""
        task = self.tasks.get(ident)
        if task is None or task.account != account or task.action != action:
            return None
        extra, now = task.extra or {}, self.clock.now_ms()
        if task.status(now) != SUCCEED or extra.get("deleted") or now >= extra.get("expires_ms", NEVER):
            return None
        return task

    def add_task(self, task: Task) -> Task:
        """Store a new task. Every create on every surface ends here, so whatever must happen
        to each new task (callbacks, limits, persistence) hooks in at this one place."""
        self.callbacks.check(task)
        space = self.space()
        fate_rule = space.fates.apply(task, space.now_ms())
        try:
            space.limits.admit(task)
            if not space.tasks.add(task):
                space.limits.release(task)
                raise invalid_value(f"external_task_id {task.external_task_id!r} already exists")
        except BaseException:
            space.fates.cancel(fate_rule)  # a rule shared between processes gives its turn back
            raise
        space.fates.consume(fate_rule)
        self.callbacks.watch(task, space.name, lambda: space.clock)
        return task

    def set_fate(self, task_id: str, fate: Fate | str | dict[str, Any] | None = None, **values: Any) -> Task:
        """Reschedule a stored task: ``set_fate(id, "failed", message=...)``, ``set_fate(id,
        "processing", seconds=30)``, ``set_fate(id, "succeed")`` or a :class:`Fate`.

        KlingError 1203 for an unknown task; FateError if the task has ended or the fate would
        move its status backwards."""
        new_fate, now = as_fate(fate, values), self.clock.now_ms()
        outcomes: list[str] = []

        def change(task: Task) -> None:
            outcomes[:] = [task.outcome]
            reschedule(task, new_fate, now)

        task = self.tasks.modify(task_id, change)
        if task is None:
            raise KlingError(1203, f"task {task_id} does not exist")
        self.limits.rescheduled(task, outcomes[0])
        self.callbacks.wake()  # notify the status changes the new schedule makes due
        return task

    def _outcome(self, text: str) -> tuple[str, str]:
        prompt = text.lower()
        for rule in self.config.fail_rules:
            if rule.prompt_contains.lower() in prompt:
                return FAILED, rule.message
        return SUCCEED, ""

    def get_task(self, account: str, ident: str) -> Task:
        """An account's task by task_id or external_task_id; 404 / 1203 otherwise.

        Another account's task, and a record (``add_record``), answer exactly as a missing one.
        """
        task = self.tasks.get(ident)
        if task is None or task.account != account:
            task = self.tasks.get_external(account, ident)
        # A model-in-path task is read through /tasks only, as the official service answers.
        if task is None or is_record(task) or is_deleted(task) or task.action in catalogue.MODEL_ROUTES:
            raise KlingError(1203, f"task {ident[:64]} does not exist")  # never echo a huge id back
        return self.polled(task)

    def polled(self, task: Task) -> Task:
        """``task`` as a query of it finds it. When tasks progress by polls (``polls_per_status``)
        the query is counted: every N-th moves it one status on, as moto's state manager does,
        whatever the clock. Every query route on every surface reads its task through here."""
        if not self.config.polls_per_status:
            return task
        now = self.clock.now_ms()
        if task.status(now) in TERMINAL:
            return task

        def count(stored: Task) -> None:
            stored.extra = {**(stored.extra or {}), "polls": (stored.extra or {}).get("polls", 0) + 1}

        counted = self.tasks.modify(task.task_id, count)
        if counted is None:  # gone meanwhile (a reset)
            return task
        task, status = counted, counted.status(now)
        if status in TERMINAL or (task.extra or {})["polls"] % self.config.polls_per_status:
            return task
        if status == SUBMITTED:
            return self.set_fate(task.task_id, Fate(PROCESSING))  # held until the next N polls
        return self.set_fate(task.task_id, Fate(task.outcome, message=task.status_msg or None))

    def list_tasks(self, account: str, action: str, page_num: int = 1, page_size: int = 30) -> list[Task]:
        """One page of an account's tasks created on ``action``, newest first (a deleted
        custom voice is gone from its list)."""
        if action not in catalogue.DELETABLE:
            return self.tasks.page(account, action, page_num, page_size)
        live = [task for task in reversed(self.tasks.owned(account, action)) if not is_deleted(task)]
        start = (page_num - 1) * page_size
        return live[start : start + page_size]

    def account_costs(
        self, account: str, start_ms: int, end_ms: int, pack_name: str | None = None
    ) -> list[dict[str, Any]]:
        """The account's resource packs valid in [start_ms, end_ms], with what its finished
        tasks have drawn from them (``GET /account/costs``)."""
        now = self.clock.now_ms()
        draws = [
            (task.done_ms, endpoint.pack, float(catalogue.task_units(task)))
            for action, endpoint in catalogue.ENDPOINTS.items()
            for task in self.tasks.owned(account, action)
            if task.status(now) == SUCCEED
        ]
        return packs.subscribe_infos(
            self.config.resource_packs or packs.DEFAULT_PACKS,
            draws,
            account=account,
            now_ms=now,
            start_ms=start_ms,
            end_ms=end_ms,
            name=pack_name,
        )

    def media_expired(self, task: Task) -> bool:
        """Whether a task's result files are gone (``media_ttl_seconds`` after it ended)."""
        ttl = self.config.media_ttl_seconds
        return ttl > 0 and self.clock.now_ms() >= task.done_ms + ttl * 1000

    def status(self, task: Task) -> str:
        return task.status(self.clock.now_ms())

    def reset(self) -> None:
        """Forget every task, fate and recorded request of the namespace in use (the default
        one unless a request or ``namespaces.using`` names another); fault rules and limits go
        back to the configuration, ids to the configured seed (accounts and the clock stay)."""
        space = self.space()
        space.reset()
        self.callbacks.clear(space.name)
        self.auth.clear_cache()
        if self.config.seed is not None:
            self.reseed(self.config.seed)

    def close(self) -> None:
        """Stop background work (callback deliveries) and flush the task stores (a state file
        is closed, its write-ahead log folded in); the backend stays usable. The app calls this
        at shutdown for a backend it built itself."""
        self.callbacks.close()
        self.state.close()

    # -- instant tasks (issue 16: speech) ------------------------------------------------------

    def create_instant(
        self, account: str, action: str, *, prompt: str, duration: str, extra: dict[str, Any]
    ) -> Task:
        """A task that has finished when it is created, for an endpoint that answers with its
        result (text to speech). Kept out of task queries and lists as a record is, yet fail
        rules, fates and limits apply as to any task, so a test can make it fail or hold it."""
        now = self.clock.now_ms()
        outcome, message = self._outcome(prompt)
        task = Task(
            task_id=self.new_id(),
            account=account,
            action=action,
            model="",
            mode="",
            duration=duration,
            created_ms=now,
            processing_ms=now,
            done_ms=now,
            outcome=outcome,
            status_msg=message,
            extra={**extra, RECORD: True},
        )
        return self.add_task(task)

    # -- the model-in-path design (routes/model_api.py; docs/model-in-path-api.md) --------------

    def authenticate_api_key(self, authorization: str | None) -> str:
        """The account an ``Authorization: Bearer <API key>`` acts for; 401 / 1001-1002 if none
        (a legacy AK/SK credential is refused with the official message)."""
        return self.auth.authenticate_api_key(authorization)

    def webhook_secrets(self, account: str) -> tuple[str, ...]:
        """The secrets that sign ``account``'s callbacks, the current one first (empty: unsigned)."""
        return self.state.webhook_secrets(account)

    def set_webhook_secret(self, *secrets: str, account: str | None = None) -> None:
        """Sign ``account``'s callbacks (every account's, by default) with these ``whsec_``
        secrets from now on: one, several during a rotation, none to stop signing."""
        for secret in secrets:
            webhooks.key_of(secret)  # WebhookError (a ValueError) if it is not a whsec_ secret
        self.state.set_webhook_secrets(account, tuple(secrets))

    def create_model_task(self, account: str, route: catalogue.ModelRoute, body: dict[str, Any]) -> Task:
        """Create a task on a model-in-path endpoint from a schema-valid body: its page's rules
        (contents.py) say what it is; it is scheduled and stored as every task is (add_task),
        with a numeric id, as the design's ids are."""
        plan = contents.check(route, body, self.lookup(account), self.config.model_api)
        options = contents.options(body)
        if options.external_task_id is not None and self.tasks.get_external(
            account, options.external_task_id
        ):
            raise invalid_value(f"options.external_task_id {options.external_task_id[:64]!r} already exists")
        now = self.clock.now_ms()
        timing = self.config.timing_for(plan.model, plan.mode)
        processing = NEVER if self.config.polls_per_status else now + round(timing.queue_seconds * 1000)
        outcome, message = self._outcome(plan.prompt)
        details = dict(plan.extra or {})
        if options.callback_url:
            details["callback_url"] = options.callback_url
        if options.watermark:
            details["watermark"] = True
        task = Task(
            task_id=self.new_id(numeric=True),
            account=account,
            action=route.action,
            model=plan.model,
            mode=plan.mode,
            duration=plan.duration,
            created_ms=now,
            processing_ms=processing,
            done_ms=NEVER if processing >= NEVER else processing + round(timing.run_seconds * 1000),
            outcome=outcome,
            status_msg=message,
            external_task_id=options.external_task_id,
            extra=details,
        )
        return self.add_task(task)

    def model_tasks(self, account: str, idents: list[str], *, external: bool = False) -> list[Task]:
        """``account``'s model-in-path tasks with these ids (or external ids), in that order;
        unknown ids, other accounts' tasks and legacy tasks are left out alike."""
        found = []
        for ident in idents:
            task = self.tasks.get_external(account, ident) if external else self.tasks.get(ident)
            if task is not None and task.account == account and task.action in catalogue.MODEL_ROUTES:
                found.append(self.polled(task))
        return found

    def all_model_tasks(self, account: str) -> list[Task]:
        """Every model-in-path task of ``account`` (what ``POST /tasks`` pages through)."""
        return [task for action in catalogue.MODEL_ROUTES for task in self.tasks.owned(account, action)]


# Marks a record in ``Task.extra``: a resource made at once, not a task a client polls.
RECORD = "record"


def is_record(task: Task) -> bool:
    return bool(task.extra and task.extra.get(RECORD))


def is_deleted(task: Task) -> bool:
    """A custom voice or element its owner deleted (library.py)."""
    return bool(task.extra and task.extra.get("deleted"))


class _AccountLookup:
    """What a create's rules may look up (validation.Lookup), within the creating account."""

    __slots__ = ("_account", "_backend")

    def __init__(self, backend: Backend, account: str) -> None:
        self._backend = backend
        self._account = account

    def video(self, video_id: str) -> Task | None:
        return self._backend.find_video(self._account, video_id)

    def audio(self, audio_id: str) -> Task | None:
        return self._backend.find_audio(self._account, audio_id)

    def record(self, action: str, ident: str) -> Task | None:
        return self._backend.find_record(self._account, action, ident)


def open_state(config: Config, clock: Clock | None = None) -> State:
    """The state ``config.state_file`` names: memory, a SQLite file, or a Redis URL."""
    if is_redis_url(config.state_file):
        from .redis_state import RedisState  # only a Redis-backed mock loads the client

        return RedisState(config, clock)
    return MemoryState(config, clock)


def make_dispatcher(
    state: State,
    settings: CallbackSettings,
    clock: Callable[[], Clock],
    render: Renderer,
    *,
    secrets: Secrets,
) -> CallbackDispatcher:
    """The callback sender: this process's own, or, on a shared state, one that shares the
    work with every process on it (each status change sent once, by one of them)."""
    if state.kind == "redis":
        from .redis_state import RedisState, SharedCallbackDispatcher

        assert isinstance(state, RedisState)
        return SharedCallbackDispatcher(state, settings, clock, render, secrets=secrets)
    return CallbackDispatcher(settings, clock, render, secrets=secrets)
