"""The dashboard at ``/__mockkling/``: tasks, requests, rules, limits and the clock in a browser.

The page is three static files shipped in the package (mockkling/dashboard/: no CDN, no build
step). It reads ``/__mockkling/state``: JSON by default, or with ``Accept: text/event-stream``
a stream of server-sent events that looks at the backend a few times a second and sends only
what changed. Nothing runs for it while no page is open: the request layer does no work for
the dashboard, whose journal view reads the ring the journal keeps of every request anyway.
The page acts through the control API, under the same access rules (``check_access``), and
plays result files through a mirror of ``/media/`` under ``/__mockkling/media/``, so that
what the dashboard fetches never enters the journal of what clients did.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import cache
from pathlib import Path
from typing import Any, Final

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route, Router
from starlette.types import Receive, Scope, Send

from .. import catalogue
from ..backend import Backend, is_record
from ..jsonio import JSONResponse
from ..tasks import SUCCEED, Task
from ..views import result_view
from . import media
from .control import FATE_RULES, FAULT_RULES, PREFIX, check_access, clock_view, limits_view, task_detail

PAGE_DIR: Final = Path(__file__).resolve().parent.parent / "dashboard"
# The page's files: URL path -> (file, media type).
FILES: Final = {
    f"{PREFIX}/": ("index.html", "text/html; charset=utf-8"),
    f"{PREFIX}/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
    f"{PREFIX}/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
}
# Everything the page loads comes from this server; it may not be framed (a reset button).
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; media-src 'self'; object-src 'none';"
        " base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# Result URLs the page shows: /__mockkling/media/..., the mirror of /media/.
MEDIA_BASE: Final = PREFIX
# The most tasks and journal entries one look sends (the newest).
TASKS_SHOWN: Final = 200
JOURNAL_SHOWN: Final = 200
# How often an open stream looks at the backend: a change shows within this.
TICK_SECONDS: Final = 0.25
# A comment line this often keeps proxies and the browser from timing an idle stream out.
HEARTBEAT_SECONDS: Final = 15.0
# A stream ends after this long and the browser reconnects (in RETRY_MS), with a full snapshot:
# it bounds how long a server that cannot say it is stopping waits for an open page.
STREAM_SECONDS: Final = 60.0
RETRY_MS: Final = 1000


# -- what the page shows ----------------------------------------------------------------------


def task_card(backend: Backend, task: Task, now_ms: int) -> dict[str, Any]:
    """A task as the page shows it: the control API's view, whether it is a record, and its
    result once it has succeeded (``views.result_view``: every result kind of its endpoint, URLs
    on the media mirror)."""
    card = task_detail(backend, task, now_ms)
    record = is_record(task)
    card["record"] = record
    succeeded = card["status"] == SUCCEED and not record
    card["result"] = result_view(task, MEDIA_BASE) if succeeded else None
    return card


def endpoints_view() -> dict[str, Any]:
    """Each task endpoint's path and result kinds, for the page's headings."""
    return {
        action: {"path": endpoint.path, "results": list(endpoint.results)}
        for action, endpoint in catalogue.ENDPOINTS.items()
    }


def faults_view(backend: Backend) -> dict[str, Any]:
    """The fault rules as ``GET /__mockkling/faults`` answers them."""
    rules = FAULT_RULES.rules(backend)
    return {**FAULT_RULES.extra(rules), "faults": [r.to_dict() for r in rules]}


def fates_view(backend: Backend) -> dict[str, Any]:
    """The fate rules as ``GET /__mockkling/fates`` answers them."""
    return {"fates": [r.to_dict() for r in FATE_RULES.rules(backend)]}


def _made_of(task: Task, now_ms: int) -> tuple[Any, ...]:
    """What a task's card shows, read without building it: its status now, its schedule, how it
    ends, and a copy of its details (a record's, or a fate's error code, may change in place)."""
    extra = dict(task.extra) if task.extra else None
    return (task.status(now_ms), task.processing_ms, task.done_ms, task.outcome, task.status_msg, extra)


# Sections compared whole on every look: small, and cheap to build.
_WHOLE: Final[dict[str, Callable[[Backend], dict[str, Any]]]] = {
    "faults": faults_view,
    "fates": fates_view,
    "limits": limits_view,
}


class Watcher:
    """What one page has been sent, so that each look (:meth:`changes`) sends only what
    changed since: sections, tasks and journal entries. Its first look sends everything."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.started = False
        self.clock_key: tuple[bool, int | None] | None = None
        self.sections: dict[str, bytes] = {}
        # task_id -> (what its card was made of, the card's JSON)
        self.cards: dict[str, tuple[tuple[Any, ...], bytes]] = {}
        self.task_ids: list[str] = []
        self.task_count = -1
        self.journal_seen = backend.journal
        self.journal_after = 0  # the newest entry sent
        self.journal_first: int | None = -1  # the oldest entry held, as last sent (-1: never sent)

    def changes(self) -> list[tuple[str, bytes]]:
        """(section, JSON) for each section that changed since the last look."""
        backend = self.backend
        out: list[tuple[str, bytes]] = []
        if not self.started:
            self.started = True
            out.append(("endpoints", orjson.dumps(endpoints_view())))
        clock = clock_view(backend)
        # A system clock moves all the time: the page runs it on; a manual one is sent each move.
        key = (clock["manual"], clock["now_ms"] if clock["manual"] else None)
        if key != self.clock_key:
            self.clock_key = key
            out.append(("clock", orjson.dumps(clock)))
        tasks = self._tasks(clock["now_ms"])
        if tasks is not None:
            out.append(("tasks", tasks))
        journal = self._journal()
        if journal is not None:
            out.append(("journal", journal))
        for name, view in _WHOLE.items():
            data = orjson.dumps(view(backend))
            if self.sections.get(name) != data:
                self.sections[name] = data
                out.append((name, data))
        return out

    def _tasks(self, now_ms: int) -> bytes | None:
        """The newest tasks: their ids in order, and the cards that are new or changed."""
        backend = self.backend
        shown = backend.tasks.recent(TASKS_SHOWN)
        count = len(backend.tasks) if len(shown) == TASKS_SHOWN else len(shown)
        cards: dict[str, tuple[tuple[Any, ...], bytes]] = {}
        changed: list[bytes] = []
        for task in shown:
            # A card is built again only when what it is made of has changed (a tenth the cost).
            made_of = _made_of(task, now_ms)
            seen = self.cards.get(task.task_id)
            if seen is not None and seen[0] == made_of:
                cards[task.task_id] = seen
                continue
            data = orjson.dumps(task_card(backend, task, now_ms))
            cards[task.task_id] = (made_of, data)
            if seen is None or seen[1] != data:
                changed.append(data)
        ids = [task.task_id for task in shown]
        if not changed and ids == self.task_ids and count == self.task_count:
            return None
        self.cards, self.task_ids, self.task_count = cards, ids, count
        head = orjson.dumps({"count": count, "ids": ids})
        # The cards are already JSON: spliced in, not decoded and encoded again.
        return head[:-1] + b',"tasks":[' + b",".join(changed) + b"]}"

    def _journal(self) -> bytes | None:
        """Entries recorded since the last look (the newest JOURNAL_SHOWN), and the id of the
        oldest one the journal still holds: the page drops the rows below it (cleared, rotated)."""
        journal = self.backend.journal
        if journal is not self.journal_seen:  # a journal put in place of another numbers anew
            self.journal_seen, self.journal_after, self.journal_first = journal, 0, -1
        first, entries = journal.newest(JOURNAL_SHOWN, after=self.journal_after)
        if not entries and first == self.journal_first:
            return None
        if entries:
            self.journal_after = entries[-1].id
        self.journal_first = first
        return orjson.dumps({"first_id": first, "entries": [e.summary() for e in entries]})

    def snapshot(self) -> dict[str, Any]:
        """Every section as one JSON object (a first look)."""
        return {name: orjson.loads(data) for name, data in self.changes()}


