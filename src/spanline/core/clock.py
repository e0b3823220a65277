"""The time source for span start and end times.

Spans read :data:`now_ns` through this module's global, so the testing kit can swap
in a deterministic clock with :func:`set_clock` without touching private state.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["now_ns", "set_clock"]

now_ns: Callable[[], int] = time.time_ns
"""Nanoseconds since the Unix epoch (``time.time_ns`` unless replaced)."""


def set_clock(clock: Callable[[], int] | None) -> None:
    """Replace the clock used for new spans; ``None`` restores ``time.time_ns``."""
    global now_ns
    now_ns = clock if clock is not None else time.time_ns
