"""The request journal: what clients sent and what they got, for tests to assert on.

Every request outside the control API is recorded with its method, path, query, headers,
body (the first ``body_bytes`` bytes), the account it acted for, the time on the backend's
clock, and the answer: its status, headers and, when it is text (JSON, YAML, plain text), the
first ``body_bytes`` bytes of its body. Secrets never leave it: every way of reading an entry
masks credential headers, query parameters and body members. The journal is a bounded ring
(the oldest entries go first), and recording keeps the raw bytes the server handed over, so
recording costs little per request; decoding and masking happen when someone reads an entry
(masking on record cost much of the journal's time: docs/benchmarks.md).
"""

from __future__ import annotations

import bisect
import fnmatch
import itertools
import marshal
import re
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple
from urllib.parse import unquote_plus

import orjson

MASK = "***"
DEFAULT_SIZE = 1000
DEFAULT_BODY_BYTES = 8192
# Header bytes kept per entry: real clients send well under 1 KB; a client sending megabytes of
# headers must not make each entry weigh as much.
DEFAULT_HEADER_BYTES = 4096
# Entries are packed in marshal's format 2: the default (4) looks every object up to share
# repeats, which an entry of a dozen fields never has, and packs one in twice the time
# (docs/benchmarks.md). Any version reads back the same, but Journal._append relies on this
# one: below 3 nothing is shared, so every header byte is in the packed entry.
_MARSHAL_VERSION = 2

# A header or query parameter whose name contains one of these carries a credential.
_SECRET_WORDS = ("auth", "token", "key", "secret", "password", "cookie", "signature", "session")
_SECRET_WORDS_BYTES = tuple(w.encode() for w in _SECRET_WORDS)
_NAME_CACHE_SIZE = 1024


class _SecretNames(dict[bytes, bool]):
    """Header name -> carries a credential; a hit is one C-level dict lookup."""

    def __missing__(self, name: bytes) -> bool:
        secret = any(word in name for word in _SECRET_WORDS_BYTES)
        if len(self) < _NAME_CACHE_SIZE:  # clients choose header names: keep the cache bounded
            self[name] = secret
        return secret


_secret_names = _SecretNames()


def is_secret_name(name: bytes) -> bool:
    """Whether a (lower-case) header or parameter name carries a credential."""
    return _secret_names[name]


def _mask_value(value: bytes) -> bytes:
    # Keep the scheme ("Bearer ***") so a reader still sees how the client authenticated.
    scheme, sep, _rest = value.partition(b" ")
    if sep and scheme.isalpha() and len(scheme) <= 16:
        return scheme + b" " + MASK.encode()
    return MASK.encode()


def mask_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    secret = _secret_names
    return [(name, _mask_value(value)) if secret[name] else (name, value) for name, value in headers]


def mask_query(query: bytes) -> bytes:
    """The query string with the values of credential parameters masked, everything else as
    the client sent it (cheap when no name can be one)."""
    lowered = query.lower()
    # A name may be percent-encoded ("%74oken"): then only decoding it tells.
    if b"%" not in query and not any(word in lowered for word in _SECRET_WORDS_BYTES):
        return query
    pairs = []
    for pair in query.split(b"&"):
        name, sep, _value = pair.partition(b"=")
        decoded = unquote_plus(name.decode("latin-1")).lower().encode("latin-1", "replace")
        pairs.append(name + b"=" + MASK.encode() if sep and is_secret_name(decoded) else pair)
    return b"&".join(pairs)


# In a body: a JSON member whose name says it holds a credential, by the same words as headers,
# but for two names of the Kling bodies that hold none: session_id (an id) and "key" (the field a
# /tasks filter names); and URL query parameters (a callback_url's ?token=...), by the query
# rule. Patterns, not parsing: a truncated body is masked too.
_NOT_SECRET_MEMBERS = (b"session", b"key")
_JSON_MEMBER = re.compile(rb'"((?:[^"\\]|\\.){1,256})"(\s*:\s*)"(?:[^"\\]|\\.)*"')
_URL_PARAMETER = re.compile(rb"(\A|[?&])([^=&\"\s#?\\]{1,256})=([^&\"\s#\\]*)")


