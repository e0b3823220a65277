"""Search parameters from a query string, validated: what the search page, its JSON
twin and the live updates all read.  A bad value is a :class:`BadQueryError` naming the
parameter and what it accepts; nothing here touches the store."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["SORTS", "WINDOWS", "BadQueryError", "SearchQuery", "parse_search", "window_start_ns"]

WINDOWS: dict[str, float | None] = {
    "15m": 15 * 60,
    "1h": 3600,
    "6h": 6 * 3600,
    "24h": 24 * 3600,
    "7d": 7 * 86400,
    "all": None,
}
WINDOW_LABELS = [
    ("15m", "last 15 minutes"),
    ("1h", "last hour"),
    ("6h", "last 6 hours"),
    ("24h", "last 24 hours"),
    ("7d", "last 7 days"),
    ("all", "all time"),
]
SORTS = ("-start", "start", "-duration", "duration", "-spans", "spans")
MAX_LIMIT = 500


class BadQueryError(ValueError):
    """A search parameter that cannot be used; the message names it."""


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """One validated trace search."""

    service: str | None = None
    name: str | None = None
    actor: str | None = None
    status: str | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    window: str = "all"
    attr: str | None = None
    sort: str = "-start"
    limit: int = 50
    offset: int = 0

    @property
    def actor_parts(self) -> tuple[str, str | None] | None:
        """``("user", "42")`` for ``user:42``; ``("user", None)`` for ``user``."""
        if not self.actor:
            return None
        kind, sep, ident = self.actor.partition(":")
        return kind, (ident if sep else None)

    @property
    def attribute(self) -> tuple[str, str] | None:
        """``(key, value)`` of ``key=value``."""
        if not self.attr:
            return None
        key, _, value = self.attr.partition("=")
        return key.strip(), value.strip()


def _number(params: Mapping[str, str], name: str) -> float | None:
    text = (params.get(name) or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise BadQueryError(f"{name} must be a number of milliseconds, got {text!r}") from None
    if not (0 <= value < float("inf")):  # also refuses NaN
        raise BadQueryError(f"{name} must be a finite number >= 0, got {text!r}")
    return value


def _integer(params: Mapping[str, str], name: str, default: int, high: int) -> int:
    text = (params.get(name) or "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) > high:
        raise BadQueryError(f"{name} must be a whole number from 0 to {high}, got {text!r}")
    return int(text)


def _text(params: Mapping[str, str], name: str) -> str | None:
    value = (params.get(name) or "").strip()
    if len(value) > 1000:
        raise BadQueryError(f"{name} is longer than 1000 characters")
    return value or None


def parse_search(params: Mapping[str, str]) -> SearchQuery:
    """Validate a search's parameters (see ``docs/viewer.md`` for each)."""
    status = _text(params, "status")
    if status not in (None, "ok", "error"):
        raise BadQueryError(f"status must be 'ok' or 'error', got {status!r}")
    window = _text(params, "window") or "all"
    if window not in WINDOWS:
        raise BadQueryError(f"window must be one of {', '.join(WINDOWS)}, got {window!r}")
    sort = _text(params, "sort") or "-start"
    if sort not in SORTS:
        raise BadQueryError(f"sort must be one of {', '.join(SORTS)}, got {sort!r}")
    attr = _text(params, "attr")
    if attr is not None and ("=" not in attr or not attr.partition("=")[0].strip()):
        raise BadQueryError(f"attr must look like key=value, got {attr!r}")
    query = SearchQuery(
        service=_text(params, "service"),
        name=_text(params, "name"),
        actor=_text(params, "actor"),
        status=status,
        min_ms=_number(params, "min_ms"),
        max_ms=_number(params, "max_ms"),
        window=window,
        attr=attr,
        sort=sort,
        limit=_integer(params, "limit", 50, MAX_LIMIT) or 50,
        offset=_integer(params, "offset", 0, 10_000_000),
    )
    if query.min_ms is not None and query.max_ms is not None and query.min_ms > query.max_ms:
        raise BadQueryError("min_ms is larger than max_ms")
    return query


def window_start_ns(window: str, now: float | None = None) -> int | None:
    """The start of a window in ns since the epoch (``None`` for all time)."""
    seconds = WINDOWS[window]
    if seconds is None:
        return None
    return int(((time.time() if now is None else now) - seconds) * 1e9)