# -- the stream ------------------------------------------------------------------------------


def _server_closing(receive: Receive, kept_alive: bool) -> bool:
    """Whether the server asked this connection to close. uvicorn, shutting down, marks each
    request in progress not to be kept alive (its ``keep_alive`` turns False), and then waits
    for them to finish: a stream that kept going would hold the shutdown up. Other servers
    say nothing; STREAM_SECONDS bounds the wait there."""
    cycle = getattr(receive, "__self__", None)
    return kept_alive and getattr(cycle, "keep_alive", True) is False


async def _events(backend: Backend, receive: Receive) -> AsyncIterator[bytes]:
    """The stream: everything at first, then what changed, until the page goes away (Starlette
    ends it when the client disconnects), the server stops, or STREAM_SECONDS have passed."""
    watcher = Watcher(backend)
    kept_alive = getattr(getattr(receive, "__self__", None), "keep_alive", False) is True
    yield f"retry: {RETRY_MS}\n\n".encode()
    started = last_sent = time.monotonic()
    while True:
        events = b"".join(
            b"event: %s\ndata: %s\n\n" % (name.encode(), data) for name, data in watcher.changes()
        )
        now = time.monotonic()
        if events:
            yield events
            last_sent = now
        elif now - last_sent >= HEARTBEAT_SECONDS:
            yield b": still here\n\n"
            last_sent = now
        if now - started >= STREAM_SECONDS or _server_closing(receive, kept_alive):
            return
        await anyio.sleep(TICK_SECONDS)


