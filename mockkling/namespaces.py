"""Namespaces: several independent mocks in one server, chosen per request.

A request with ``X-Mockkling-Namespace: NAME`` sees only that namespace's tasks, rules, journal,
limits and clock; a request without it sees the default namespace. The request layer reads the
header and sets :data:`CURRENT` for the length of the request, so the Backend (and everything
it hands out) answers for that namespace without a route having to pass it along; Python code
chooses one with :func:`using`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Final

HEADER: Final = "X-Mockkling-Namespace"
HEADER_BYTES: Final = HEADER.lower().encode()
DEFAULT: Final = "default"
# Letters, digits, '.', '_' and '-', up to 64: safe in a Redis key, a log line and a URL.
_VALID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
RULE: Final = "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"

CURRENT: ContextVar[str] = ContextVar("mockkling_namespace", default=DEFAULT)


class NamespaceError(ValueError):
    """A namespace name that cannot be used; the message says why."""


def check(name: str) -> str:
    """``name`` if it is a valid namespace name; NamespaceError otherwise."""
    if not isinstance(name, str) or _VALID.fullmatch(name) is None:
        shown = name[:80] if isinstance(name, str) else name
        raise NamespaceError(f"{HEADER} must be {RULE}, not {shown!r}")
    return name


def current() -> str:
    """The namespace the running request (or :func:`using` block) is in."""
    return CURRENT.get()


@contextlib.contextmanager
def using(name: str) -> Iterator[str]:
    """Act in namespace ``name`` inside the block (tests, scripts): ``with using("ci-42"): ...``."""
    token = CURRENT.set(check(name))
    try:
        yield name
    finally:
        CURRENT.reset(token)
