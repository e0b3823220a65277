"""Deterministic ids and clock, and a full reset of spanline's process state."""

from __future__ import annotations

import threading

from spanline import _log
from spanline.core import clock, ids
from spanline.core.config import reset_settings
from spanline.core.pipeline import PIPELINE

__all__ = ["FakeClock", "SequentialIds", "reset_all"]


class SequentialIds:
    """An id source returning ``start, start + 1, …`` (thread-safe).

    ``ids.set_random_source(SequentialIds())`` makes every trace and span id in a test
    predictable.
    """

    def __init__(self, start: int = 1) -> None:
        if start <= 0:
            raise ValueError("ids start at 1 or more (zero is not a valid W3C id)")
        self._next = start
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            value = self._next
            self._next += 1
        return value


class FakeClock:
    """A clock that advances ``step_ns`` on every reading (thread-safe).

    Defaults: starts at 2026-01-01T00:00:00Z and steps one millisecond, so every span
    in a test has an exact, repeatable duration.
    """

    def __init__(self, start_ns: int = 1_767_225_600_000_000_000, step_ns: int = 1_000_000) -> None:
        if start_ns <= 0 or step_ns < 0:
            raise ValueError(
                "FakeClock needs start_ns > 0 (0 means 'not started') and step_ns >= 0"
            )
        self.now = start_ns
        self.step_ns = step_ns
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            value = self.now
            self.now += self.step_ns
        return value

    def advance(self, ns: int) -> None:
        """Jump forward (simulate slow work)."""
        with self._lock:
            self.now += ns


def reset_all() -> None:
    """Put spanline back to its just-imported state: settings from the environment,
    no processors, no retained trees or counters, real ids and clock."""
    PIPELINE.reset()
    reset_settings()
    ids.set_random_source(None)
    clock.set_clock(None)
    _log.reset()
