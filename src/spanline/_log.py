"""Rate-limited internal logging: tracing problems are logged, never raised.

A failing exporter or processor can fail for every span; logging each failure would
flood the host's logs, so each *kind* of problem is logged once, then at most once a
minute with a count of what was suppressed in between.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time

from spanline._fork import renew_after_fork

__all__ = ["logger", "report"]

logger = logging.getLogger("spanline")

_INTERVAL_S = 60.0
_MAX_KEYS = 1024
_lock = threading.Lock()
renew_after_fork(sys.modules[__name__])
_last: dict[str, float] = {}
_suppressed: dict[str, int] = {}


def report(
    key: str,
    message: str,
    *args: object,
    level: int = logging.ERROR,
    exc_info: BaseException | None = None,
) -> None:
    """Log ``message`` for problem ``key`` unless it was logged within the last minute.

    Never raises (a logging failure, even a RecursionError deep in the stack, is
    swallowed: the caller is usually handling a failure already).  Keys are
    code-defined; at most ``_MAX_KEYS`` are remembered.
    """
    with contextlib.suppress(Exception):  # reporting a problem must not become one
        _report(key, message, args, level, exc_info)


def _report(
    key: str, message: str, args: tuple[object, ...], level: int, exc_info: BaseException | None
) -> None:
    now = time.monotonic()
    with _lock:
        if len(_last) >= _MAX_KEYS:
            _last.clear()
            _suppressed.clear()
        last = _last.get(key)
        if last is not None and now - last < _INTERVAL_S:
            _suppressed[key] = _suppressed.get(key, 0) + 1
            return
        _last[key] = now
        skipped = _suppressed.pop(key, 0)
    if skipped:
        message += " (%d similar messages suppressed)"
        args = (*args, skipped)
    logger.log(level, message, *args, exc_info=exc_info)


def reset() -> None:
    """Forget what was logged (used between tests)."""
    with _lock:
        _last.clear()
        _suppressed.clear()
