"""Callbacks: POST a task to its ``callback_url`` each time its status changes, as Kling does.

Statuses are never stored (see ``tasks``): a status "changes" when the clock passes one of the
task's transition times. So the dispatcher keeps, per watched task, the last status it
notified, and on each tick sends, in lifecycle order, every status the task has reached since,
computed from the task's schedule as it is at that moment (a rescheduled task is followed).

One daemon thread per dispatcher runs an asyncio loop that does everything: ticks, retries with
backoff, and the HTTP requests (httpx, concurrently, one delivery at a time per task so a
task's notifications arrive in order). It starts with the first watched task and sleeps until
the next transition is due (system clock) or until woken (a task added, a manual clock
advanced). Nothing here ever blocks a request handler: ``watch`` only records and wakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

import orjson

from . import catalogue, webhooks
from .clock import Clock, ManualClock
from .config import CallbackSettings
from .errors import KlingError, invalid_value
from .journal import MASK, mask_query
from .namespaces import DEFAULT as DEFAULT_NAMESPACE
from .tasks import RANK, SUBMITTED, TERMINAL, TRANSITIONS, Task
from .views import model_task_view, task_view

if TYPE_CHECKING:  # imported where used: a server that sends no callback never loads httpx
    import httpx

logger = logging.getLogger("mockkling.callbacks")

# Deliveries in flight at once to one receiver host; the rest wait their turn. Each host has its
# own lane, so a slow receiver holds up only its own callbacks.
PER_HOST_CONCURRENT: Final = 8
# Connections open at once to all receivers together: room for the full lanes of many hosts, so
# the shared pool never makes one receiver wait on another's slowness, yet bounded, so no number
# of receivers can take every socket of the process (docs/reliability.md).
MAX_CONNECTIONS: Final = 32 * PER_HOST_CONCURRENT
# Attempts kept in the delivery log; older ones are dropped first.
LOG_SIZE: Final = 10_000
# Upper bound of one timed sleep, so a far-off transition needs no huge timeout value.
_MAX_SLEEP_SECONDS: Final = 3600.0
USER_AGENT: Final = "mockkling-callbacks"

Outcome = Literal["delivered", "retrying", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """One attempt to deliver one notification (or a notification skipped by policy).

    ``outcome``: ``delivered`` (a 2xx answer), ``retrying`` (failed, another attempt follows),
    ``failed`` (failed, no attempts left), ``skipped`` (host not allowed; attempt 0, no request).
    """

    task_id: str
    status: str
    url: str
    attempt: int
    outcome: Outcome
    http_status: int | None
    error: str | None
    at_ms: int  # wall-clock time the attempt started (ms since the epoch)
    elapsed_ms: int  # how long it took

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


Renderer = Callable[[Task, str], dict[str, Any]]
Listener = Callable[[DeliveryAttempt], None]
# An account's webhook secrets in force (empty: its callbacks go unsigned).
Secrets = Callable[[str], Sequence[str]]
# The body types of the two dialects: the model-in-path design's, as its callback page shows it.
LEGACY_CONTENT_TYPE: Final = "application/json"
MODEL_API_CONTENT_TYPE: Final = "application/json; charset=utf-8"


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """Whether ``host`` (as written in the URL, never resolved) matches an allowed entry."""
    host = host.lower().rstrip(".")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in allowed:
        if entry == "*":
            return True
        if entry.startswith("*."):
            if host.endswith(entry[1:]):
                return True
            continue
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            if host == entry.rstrip("."):
                return True
            continue
        if address is not None and address.version == network.version and address in network:
            return True
    return False


def _for_log(url: str) -> str:
    """``url`` with its password and credential query parameters masked (``user:***@``,
    ``?token=***``), as the journal masks them: a receiver's URL often carries its secret, and
    logs travel further than tests."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username}:{MASK}@{netloc.rpartition('@')[2]}"
    query = mask_query(parts.query.encode("latin-1", "replace")).decode("latin-1")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _local_addresses() -> set[str]:
    """This machine's own addresses, as far as it can tell without asking the network."""
    found = {"127.0.0.1", "::1"}
    with contextlib.suppress(OSError):
        found.update(str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None))
    return found


