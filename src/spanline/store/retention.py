"""Retention: how long spans are kept and how many, enforced in small steps.

The writer thread enforces the policy in the background, never on a request: every
``interval_s`` it deletes what is too old, then the oldest spans beyond
``max_spans``, one short transaction of at most ``chunk`` spans at a time, and
writes waiting batches between two steps -- so a large cleanup never holds the
database for long.  Retention removes whole traces, oldest first (a trace is as old
as its first span), so a trace is never left half deleted; only a single trace
larger than ``chunk`` is removed over several steps.
"""

# ruff: noqa: S608 - SQL is built from fixed fragments only; every value is bound

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

__all__ = ["Retention", "delete_oldest_step"]


@dataclass(frozen=True, slots=True)
class Retention:
    """Keep spans at most ``max_age`` (seconds or a ``timedelta``) and/or at most
    ``max_spans`` of them; ``None`` means no limit.  Checked every ``interval_s``
    seconds, ``chunk`` spans per transaction."""

    max_age: float | datetime.timedelta | None = None
    max_spans: int | None = None
    interval_s: float = 60.0
    chunk: int = 2000

    def __post_init__(self) -> None:
        age = self.max_age
        if isinstance(age, datetime.timedelta):
            age = age.total_seconds()
        if age is not None and (isinstance(age, bool) or not isinstance(age, int | float)):
            raise TypeError(f"max_age must be seconds or a timedelta, got {type(age).__name__}")
        if age is not None and age <= 0:
            raise ValueError(f"max_age={self.max_age!r} must be positive")
        for name in ("max_spans", "chunk"):
            value = getattr(self, name)
            if value is None and name == "max_spans":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name}={value!r} must be a whole number > 0")
        if not self.interval_s > 0:
            raise ValueError(f"interval_s={self.interval_s!r} must be positive")

    @property
    def max_age_ns(self) -> int | None:
        """``max_age`` in nanoseconds (``None``: no age limit)."""
        age = self.max_age
        if age is None:
            return None
        seconds = age.total_seconds() if isinstance(age, datetime.timedelta) else age
        return int(seconds * 1_000_000_000)

    @property
    def active(self) -> bool:
        """True when there is a limit to enforce."""
        return self.max_age is not None or self.max_spans is not None


def delete_oldest_step(
    conn: Any,
    mark: str,
    limit: int,
    before_ns: int | None,
    row_key: str = "seq",
    row_match: str = "seq IN ({rows})",
    keep: str | None = None,
) -> int:
    """One retention step, inside the caller's transaction, for both backends
    (``mark`` is the driver's placeholder; ``row_key`` the cheapest unique row
    address -- ``seq`` in SQLite, ``ctid`` in PostgreSQL -- and ``row_match`` how to
    delete by a list of them): delete the oldest whole traces -- those
    that started before ``before_ns`` when given -- up to about ``limit`` spans;
    a first trace larger than ``limit`` loses its oldest ``limit`` spans instead.
    The trace ``keep`` (hex id) is never deleted.  Returns the number of spans
    deleted (0: nothing left)."""
    tests = []
    params: list[Any] = []
    if before_ns is not None:
        tests.append(f"start_ns < {mark}")
        params.append(before_ns)
    if keep is not None:
        tests.append(f"trace_hex <> {mark}")
        params.append(keep)
    where = f"WHERE {' AND '.join(tests)} " if tests else ""
    found = conn.execute(
        f"SELECT trace_hex, span_count FROM traces {where}ORDER BY start_ns LIMIT {mark}",
        [*params, max(1, limit)],
    ).fetchall()
    if not found:
        return 0
    first_hex, first_count = found[0]
    if first_count > limit:
        oldest = (
            f"SELECT {row_key} FROM spans WHERE trace_hex = {mark} ORDER BY start_ns LIMIT {mark}"
        )
        deleted = conn.execute(
            f"DELETE FROM spans WHERE {row_match.format(rows=oldest)}", [first_hex, limit]
        ).rowcount
        if deleted > 0:
            conn.execute(
                f"UPDATE traces SET span_count = span_count - {mark} WHERE trace_hex = {mark}",
                [deleted, first_hex],
            )
            return int(deleted)
        found = found[:1]  # its count was stale: remove the summary below
    chosen: list[str] = []
    total = 0
    for trace_hex, count in found:
        if chosen and total + count > limit:
            break
        chosen.append(trace_hex)
        total += count
    marks = ", ".join([mark] * len(chosen))
    deleted = conn.execute(f"DELETE FROM spans WHERE trace_hex IN ({marks})", chosen).rowcount
    conn.execute(f"DELETE FROM traces WHERE trace_hex IN ({marks})", chosen)
    # summaries whose spans were already gone count as progress, so the caller moves on
    return int(deleted) if deleted > 0 else len(chosen)
