"""Rate-limited internal logging: tracing problems are logged, never raised.

A failing exporter or processor can fail for every span; logging each failure would
flood the host's logs, so each *kind* of problem is logged once, then at most once a
minute with a count of what was suppressed in between.
"""

from __future__ import annotations

import logging
import threading
import time

__all__ = ["logger", "report"]

logger = logging.getLogger("spanline")

_INTERVAL_S = 60.0
_lock = threading.Lock()
_last: dict[str, float] = {}
_suppressed: dict[str, int] = {}


def report(
    key: str,
    message: str,
    *args: object,
    level: int = logging.ERROR,
    exc_info: BaseException | None = None,
) -> None:
    """Log ``message`` for problem ``key`` unless it was logged within the last minute."""
    now = time.monotonic()
    with _lock:
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
