"""Clocks: every time the mock reads comes from one of these, so a test can control it.

Times are integer milliseconds since the epoch, the unit the Kling API uses on the wire.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """The current time in milliseconds since the epoch."""
        ...


class SystemClock:
    """Wall-clock time: what a standalone server uses."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that moves only when told to, so a task lifecycle runs without sleeping.

    It starts at the wall-clock time of its creation (so timestamps look real) unless given
    ``start_ms``. It never moves backwards: task statuses are derived from it, and a status
    must never regress.
    """

    def __init__(self, start_ms: int | None = None) -> None:
        self._now = time.time_ns() // 1_000_000 if start_ms is None else int(start_ms)
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        return self._now

    def advance(self, seconds: float = 0.0, *, ms: int = 0) -> int:
        """Move forward by ``seconds`` (and/or ``ms``); return the new time in ms."""
        delta = round(seconds * 1000) + int(ms)
        if delta < 0:
            raise ValueError("a ManualClock only moves forward")
        with self._lock:
            self._now += delta
            return self._now

    def set(self, now_ms: int) -> int:
        """Jump to ``now_ms``, which must not be in this clock's past."""
        with self._lock:
            if now_ms < self._now:
                raise ValueError("a ManualClock only moves forward")
            self._now = int(now_ms)
            return self._now

    def __repr__(self) -> str:
        return f"ManualClock(now_ms={self._now})"
