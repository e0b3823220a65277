"""Reading the store: traces, spans, call trees, per-operation numbers, live changes.

:func:`open` returns a :class:`Store`; every method runs parameterized SQL through
one connection (guarded by a lock, so a web viewer may call it from worker threads)
and returns plain objects with ``to_dict()`` JSON twins.  Filters mean the same on
SQLite and PostgreSQL.  Times are ns since the epoch (``int``) or ``datetime``;
durations ns (``int``) or ``timedelta``; windows are half-open, ``since <= t <
until``.
"""

# ruff: noqa: S608 - SQL is built from fixed fragments only; every value is bound

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

from spanline.core.location import StoreLocation, resolve_store
from spanline.store import filters
from spanline.store.backend import Backend, StoreError, open_backend
from spanline.store.row import COLUMNS, SpanRow
from spanline.store.tree import TreeNode, build_tree

__all__ = ["Changes", "OperationStats", "Page", "Store", "TraceSummary", "open"]

T = TypeVar("T")
_JSON_COLUMNS = ("actor", "frames", "attributes", "records", "meta", "events")
_TRACE_COLUMNS = (
    "trace_hex",
    "trace_id",
    "root_name",
    "root_service",
    "root_span_hex",
    "rooted",
    "actor_type",
    "actor_id",
    "actor",
    "start_ns",
    "end_ns",
    "span_count",
    "error_count",
)
_SPAN_ORDERS = {
    "start": "s.start_ns, s.seq",
    "-start": "s.start_ns DESC, s.seq DESC",
    "duration": "s.duration_ns, s.seq",
    "-duration": "s.duration_ns DESC, s.seq DESC",
    "name": "s.name, s.start_ns, s.seq",
}
_TRACE_ORDERS = {
    "start": "t.start_ns, t.trace_hex",
    "-start": "t.start_ns DESC, t.trace_hex DESC",
    "duration": "(t.end_ns - t.start_ns), t.trace_hex",
    "-duration": "(t.end_ns - t.start_ns) DESC, t.trace_hex DESC",
    "spans": "t.span_count, t.trace_hex",
    "-spans": "t.span_count DESC, t.trace_hex DESC",
    "errors": "t.error_count, t.trace_hex",
    "-errors": "t.error_count DESC, t.trace_hex DESC",
}
_PERCENTILES = (0.5, 0.95, 0.99)
_MAX_LIMIT = 10_000
_RARE = 2_000


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results: ``items``, where it starts, its size, and whether more
    follow (ask again with ``offset=page.next_offset``)."""

    items: list[T]
    offset: int
    limit: int
    has_more: bool

    @property
    def next_offset(self) -> int | None:
        """The offset of the next page, or ``None`` on the last one."""
        return self.offset + len(self.items) if self.has_more else None


@dataclass(frozen=True, slots=True)
class TraceSummary:
    """A trace at a glance, as trace search lists it.  ``root_*`` describe the
    span without a parent (``rooted``) or, until that one arrives, the earliest."""

    trace_hex: str
    trace_id: str
    root_name: str | None
    root_service: str | None
    root_span_hex: str | None
    rooted: bool
    actor_type: str | None
    actor_id: str | None
    actor: dict[str, str] | None
    start_ns: int
    end_ns: int
    span_count: int
    error_count: int

    @property
    def duration_ns(self) -> int:
        """From the first span's start to the last span's end."""
        return self.end_ns - self.start_ns

    @property
    def error(self) -> bool:
        """True when any span of the trace has status ``error``."""
        return self.error_count > 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON twin (with ``duration_ns`` and ``error``)."""
        return {**asdict(self), "duration_ns": self.duration_ns, "error": self.error}