def _unescaped(name: bytes) -> bytes:
    """A name as JSON reads it (\\u0074oken is token), lower-case; as written if it is no JSON."""
    try:
        text = orjson.loads(b'"' + name + b'"') if b"\\" in name else name.decode("utf-8")
    except (orjson.JSONDecodeError, UnicodeDecodeError):
        return name.lower()
    return str(text).lower().encode("utf-8", "replace")


def mask_body(body: bytes) -> bytes:
    """The body with credentials masked: JSON members named like one, and credential query
    parameters of the URLs in it; everything else as the client sent it (cheap when no name
    can be one, even escaped)."""
    lowered = body.lower()
    if b"%" not in body and b"\\u" not in body and not any(word in lowered for word in _SECRET_WORDS_BYTES):
        return body

    def member(match: re.Match[bytes]) -> bytes:
        name = _unescaped(match.group(1))
        if is_secret_name(name) and not name.startswith(_NOT_SECRET_MEMBERS):
            return b'"' + match.group(1) + b'"' + match.group(2) + b'"' + MASK.encode() + b'"'
        return match.group(0)

    def parameter(match: re.Match[bytes]) -> bytes:
        name = unquote_plus(_unescaped(match.group(2)).decode("utf-8", "replace")).lower()
        if is_secret_name(name.encode("utf-8", "replace")):
            return match.group(1) + match.group(2) + b"=" + MASK.encode()
        return match.group(0)

    return _URL_PARAMETER.sub(parameter, _JSON_MEMBER.sub(member, body))


def _cut(headers: tuple[tuple[bytes, bytes], ...], room: int) -> tuple[tuple[bytes, bytes], ...]:
    """The headers that fit in ``room`` bytes: the one that does not fit is cut, the rest left out."""
    kept = []
    for name, value in headers:
        if len(name) + len(value) > room:
            kept.append((name, value[: max(0, room - len(name))] + b"..."))
            break
        kept.append((name, value))
        room -= len(name) + len(value)
    return tuple(kept)


class Recorded(NamedTuple):
    """One request as the request layer hands it to :meth:`Journal.record`: raw bytes as the
    server gave them; decoding and masking wait until someone reads the entry."""

    time: int
    method: str
    path: str
    query: bytes
    headers: Iterable[tuple[bytes, bytes]]
    body: bytes
    body_size: int
    status: int | None
    account: str | None
    fault: int | None = None
    duration_ms: float = 0.0
    # The answer: its headers, the first body bytes kept (text answers only), its full size.
    response_headers: Iterable[tuple[bytes, bytes]] = ()
    response_body: bytes = b""
    response_size: int = 0


