"""Sleeping on the mock's clock: while a test's mock runs on a manual clock, ``time.sleep`` and
``asyncio.sleep`` called by the code under test move that clock forward instead of waiting, so a
client that polls every 5 s for a 5-minute task finishes in milliseconds.

The mock's own threads (the callback sender, live servers: threads named ``mockkling-...``)
and its fault delays (``anyio.sleep``) keep real sleeps, and so does whatever captured
``time.sleep`` or ``asyncio.sleep`` before the patch (``from time import sleep`` at import
time). A client that waits on a wall-clock deadline (``time.monotonic()``) for a task a fate
holds forever would spin: give such a test ``sleep="real"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Final, TypeVar
from unittest import mock

# anyio's asyncio backend binds asyncio.sleep when first imported: imported here, before any
# patch, it keeps the real one, so anyio.sleep (the mock's fault delays) stays real time, inside
# the block and after it.
import anyio._backends._asyncio  # noqa: F401

# Threads of the mock itself are named so; their sleeps are never virtual.
THREAD_PREFIX: Final = "mockkling"
T = TypeVar("T")

_real_sleep = time.sleep
_real_async_sleep = asyncio.sleep


def _mock_thread() -> bool:
    return threading.current_thread().name.startswith(THREAD_PREFIX)


@contextlib.contextmanager
def virtual_sleep(advance: Callable[[float], Any]) -> Iterator[None]:
    """Within the block, ``time.sleep(s)`` and ``asyncio.sleep(s)`` call ``advance(s)`` (a manual
    clock's advance) and return at once; ``asyncio.sleep`` still yields to the event loop."""

    def sleep(seconds: float) -> None:
        if seconds > 0 and not _mock_thread():
            advance(seconds)
            seconds = 0
        _real_sleep(seconds)  # a negative value still raises ValueError, as it should

    async def async_sleep(delay: float, result: T | None = None) -> T | None:
        if delay > 0 and not _mock_thread():
            advance(delay)
            delay = 0
        return await _real_async_sleep(delay, result)

    with mock.patch.object(time, "sleep", sleep), mock.patch.object(asyncio, "sleep", async_sleep):
        yield