@dataclass(frozen=True, slots=True)
class OperationStats:
    """Per span name (and service) over a window: how many, how often, how many
    failed, and the duration percentiles (exact: the smallest duration with at
    least that share of spans at or below it, as PostgreSQL's ``percentile_disc``)."""

    name: str
    service: str | None
    count: int
    errors: int
    rate_per_s: float
    p50_ns: int
    p95_ns: int
    p99_ns: int
    max_ns: int

    @property
    def error_rate(self) -> float:
        """``errors / count``."""
        return self.errors / self.count if self.count else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON twin (with ``error_rate``)."""
        return {**asdict(self), "error_rate": self.error_rate}


@dataclass(frozen=True, slots=True)
class Changes:
    """Spans stored after a cursor, and the cursor to ask with next time."""

    spans: list[SpanRow]
    cursor: int
    has_more: bool

    @property
    def trace_ids(self) -> list[str]:
        """The hex ids of the traces these spans belong to (each once, in order)."""
        return list(dict.fromkeys(row.trace_hex for row in self.spans))


def open(
    store: str | os.PathLike[str] | StoreLocation | None = None,
    *,
    schema: str | None = None,
    create: bool = True,
    readonly: bool = False,
    **backend_options: Any,
) -> Store:
    """Open a store for queries (default: ``SPANLINE_STORE``, else ``./spanline.db``).

    The schema is created or upgraded as needed unless ``readonly``; with
    ``create=False`` a SQLite file that does not exist is an error instead of a new
    empty store.  Raises :class:`~spanline.store.StoreError` (or
    :class:`~spanline.store.StoreConfigError`) with a message naming the problem.
    """
    location = resolve_store(store, schema=schema)
    missing = location.kind == "sqlite" and not os.path.exists(location.target)
    if missing and (not create or readonly):
        raise StoreError(f"there is no store at {location.target}")
    backend = open_backend(location, readonly=readonly, **backend_options)
    try:
        backend.connect()
    except StoreError:
        raise
    except Exception as error:
        raise StoreError(f"cannot open the store {location.display}: {error}") from error
    return Store(backend)


class Store:
    """Queries over one store (see the module docs).  Use as a context manager or
    call :meth:`close`."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._lock = threading.Lock()
        self.location = backend.location
        self._pg = backend.location.kind == "postgresql"
        json_col = "{}::text" if self._pg else "{}"
        self._span_select = ", ".join(
            json_col.format(f"s.{c}") if c in _JSON_COLUMNS else f"s.{c}" for c in COLUMNS
        )
        self._trace_select = ", ".join(
            json_col.format(f"t.{c}") if c == "actor" else f"t.{c}" for c in _TRACE_COLUMNS
        )

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._backend.close()

    def _query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._backend.query(sql, params)

    def _conditions(self, alias: str) -> filters.Conditions:
        return filters.Conditions("postgresql" if self._pg else "sqlite", alias)

    # -- one trace ------------------------------------------------------------------

    def trace(self, trace_id: str) -> list[SpanRow]:
        """Every span of a trace, by ``tr_`` id, external id or W3C hex, in start
        order (``[]`` when the store has none).  A span stored twice (an OTLP
        batch delivered again) is returned once."""
        rows = self._query(
            f"SELECT {self._span_select} FROM spans s WHERE s.trace_hex = ? "
            "ORDER BY s.start_ns, s.seq",
            [filters.trace_hex(trace_id)],
        )
        seen: set[tuple[str, int]] = set()
        out = []
        for values in rows:
            row = SpanRow(*values)
            if (row.span_hex, row.start_ns) not in seen:
                seen.add((row.span_hex, row.start_ns))
                out.append(row)
        return out

    def tree(self, trace_id: str) -> list[TreeNode]:
        """The trace's call tree from parent links: its roots (see
        :mod:`spanline.store.tree`)."""
        return build_tree(self.trace(trace_id))

    def summary(self, trace_id: str) -> TraceSummary | None:
        """The trace's summary row, or ``None``."""
        rows = self._query(
            f"SELECT {self._trace_select} FROM traces t WHERE t.trace_hex = ?",
            [filters.trace_hex(trace_id)],
        )
        return _summary(rows[0]) if rows else None

    def span(self, span_id: str, trace_id: str | None = None) -> SpanRow | None:
        """One span by ``op_``/``hd_``/``sp_`` id (an index lookup: the id carries
        its start time) or by 16 hex digits -- give ``trace_id`` with a hex id on a
        large store, else every span is scanned."""
        span_hex, start_ms = filters.span_key(span_id)
        where = self._conditions("s.")
        where.equals("span_hex", span_hex)
        if start_ms is not None:
            where.between("start_ns", start_ms * 1_000_000, (start_ms + 1) * 1_000_000)
        if trace_id is not None:
            where.equals("trace_hex", filters.trace_hex(trace_id))
        rows = self._query(
            f"SELECT {self._span_select} FROM spans s {where.sql()}ORDER BY s.seq LIMIT 1",
            where.params,
        )
        return SpanRow(*rows[0]) if rows else None

    # -- searching ------------------------------------------------------------------

    def spans(
        self,
        *,
        trace: str | None = None,
        actor: object = None,
        name: str | None = None,
        service: str | None = None,
        status: object = None,
        kind: object = None,
        type: str | None = None,
        since: object = None,
        until: object = None,
        min_duration: object = None,
        max_duration: object = None,
        attributes: Mapping[str, object] | None = None,
        records: Mapping[str, object] | None = None,
        order: str = "-start",
        limit: int = 100,
        offset: int = 0,
    ) -> Page[SpanRow]:
        """Spans matching every filter given, a page at a time.

        ``actor`` is ``"user:42"``, a type alone, ``(type, id)`` or a mapping;
        ``attributes``/``records`` map keys to wanted values; ``order`` is one of
        ``start``, ``-start`` (newest first, the default), ``duration``,
        ``-duration``, ``name``.
        """
        where = self._conditions("s.")
        if trace is not None:
            where.equals("trace_hex", filters.trace_hex(trace))
        if actor is not None:
            kind_, who = filters.actor_filter(actor)
            # the indexed path: the trace summaries carry the actor
            inner = "SELECT trace_hex FROM traces WHERE actor_type = ?"
            params: list[Any] = [kind_]
            if who is not None:
                inner += " AND actor_id = ?"
                params.append(who)
            where.add(f"s.trace_hex IN ({inner})", *params)
            where.equals("actor_type", kind_)
            where.equals("actor_id", who)
        where.equals("name", name)
        where.equals("service", service)
        where.status(status)
        where.kind(kind)
        where.type(type)
        where.between("start_ns", filters.time_ns(since, "since"), filters.time_ns(until, "until"))
        low = filters.duration_ns(min_duration, "min_duration")
        high = filters.duration_ns(max_duration, "max_duration")
        if low is not None:
            where.add("s.duration_ns >= ?", low)
        if high is not None:
            where.add("s.duration_ns <= ?", high)
        where.json_matches("attributes", attributes)
        where.json_matches("records", records)
        sort = _pick(order, _SPAN_ORDERS)
        limit, offset = _paging(limit, offset)
        rows = self._query(
            f"SELECT {self._span_select} FROM spans s {where.sql()}"
            f"ORDER BY {sort} LIMIT ? OFFSET ?",
            [*where.params, limit + 1, offset],
        )
        items = [SpanRow(*values) for values in rows[:limit]]
        return Page(items, offset, limit, len(rows) > limit)

    def traces(
        self,
        *,
        service: str | None = None,
        name: str | None = None,
        actor: object = None,
        status: object = None,
        since: object = None,
        until: object = None,
        min_duration: object = None,
        max_duration: object = None,
        attributes: Mapping[str, object] | None = None,
        order: str = "-start",
        limit: int = 50,
        offset: int = 0,
    ) -> Page[TraceSummary]:
        """Trace search: summaries of the traces that started in the window and
        match every filter.  ``service``, ``name`` and ``attributes`` must hold for
        one span of the trace (as in Jaeger's search); ``status="error"`` keeps
        traces with an error, ``"ok"``/``"unset"`` those without; ``actor`` and the
        duration range apply to the trace.  ``order``: ``start``, ``-start``
        (default), ``duration``, ``-duration``, ``spans``, ``-spans``, ``errors``,
        ``-errors``."""
        where = self._conditions("t.")
        if actor is not None:
            kind_, who = filters.actor_filter(actor)
            where.equals("actor_type", kind_)
            where.equals("actor_id", who)
        if status is not None:
            wanted = filters.Conditions("sqlite")
            wanted.status(status)
            where.add("t.error_count > 0" if wanted.params[0] == "error" else "t.error_count = 0")
        where.between("start_ns", filters.time_ns(since, "since"), filters.time_ns(until, "until"))
        low = filters.duration_ns(min_duration, "min_duration")
        high = filters.duration_ns(max_duration, "max_duration")
        if low is not None:
            where.add("(t.end_ns - t.start_ns) >= ?", low)
        if high is not None:
            where.add("(t.end_ns - t.start_ns) <= ?", high)
        inner = self._conditions("s.")
        inner.equals("service", service)
        inner.equals("name", name)
        inner.json_matches("attributes", attributes)
        if inner.clauses and name is not None and self._rare_name(name):
            # a rare name (indexed): collect its traces first, so it costs an index
            # range, not a probe per trace in the window; a common one is found
            # fastest by probing the newest traces (EXISTS, below)
            where.add(
                f"t.trace_hex IN (SELECT s.trace_hex FROM spans s WHERE "
                f"{' AND '.join(inner.clauses)})",
                *inner.params,
            )
        elif inner.clauses:
            where.add(
                f"EXISTS (SELECT 1 FROM spans s WHERE s.trace_hex = t.trace_hex AND "
                f"{' AND '.join(inner.clauses)})",
                *inner.params,
            )
        sort = _pick(order, _TRACE_ORDERS)
        limit, offset = _paging(limit, offset)
        rows = self._query(
            f"SELECT {self._trace_select} FROM traces t {where.sql()}"
            f"ORDER BY {sort} LIMIT ? OFFSET ?",
            [*where.params, limit + 1, offset],
        )
        return Page([_summary(r) for r in rows[:limit]], offset, limit, len(rows) > limit)

    def _rare_name(self, name: str) -> bool:
        """True when fewer than ``_RARE`` spans carry ``name`` (a bounded index probe)."""
        rows = self._query(
            "SELECT count(*) FROM (SELECT 1 FROM spans WHERE name = ? LIMIT ?) AS probe",
            [name, _RARE],
        )
        return int(rows[0][0]) < _RARE

    def services(self) -> list[str]:
        """Every service name seen, sorted."""
        return [r[0] for r in self._query("SELECT name FROM services ORDER BY name", [])]

    # -- numbers --------------------------------------------------------------------

    def operations(
        self,
        *,
        since: object = None,
        until: object = None,
        service: str | None = None,
        name: str | None = None,
    ) -> list[OperationStats]:
        """Per span name and service, over spans that started in the window: count,
        errors, rate per second and the p50/p95/p99 and maximum duration, busiest
        first.  The rate divides by the window (``until`` defaults to now,
        ``since`` to the earliest span counted)."""
        where = self._conditions("")
        low = filters.time_ns(since, "since")
        high = filters.time_ns(until, "until")
        where.between("start_ns", low, high)
        where.equals("service", service)
        where.equals("name", name)
        head = (
            "SELECT name, service, count(*), "
            "sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END), min(start_ns), "
        )
        if self._pg:
            rows = self._query(
                f"{head}percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP "
                f"(ORDER BY duration_ns), max(duration_ns) FROM spans {where.sql()}"
                "GROUP BY name, service",
                where.params,
            )
            found = [(r[0], r[1], int(r[2]), int(r[3]), int(r[4]), list(r[5]), r[6]) for r in rows]
        else:
            rows = self._query(
                f"{head}group_concat(duration_ns) FROM spans {where.sql()}GROUP BY name, service",
                where.params,
            )
            found = [(r[0], r[1], r[2], r[3], r[4], *_percentiles(r[5])) for r in rows]
        if not found:
            return []
        end = high if high is not None else time.time_ns()
        start = low if low is not None else min(f[4] for f in found)
        window_s = max((end - start) / 1e9, 1e-9)
        stats = [
            OperationStats(
                name=f[0],
                service=f[1],
                count=f[2],
                errors=f[3],
                rate_per_s=f[2] / window_s,
                p50_ns=int(f[5][0]),
                p95_ns=int(f[5][1]),
                p99_ns=int(f[5][2]),
                max_ns=int(f[6]),
            )
            for f in found
        ]
        stats.sort(key=lambda s: (-s.count, s.name, s.service or ""))
        return stats

    def counts(self) -> dict[str, int]:
        """How many ``spans`` and ``traces`` the store holds."""
        spans = self._query("SELECT count(*) FROM spans", [])[0][0]
        traces = self._query("SELECT count(*) FROM traces", [])[0][0]
        return {"spans": int(spans), "traces": int(traces)}

    # -- live updates ---------------------------------------------------------------

    def cursor(self) -> int:
        """A cursor at "now": :meth:`changes` returns what is stored after it.  It
        only grows, so it also serves as a version number of the store."""
        if self._pg:
            return int(self._query(_PG_HORIZON, [])[0][0])
        return int(self._query("SELECT coalesce(max(seq), 0) FROM spans", [])[0][0])

    def changes(self, cursor: int, limit: int = 1000) -> Changes:
        """Spans stored after ``cursor``, oldest first, at most ``limit`` (a little
        more on PostgreSQL, where one writer's transaction is never split), with the
        cursor for the next call.  On PostgreSQL a span shows up once every
        transaction older than it has finished (rows of concurrent writers commit
        out of order; none is ever skipped)."""
        if isinstance(cursor, bool) or not isinstance(cursor, int) or cursor < 0:
            raise ValueError(f"cursor={cursor!r} must be an int from cursor() or changes()")
        limit, _ = _paging(limit, 0)
        if self._pg:
            return self._pg_changes(cursor, limit)
        rows = self._query(
            f"SELECT s.seq, {self._span_select} FROM spans s WHERE s.seq > ? "
            "ORDER BY s.seq LIMIT ?",
            [cursor, limit + 1],
        )
        kept = rows[:limit]
        return Changes(
            [SpanRow(*r[1:]) for r in kept], int(kept[-1][0]) if kept else cursor, len(rows) > limit
        )

    def _pg_changes(self, cursor: int, limit: int) -> Changes:
        horizon = int(self._query(_PG_HORIZON, [])[0][0])
        select = (
            f"SELECT s.xid::text::bigint, {self._span_select} FROM spans s "
            "WHERE s.xid >= ?::text::xid8 AND s.xid < ?::text::xid8 "
        )
        rows = self._query(
            f"{select}ORDER BY s.xid, s.seq LIMIT ?", [str(cursor), str(horizon), limit + 1]
        )
        if len(rows) <= limit:
            return Changes([SpanRow(*r[1:]) for r in rows], max(cursor, horizon), False)
        cut = rows[limit][0]  # the transaction the page ends in is left for next time
        kept = [r for r in rows if r[0] < cut]
        if not kept:  # one transaction larger than a page: return it whole
            kept = self._query(
                f"{select}AND s.xid = ?::text::xid8 ORDER BY s.seq",
                [str(cursor), str(horizon), str(cut)],
            )
            cut += 1
        return Changes([SpanRow(*r[1:]) for r in kept], int(cut), True)