class JournalEntry:
    """One recorded request and the status it got; fields decode on first read."""

    __slots__ = (
        "_body",
        "_headers",
        "_query",
        "_response_body",
        "_response_headers",
        "account",
        "body_size",
        "duration_ms",
        "fault",
        "id",
        "method",
        "path",
        "response_size",
        "status",
        "time",
    )

    def __init__(self, id: int, recorded: Recorded) -> None:
        self.id = id
        (
            self.time,
            self.method,
            self.path,
            self._query,
            headers,
            self._body,
            self.body_size,
            self.status,
            self.account,
            self.fault,
            self.duration_ms,
            response_headers,
            self._response_body,
            self.response_size,
        ) = recorded
        self._headers = tuple(headers)
        self._response_headers = tuple(response_headers)

    @property
    def query(self) -> str:
        """The query string, credential parameters masked."""
        return mask_query(self._query).decode("latin-1") if self._query else ""

    @property
    def headers(self) -> dict[str, str]:
        """Lower-case names; repeated headers joined with ", "; credentials masked."""
        return _header_dict(self._headers)

    @property
    def body(self) -> str:
        """The body as text (the first ``body_bytes`` bytes; see ``body_truncated``), credentials
        masked."""
        return mask_body(self._body).decode("utf-8", "replace")

    @property
    def body_truncated(self) -> bool:
        return len(self._body) < self.body_size

    def json(self) -> Any:
        """The body parsed as JSON (ValueError if it is not JSON or was truncated)."""
        if self.body_truncated:
            raise ValueError(f"body of request {self.id} was truncated to {len(self._body)} bytes")
        return orjson.loads(mask_body(self._body))

    @property
    def response_headers(self) -> dict[str, str]:
        """The answer's headers, as :attr:`headers` shows the request's."""
        return _header_dict(self._response_headers)

    @property
    def response_body(self) -> str:
        """The answer's body as text: its first ``body_bytes`` bytes when it is text, else ""."""
        return self._response_body.decode("utf-8", "replace")

    @property
    def response_truncated(self) -> bool:
        return len(self._response_body) < self.response_size

    def response_json(self) -> Any:
        """The answer's body parsed as JSON (ValueError if it is not JSON or was not kept whole)."""
        if self.response_truncated:
            raise ValueError(f"answer to request {self.id} was kept to {len(self._response_body)} bytes")
        return orjson.loads(self._response_body)

    def summary(self) -> dict[str, Any]:
        """The entry without headers and bodies: a line of a list (the dashboard's journal)."""
        return {
            "id": self.id,
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "account": self.account,
            "fault": self.fault,
            "duration_ms": round(self.duration_ms, 3),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": self.body,
            "body_size": self.body_size,
            "body_truncated": self.body_truncated,
            "status": self.status,
            "account": self.account,
            "fault": self.fault,
            "duration_ms": round(self.duration_ms, 3),
            "response": {
                "headers": self.response_headers,
                "body": self.response_body,
                "body_size": self.response_size,
                "body_truncated": self.response_truncated,
            },
        }

    def __repr__(self) -> str:
        return f"JournalEntry(id={self.id}, {self.method} {self.path} -> {self.status})"


def _pack(entry: Recorded) -> bytes:
    row: tuple[Any, ...] = tuple(entry)  # marshal takes a plain tuple, and lists of tuples
    return marshal.dumps(row, _MARSHAL_VERSION)