def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (an IP literal is itself); empty if it does not resolve."""
    try:
        return [ipaddress.ip_address(host.strip("[]")).compressed]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host.rstrip("."), port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))


def is_listening_on(address: str, port: int, listening: Iterable[tuple[str, int]]) -> bool:
    """Whether ``address:port`` reaches one of the mock's own listening sockets ``listening``
    (a wildcard bind listens on every local address)."""
    try:
        wanted = ipaddress.ip_address(address)
    except ValueError:
        return False
    for host, bound_port in listening:
        if bound_port != port:
            continue
        if wanted.is_unspecified:  # connecting to 0.0.0.0 or :: reaches this machine
            return True
        if host in ("0.0.0.0", "::", ""):
            if wanted.is_loopback or address in _local_addresses():
                return True
        else:
            with contextlib.suppress(ValueError):
                if ipaddress.ip_address(host) == wanted:
                    return True
    return False


def parse_callback_url(url: str) -> httpx.URL:
    """The URL as httpx will send to it (one parser for checking and sending), or 400 / 1201."""
    import httpx

    try:
        parsed = httpx.URL(url)
        host = parsed.host  # decoded on access: a malformed IDNA label ("xn--") raises here
    except (httpx.InvalidURL, ValueError):
        parsed, host = None, ""
    if parsed is None or parsed.scheme not in ("http", "https") or not host:
        raise invalid_value("callback_url must be an http or https URL")
    return parsed


def lifecycle_path(status: str) -> list[str]:
    """The statuses a task passes through, in order, to reach ``status``."""
    path = [SUBMITTED]
    while path[-1] != status and TRANSITIONS[path[-1]]:
        following = TRANSITIONS[path[-1]]
        path.append(status if status in following else following[0])
    return path


def entered_ms(task: Task, status: str) -> int:
    """When ``task`` entered ``status``: the ``updated_at`` its notification carries."""
    if status == SUBMITTED:
        return task.created_ms
    if status in TERMINAL:
        return task.done_ms
    return task.processing_ms


def official_renderer(base_url: Callable[[], str]) -> Renderer:
    """Bodies in the official callback shapes: the flat task object a query's ``data`` holds,
    in the dialect of the design that made the task (the legacy ``task_id``/``task_status``
    one, or the model-in-path design's ``id``/``status``/``outputs``), with result URLs on
    ``base_url()`` (read at each notification, so it may be set late)."""

    def render(task: Task, status: str) -> dict[str, Any]:
        view = model_task_view if task.action in catalogue.MODEL_ROUTES else task_view
        return view(task, entered_ms(task, status), base_url(), status=status)

    return render


class _Watch:
    """A task with a callback URL whose final status has not been notified yet, with the clock
    of its namespace."""

    __slots__ = ("clock", "last", "namespace", "task", "url")

    def __init__(self, task: Task, url: str, namespace: str, clock: Callable[[], Clock]) -> None:
        self.task = task
        self.url = url
        self.namespace = namespace
        self.clock = clock
        self.last: str | None = None


class _Notification:
    __slots__ = ("body", "content_type", "msg_id", "secrets", "status", "task_id", "url")

    def __init__(
        self,
        task_id: str,
        status: str,
        url: str,
        body: bytes,
        *,
        content_type: str = LEGACY_CONTENT_TYPE,
        secrets: Sequence[str] = (),
    ) -> None:
        self.task_id = task_id
        self.status = status
        self.url = url
        self.body = body
        self.content_type = content_type
        # Signed with the secrets in force when it was queued; its webhook-id is the same on
        # every attempt (a receiver dedupes on it) and differs for every task and status.
        self.secrets = tuple(secrets)
        self.msg_id = str(int.from_bytes(hashlib.sha256(f"{task_id}:{status}".encode()).digest()[:7], "big"))


class CallbackDispatcher:
    """Sends every watched task's status changes to its callback URL; keeps a delivery log.

    ``clock`` is called for the current clock at each tick (the backend may swap clocks).
    """

    def __init__(
        self,
        settings: CallbackSettings,
        clock: Callable[[], Clock],
        render: Renderer,
        *,
        secrets: Secrets = lambda account: (),
    ) -> None:
        self.settings = settings
        # Where the mock itself listens ((host, port), set by whoever serves it): a callback must
        # never reach it, or any client could reset the mock through its control API.
        self.listening: set[tuple[str, int]] = set()
        self._clock = clock
        self._render = render
        self._secrets = secrets
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._watched: dict[str, _Watch] = {}
        self._log: deque[DeliveryAttempt] = deque(maxlen=LOG_SIZE)
        self._listeners: list[Listener] = []
        # Work not finished yet: notifications queued or in flight, and a tick asked for.
        self._pending = 0
        self._dirty = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        # Used on the loop thread only: per task, notifications waiting, and its sender.
        self._lanes: dict[str, deque[_Notification]] = {}
        self._senders: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        running = self._thread is not None and self._thread.is_alive()
        return f"CallbackDispatcher(watched={len(self._watched)}, running={running})"

    # -- called from any thread ---------------------------------------------------------------

    def check(self, task: Task) -> None:
        """Refuse (400 / 1201) a task whose callback_url is not an http(s) URL at all, or that
        leads, once its name is resolved, to the mock itself."""
        url = callback_url(task)
        if url is None:
            return
        parsed = parse_callback_url(url)
        if not self.listening or not host_allowed(parsed.host, self.settings.allowed_hosts):
            return  # nothing to compare, or nothing will be sent
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        if any(is_listening_on(a, port, self.listening) for a in resolve(parsed.host, port)):
            raise invalid_value("callback_url points at the mock itself; callbacks go to your receiver")

    def watch(
        self, task: Task, namespace: str = DEFAULT_NAMESPACE, clock: Callable[[], Clock] | None = None
    ) -> None:
        """Follow ``task`` (of ``namespace``, whose clock ``clock`` gives) if it has a callback
        URL; its host must be allowed, else the notification is logged as skipped and nothing is
        sent. Returns at once."""
        url = self.allowed_url(task)
        if url is None:
            return
        with self._lock:
            self._watched[task.task_id] = _Watch(task, url, namespace, clock or self._clock)
        self.wake()

    def allowed_url(self, task: Task) -> str | None:
        """The task's callback URL if a callback may go there; a host that is not allowed is
        logged as skipped (None)."""
        url = callback_url(task)
        if url is None:
            return None
        try:
            host = parse_callback_url(url).host
        except KlingError:
            return None  # check() refuses these at create; nothing to send to.
        if not host_allowed(host, self.settings.allowed_hosts):
            logger.info("callback for task %s skipped: host %r is not allowed", task.task_id, host)
            error = f"host {host!r} is not in the allowed callback hosts"
            self._record(
                DeliveryAttempt(task.task_id, SUBMITTED, url, 0, "skipped", None, error, _wall_ms(), 0)
            )
            return None
        return url

    def wake(self) -> None:
        """Tick now: send whatever the clock has made due. Starts the thread if needed."""
        with self._lock:
            if not self._watched and self._thread is None:
                return
            self._dirty = True
            if self._thread is None:
                self._start()
            loop, event = self._loop, self._wake
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nothing to wake
                loop.call_soon_threadsafe(event.set)

    def start(self) -> None:
        """Called when the app starts serving. Here nothing to do: the thread starts with the
        first watched task, and no other process leaves work for this one."""

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every notification due by now has been delivered or given up.

        True when all is done, False on timeout. For tests: deliveries are asynchronous.
        """
        self.wake()
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._dirty or self._pending:
                if self._thread is None:
                    return not self._pending
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def deliveries(self, task_id: str | None = None) -> list[DeliveryAttempt]:
        """The delivery log, oldest first (optionally one task's)."""
        with self._lock:
            return [d for d in self._log if task_id is None or d.task_id == task_id]

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` with each attempt as it is logged, on the thread that logs it."""
        with self._lock:
            self._listeners.append(listener)

    def clear(self, namespace: str | None = None) -> None:
        """Forget every watched task (of ``namespace`` only, when given) and drop notifications
        not sent yet (the log stays)."""
        with self._lock:
            if namespace is None:
                self._watched.clear()
            else:
                for task_id in [t for t, w in self._watched.items() if w.namespace == namespace]:
                    del self._watched[task_id]
            loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._drop_lanes)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread, cancelling deliveries in flight. Idempotent; a later ``watch``
        starts afresh with no watched tasks."""
        with self._lock:
            thread, loop, stop = self._thread, self._loop, self._stop
            self._watched.clear()
        if thread is None or loop is None or stop is None:
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
        with self._idle:
            self._thread = self._loop = self._wake = self._stop = None
            self._pending, self._dirty = 0, False
            self._idle.notify_all()

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    # -- the loop thread -----------------------------------------------------------------------

    def _start(self) -> None:
        """Start the thread (caller holds the lock)."""
        self._loop = asyncio.new_event_loop()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(
            target=self._run, args=(self._loop,), name="mockkling-callbacks", daemon=True
        )
        self._thread.start()

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            loop.run_until_complete(self._main())
        except Exception:  # never let the thread die with a traceback on stderr
            logger.exception("callback dispatcher stopped on an error")
        finally:
            loop.close()

    async def _main(self) -> None:
        import httpx

        assert self._wake is not None and self._stop is not None
        wake, stop = self._wake, self._stop
        self._lanes, self._senders = {}, set()  # nothing carried over from a previous run
        semaphore = _HostLanes(PER_HOST_CONCURRENT)
        # Waiting for a free connection is not the receiver's fault: only its own answer is timed.
        timeout = httpx.Timeout(self.settings.timeout_seconds, pool=None)
        limits = httpx.Limits(max_connections=MAX_CONNECTIONS)
        # No proxies from the environment, no redirects: a request goes only where it was allowed.
        async with httpx.AsyncClient(
            timeout=timeout, limits=limits, trust_env=False, follow_redirects=False
        ) as client:
            stopping = asyncio.ensure_future(stop.wait())
            try:
                while not stop.is_set():
                    wake.clear()
                    sleep = self._tick(client, semaphore)
                    waking = asyncio.ensure_future(wake.wait())
                    await asyncio.wait({waking, stopping}, timeout=sleep, return_when=asyncio.FIRST_COMPLETED)
                    waking.cancel()
            finally:
                stopping.cancel()
                for sender in list(self._senders):
                    sender.cancel()
                await asyncio.gather(*self._senders, return_exceptions=True)

    def _tick(self, client: httpx.AsyncClient, semaphore: _HostLanes) -> float | None:
        """Queue every status reached since the last one notified; return seconds until the
        next transition is due (None: wait to be woken)."""
        with self._lock:
            self._dirty = False
            watched = list(self._watched.values())
        next_due: int | None = None
        wall_due = time.time_ns() // 1_000_000
        for watch in watched:
            task = watch.task
            clock = watch.clock()
            now = clock.now_ms()
            status = task.status(now)
            # Only forward: a task rescheduled later never re-announces a status.
            notified = RANK[watch.last] if watch.last is not None else -1
            reached = [s for s in lifecycle_path(status) if RANK[s] > notified]
            for each in reached:
                self._queue(client, semaphore, watch, each)
            if reached:
                watch.last = status
            if status in TERMINAL:
                with self._lock:
                    self._watched.pop(task.task_id, None)
                continue
            if isinstance(clock, ManualClock):
                continue  # it moves when told to, and wakes the dispatcher then
            # When it is due, on the wall clock (a system clock's time is the wall clock's).
            due = (task.processing_ms if now < task.processing_ms else task.done_ms) - now + wall_due
            next_due = due if next_due is None else min(next_due, due)
        with self._idle:
            self._idle.notify_all()
        if next_due is None:
            return None
        # A millisecond late rather than early, so the wake-up finds the transition passed.
        return min(max(next_due - wall_due, 0) / 1000 + 0.001, _MAX_SLEEP_SECONDS)

    def _queue(self, client: httpx.AsyncClient, semaphore: _HostLanes, watch: _Watch, status: str) -> None:
        task = watch.task
        try:
            body = orjson.dumps(self._render(task, status))
        except Exception:
            logger.exception("cannot render the callback body of task %s", task.task_id)
            return
        try:
            secrets = tuple(self._secrets(task.account))
        except Exception:
            logger.exception("cannot read the webhook secrets of task %s", task.task_id)
            secrets = ()
        kind = MODEL_API_CONTENT_TYPE if task.action in catalogue.MODEL_ROUTES else LEGACY_CONTENT_TYPE
        note = _Notification(task.task_id, status, watch.url, body, content_type=kind, secrets=secrets)
        with self._lock:
            self._pending += 1
        lane = self._lanes.get(task.task_id)
        if lane is not None:
            lane.append(note)
            return
        self._lanes[task.task_id] = deque([note])
        sender = asyncio.ensure_future(self._send_lane(client, semaphore, task.task_id))
        self._senders.add(sender)
        sender.add_done_callback(self._senders.discard)

    async def _send_lane(self, client: httpx.AsyncClient, semaphore: _HostLanes, task_id: str) -> None:
        """Deliver one task's notifications one after another, so they arrive in order."""
        lane = self._lanes[task_id]
        try:
            while lane:
                note = lane[0]
                try:
                    await self._deliver(client, semaphore, note)
                    self._sent(note)
                finally:
                    if lane and lane[0] is note:
                        lane.popleft()
                    self._done(1)
        finally:
            if self._lanes.get(task_id) is lane:
                del self._lanes[task_id]
            self._done(len(lane))
            lane.clear()
            self._lane_done(task_id)

    def _sent(self, note: _Notification) -> None:
        """A notification was delivered, or given up after its last attempt (a dispatcher
        that shares its work with other processes records it; here nothing to do)."""

    def _lane_done(self, task_id: str) -> None:
        """A task's lane has sent all it had (see :meth:`_sent`)."""

    async def _deliver(self, client: httpx.AsyncClient, semaphore: _HostLanes, note: _Notification) -> None:
        import httpx

        settings = self.settings
        for attempt in range(1, settings.attempts + 1):
            started, wall = time.monotonic(), _wall_ms()
            # Signed afresh on each attempt: webhook-timestamp is the time of sending.
            headers = {
                "Content-Type": note.content_type,
                "User-Agent": USER_AGENT,
                **webhooks.headers(note.secrets, note.msg_id, note.body),
            }
            http_status: int | None = None
            error: str | None = None
            async with semaphore(note.url):
                try:
                    target, extensions = await self._pinned(note.url, headers)
                    response = await client.post(
                        target, content=note.body, headers=headers, extensions=extensions
                    )
                    http_status = response.status_code
                    if not response.is_success:
                        error = f"HTTP {http_status}"
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            last = attempt == settings.attempts
            outcome: Outcome = "delivered" if error is None else ("failed" if last else "retrying")
            elapsed = round((time.monotonic() - started) * 1000)
            self._record(
                DeliveryAttempt(
                    note.task_id, note.status, note.url, attempt, outcome, http_status, error, wall, elapsed
                )
            )
            if error is None:
                return
            if last:
                logger.warning(
                    "callback %s for task %s to %s failed after %d attempts: %s",
                    note.status,
                    note.task_id,
                    _for_log(note.url),
                    attempt,
                    error,
                )
                return
            await asyncio.sleep(settings.backoff_seconds * 2 ** (attempt - 1))

    async def _pinned(self, url: str, headers: dict[str, str]) -> tuple[httpx.URL, dict[str, Any]]:
        """The URL to send to, with its host replaced by the address it resolved to (checked
        against the allowed hosts and the mock's own sockets, so no later DNS answer can lead
        elsewhere); ``Host`` and the TLS server name keep the original name."""
        import httpx

        parsed = httpx.URL(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        loop = asyncio.get_running_loop()
        addresses = await loop.run_in_executor(None, resolve, parsed.host, port)
        if not addresses:
            raise httpx.ConnectError(f"{parsed.host} does not resolve")
        if any(is_listening_on(a, port, self.listening) for a in addresses):
            raise httpx.ConnectError(f"{parsed.host}:{port} is the mock itself; a callback never goes there")
        headers["Host"] = parsed.netloc.decode("ascii")
        return parsed.copy_with(host=addresses[0]), {"sni_hostname": parsed.host}

    def _drop_lanes(self) -> None:
        for lane in self._lanes.values():
            # Keep the head: its sender is delivering it and will count it done.
            dropped = len(lane) - 1 if lane else 0
            for _ in range(dropped):
                lane.pop()
            self._done(dropped)

    def _done(self, count: int) -> None:
        if not count:
            return
        with self._idle:
            self._pending = max(0, self._pending - count)
            self._idle.notify_all()

    def _record(self, attempt: DeliveryAttempt) -> None:
        with self._lock:
            self._log.append(attempt)
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(attempt)
            except Exception:
                logger.exception("callback log listener failed")


class _HostLanes:
    """A semaphore per receiver host (used on the loop thread only)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._lanes: dict[str, asyncio.Semaphore] = {}

    def __call__(self, url: str) -> asyncio.Semaphore:
        host = urlsplit(url).netloc.lower()
        lane = self._lanes.get(host)
        if lane is None:
            lane = self._lanes[host] = asyncio.Semaphore(self._size)
        return lane


def callback_url(task: Task) -> str | None:
    """The task's callback URL, if it was given one."""
    url = task.extra.get("callback_url") if task.extra else None
    return url if isinstance(url, str) and url else None


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000