# -- the page's files and the media mirror ------------------------------------------------------


@cache
def _file(name: str) -> tuple[bytes, str]:
    """A page file's bytes and ETag, read once."""
    body = (PAGE_DIR / name).read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


class MediaMirror:
    """``/__mockkling/media/{path}``: the result file ``/media/{path}`` serves, for the page.
    Under the control prefix the request layer leaves it out of the journal, and it is served
    by the media routes themselves, so every result kind they serve is mirrored."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.router = Router(routes=media.routes(backend))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        check_access(self.backend, Request(scope, receive))
        path = "/media/" + scope["path_params"]["path"]
        inner = {**scope, "path": path, "raw_path": path.encode(), "root_path": ""}
        # Without the app's handlers in the inner scope, a refusal there (a file gone) rises to
        # this route's own and is answered as the control API answers, not as a CDN's 404.
        inner.pop("starlette.exception_handlers", None)
        await self.router(inner, receive, send)


def routes(backend: Backend) -> list[BaseRoute]:
    def page_file(name: str, media_type: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            check_access(backend, request)
            body, etag = _file(name)
            # Revalidated on every load (the files change with the package); 304 when unchanged.
            headers = {"ETag": etag, "Cache-Control": "no-cache", **SECURITY_HEADERS}
            if etag in request.headers.get("if-none-match", ""):
                return Response(status_code=304, headers=headers)
            return Response(body, media_type=media_type, headers=headers)

        return endpoint

    async def state(request: Request) -> Response:
        check_access(backend, request)
        if "text/event-stream" in request.headers.get("accept", ""):
            return StreamingResponse(
                _events(backend, request.receive),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
            )
        return JSONResponse(Watcher(backend).snapshot())

    return [
        *(
            Route(path, page_file(name, media_type), methods=["GET"])
            for path, (name, media_type) in FILES.items()
        ),
        Route(f"{PREFIX}/state", state, methods=["GET"]),
        Route(f"{PREFIX}/media/{{path:path}}", MediaMirror(backend), methods=["GET"]),
        # The page's own files are relative to /__mockkling/: send the bare prefix there.
        Route(PREFIX, lambda request: RedirectResponse(f"{PREFIX}/", status_code=307), methods=["GET"]),
    ]