class Journal:
    """A bounded, filterable record of requests; ``size`` 0 switches recording off."""

    def __init__(
        self,
        size: int = DEFAULT_SIZE,
        body_bytes: int = DEFAULT_BODY_BYTES,
        header_bytes: int = DEFAULT_HEADER_BYTES,
    ) -> None:
        if size < 0 or body_bytes < 0 or header_bytes < 0:
            raise ValueError("journal size, body_bytes and header_bytes must be >= 0")
        self.size = size
        self.body_bytes = body_bytes
        self.header_bytes = header_bytes
        self._entries: deque[tuple[int, bytes]] = deque(maxlen=size or 1)
        # No lock: appending to, copying and clearing a deque are each atomic under the GIL.
        self._ids = itertools.count(1)

    @property
    def enabled(self) -> bool:
        return self.size > 0

    def record(self, request: Recorded) -> None:
        """Add one request; the oldest entry goes when full. Its headers are kept to
        ``header_bytes`` and its bodies to ``body_bytes``; an entry object is built, and masked,
        only when someone reads it."""
        if self.size:
            if not isinstance(request.headers, (list, tuple)):  # any other iterable: read it once
                request = request._replace(headers=tuple(request.headers))
            keep = self.body_bytes
            if len(request.body) > keep or len(request.response_body) > keep:
                request = self._bounded(request)
            self._append(request)  # which keeps the headers to header_bytes

    def _headers_over(self, request: Recorded) -> bool:
        return sum(map(len, itertools.chain.from_iterable(request.headers))) > self.header_bytes

    def _bounded(self, request: Recorded) -> Recorded:
        """``request`` with its headers and bodies cut to what the journal keeps."""
        headers = tuple(request.headers)
        if self._headers_over(request):
            headers = _cut(headers, self.header_bytes)
        keep = self.body_bytes
        return request._replace(
            headers=headers, body=request.body[:keep], response_body=request.response_body[:keep]
        )

    def _append(self, kept: Recorded) -> None:
        """Keep one entry, numbered (a journal shared by processes keeps it in their store),
        its headers cut to ``header_bytes``.

        In one bytes object (marshal): a thousand entries of a dozen small objects each would
        keep the allocator's small blocks cycling through a megabyte nobody reads, and every
        request after would find them cold; one block per entry, mostly over the small-object
        size, leaves the small blocks to the requests. The headers are in the packed entry, so
        they are counted only when it is larger than ``header_bytes`` (marshal's format 2 shares
        nothing, so every header byte is in it): nearly no request's is, and counting every
        request's cost a query 0.4 to 6% of its server CPU over HTTP (docs/benchmarks.md)."""
        blob = _pack(kept)
        if len(blob) > self.header_bytes and self._headers_over(kept):
            blob = _pack(self._bounded(kept))
        self._entries.append((next(self._ids), blob))

    def _rows(self) -> list[tuple[int, Recorded]]:
        """Every entry held, oldest first, with its number: what every reader reads."""
        return [(number, Recorded(*marshal.loads(blob))) for number, blob in list(self._entries)]

    def find(
        self,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        account: str | None = None,
        since: int | None = None,
        limit: int | None = None,
    ) -> list[JournalEntry]:
        """Entries matching every given filter, oldest first; ``limit`` keeps the newest ones.

        ``path`` is a glob (``*`` matches anything, ``/`` included); ``since`` is a time in ms
        on the backend's clock (inclusive).
        """
        wanted_method = method.upper() if method else None
        out = [
            e
            for e in self
            if (wanted_method is None or e.method == wanted_method)
            and (path is None or fnmatch.fnmatchcase(e.path, path))
            and (status is None or e.status == status)
            and (account is None or e.account == account)
            and (since is None or e.time >= since)
        ]
        if limit is not None:
            out = out[-limit:] if limit > 0 else []
        return out

    def count(self, **filters: Any) -> int:
        return len(self.find(**filters))

    def assert_requested(self, count: int | None = None, **filters: Any) -> list[JournalEntry]:
        """The entries matching ``filters`` (see :meth:`find`); AssertionError, listing what
        was recorded, when there are none, or not exactly ``count``."""
        found = self.find(**filters)
        if (len(found) != count) if count is not None else not found:
            wanted = " ".join(f"{k}={v!r}" for k, v in filters.items() if v is not None) or "any request"
            expected = "at least one" if count is None else str(count)
            seen = [f"  {e.method} {e.path}{'?' + e.query if e.query else ''} -> {e.status}" for e in self]
            listing = "\n".join(seen[-20:]) or "  (nothing)"
            raise AssertionError(
                f"expected {expected} request(s) matching {wanted}, found {len(found)}; recorded:\n{listing}"
            )
        return found

    def last(self) -> JournalEntry | None:
        rows = self._rows()
        return JournalEntry(*rows[-1]) if rows else None

    def get(self, entry_id: int) -> JournalEntry | None:
        """The entry numbered ``entry_id``, while the journal still holds it."""
        rows = self._rows()
        # Ids rise along the ring: find it by bisection.
        at = bisect.bisect_left(rows, entry_id, key=lambda row: row[0])
        return JournalEntry(*rows[at]) if at < len(rows) and rows[at][0] == entry_id else None

    def newest(self, limit: int, *, after: int = 0) -> tuple[int | None, list[JournalEntry]]:
        """The id of the oldest entry held (None when empty), and the newest ``limit`` entries
        numbered above ``after``, oldest first: what a watcher has not seen yet, in one copy."""
        rows = self._rows()
        start = bisect.bisect_right(rows, after, key=lambda row: row[0])
        newest = [JournalEntry(*row) for row in rows[max(start, len(rows) - limit) :]]
        return (rows[0][0] if rows else None), newest

    def clear(self) -> None:
        self._entries.clear()

    def __iter__(self) -> Iterator[JournalEntry]:
        return (JournalEntry(*row) for row in self._rows())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Journal(entries={len(self)}, size={self.size})"


def _header_dict(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Lower-case names; repeated headers joined with ", "; credentials masked."""
    out: dict[str, str] = {}
    # An app may send an answer's header names in any case: lower them before the mask looks.
    for raw_name, raw_value in mask_headers((name.lower(), value) for name, value in headers):
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out