_PG_HORIZON = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"


def _pick(order: str, choices: Mapping[str, str]) -> str:
    if order not in choices:
        raise ValueError(f"order={order!r} is invalid; use one of {', '.join(choices)}")
    return choices[order]


def _paging(limit: object, offset: object) -> tuple[int, int]:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= _MAX_LIMIT:
        raise ValueError(f"limit={limit!r} must be a whole number from 1 to {_MAX_LIMIT}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset={offset!r} must be a whole number >= 0")
    return limit, offset


def _summary(values: Sequence[Any]) -> TraceSummary:
    data = dict(zip(_TRACE_COLUMNS, values, strict=True))
    data["rooted"] = bool(data["rooted"])
    data["actor"] = json.loads(data["actor"]) if data["actor"] else None
    for key in ("start_ns", "end_ns", "span_count", "error_count"):
        data[key] = int(data[key])
    return TraceSummary(**data)


def _percentiles(joined: str) -> tuple[list[int], int]:
    """p50/p95/p99 (``percentile_disc``) and the maximum of comma-joined durations."""
    durations = sorted(json.loads(f"[{joined}]"))
    count = len(durations)
    # the same float arithmetic as PostgreSQL's percentile_disc: row ceil(p * n)
    picks = [durations[max(1, math.ceil(p * count)) - 1] for p in _PERCENTILES]
    return picks, durations[-1]
