"""Dex-style recording: every finished operation becomes a row in a table the app owns.

``Recorder`` is a span processor.  On the application thread it does one type check
and hands operation spans to a :class:`~spanline.export.batch.BatchSpanProcessor`
(bounded queue, one worker); rows are built and written on the worker, a batch per
transaction.  The target is either a DB-API connection factory (``sqlite3``,
``psycopg`` 3, any driver with a standard ``paramstyle``) or a SQLAlchemy ``Engine``.

**Only the columns that exist are written.**  The table's columns are read once (SQLite
``pragma_table_info``, PostgreSQL ``information_schema.columns``, SQLAlchemy
``inspect``, any other driver ``cursor.description``), and each logical field of
:data:`FIELDS` is written when its column is there: a table without ``trace_id``,
``actor_type``, ``actor_id`` or ``trace`` keeps working, no migration needed.  Names
are matched without regard to case.  A batch in which no row could be written makes
the next batch read the columns again (the table may have been migrated).

**Params are opt-in** (``params=True``, or per operation name a list of allowed keys)
because they often hold secrets.  spanline never copies an operation's inputs into its
span, so exporters never see them; :func:`record_params` hands them to the recorders
that asked for them, and nothing else (see ``docs/recorder.md``).

**SQL is always parameterized**; table and column names are validated (letters,
digits, ``_``, ``$``; at most 63 characters; ``schema.table`` allowed) and quoted.

**Failures never reach the application**: a missing table, a database that is down or
a row the database rejects is counted in :meth:`Recorder.stats` and logged (rate
limited).  When a batch insert fails, its rows are retried one by one, so one bad row
does not lose the others.  The recorder's own statements run outside any trace, so
instrumented drivers do not trace them.

**Timestamps**: ``started_at`` is UTC -- an aware ``datetime`` for SQLAlchemy
``DateTime`` columns, ``YYYY-MM-DD HH:MM:SS.ffffff`` text for SQLite, ISO 8601 text
with ``+00:00`` for other DB-API drivers (PostgreSQL casts it to ``timestamptz``).
``duration`` is in seconds.  ``params`` and ``trace`` are JSON (objects for SQLAlchemy
``JSON`` columns, text otherwise).  ``status`` is ``completed`` or ``failed``.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from spanline._fork import renew_after_fork
from spanline._log import report
from spanline.core import config
from spanline.core import operation as _operation
from spanline.core.context import Trace, TraceRoot, current
from spanline.core.jsonsafe import jsonable
from spanline.core.span import HANDLER, OPERATION, SPAN, Span, StatusCode
from spanline.core.trace import frames_of
from spanline.export.batch import BatchSpanProcessor
from spanline.export.exporter import ExportResult
from spanline.store.app_table import (
    PLACEHOLDERS,
    DbApiSession,
    Plan,
    Row,
    Session,
    SqlAlchemySession,
    Where,
    identifier,
)

__all__ = ["FIELDS", "Recorder", "record_params"]

FIELDS: Mapping[str, str] = {
    "id": "id",
    "name": "name",
    "status": "status",
    "params": "params",
    "trace_id": "trace_id",
    "actor_type": "actor_type",
    "actor_id": "actor_id",
    "trace": "trace",
    "started_at": "started_at",
    "duration": "duration",
    "error": "error",
}
"""Logical field -> default column name (override with ``Recorder(columns=...)``)."""

_QUIET = TraceRoot(Trace(0, None, None, False))
"""A trace that records nothing: the recorder's own statements run under it."""


# -- params: handed over outside the span -----------------------------------------------


class _HeldParams:
    """Params waiting for their span's row (bounded: the oldest go first)."""

    def __init__(self, rule: bool | Mapping[str, bool | frozenset[str]], limit: int) -> None:
        self._rule = rule
        self._limit = limit
        self._lock = threading.Lock()
        renew_after_fork(self)
        self._held: dict[int, tuple[Span, dict[str, Any]]] = {}
        self.evicted = 0

    def allowed(self, name: str) -> bool | frozenset[str]:
        if isinstance(self._rule, bool):
            return self._rule
        return self._rule.get(name, False)

    def hold(self, span: Span, params: Mapping[str, Any]) -> None:
        allowed = self.allowed(span.name)
        if allowed is False:
            return
        kept = dict(params) if allowed is True else {k: params[k] for k in allowed if k in params}
        with self._lock:
            entry = self._held.get(id(span))
            if entry is not None and entry[0] is span:
                entry[1].update(kept)  # a second call adds to the first
                return
            self._held[id(span)] = (span, kept)
            while len(self._held) > self._limit:  # spans dropped before their row
                del self._held[next(iter(self._held))]
                self.evicted += 1

    def take(self, span: Span) -> dict[str, Any] | None:
        with self._lock:
            entry = self._held.pop(id(span), None)
        return entry[1] if entry is not None and entry[0] is span else None


_WANTING: tuple[_HeldParams, ...] = ()
_wanting_lock = threading.Lock()
renew_after_fork(sys.modules[__name__], "_wanting_lock")


def record_params(params: Mapping[str, object] | None = None, /, **values: object) -> None:
    """Hand the running operation's params to the recorders that asked for them.

    ``record_params(self.params)`` inside ``perform()``, or ``record_params(order_id=7)``.
    The params go to each :class:`Recorder` created with ``params=True`` (or whose
    allowlist names this operation, and then only the allowed keys); they never enter
    the span, so exporters never see them.  Several calls in one operation add up.
    Without such a recorder, or outside any operation, this does nothing; it never
    raises (a bad argument is logged).
    """
    holders = _WANTING
    if not holders:
        return
    try:
        span = _innermost_operation()
        if span is None:
            return
        merged = {**params, **values} if params else values
        for holder in holders:
            holder.hold(span, merged)
    except Exception as error:  # noqa: BLE001 - tracing never breaks the app
        report(
            "record-params",
            "spanline: record_params() needs a mapping and/or keyword arguments; ignored (%r)",
            error,
            level=30,
        )


def _innermost_operation() -> Span | None:
    node = current.get()
    while node is not None:
        if type(node) is Span and node._type != SPAN:
            return node if node._trace.recorded and not node.ended else None
        node = node._parent
    return None


def _params_rule(
    params: bool | Mapping[str, bool | Iterable[str]],
) -> bool | dict[str, bool | frozenset[str]]:
    if isinstance(params, bool):
        return params
    if not isinstance(params, Mapping):
        raise TypeError(
            "params must be True, False or a mapping of operation name to True or a list "
            f"of allowed keys, got {type(params).__name__}"
        )
    rule: dict[str, bool | frozenset[str]] = {}
    for name, allowed in params.items():
        if isinstance(allowed, bool):
            rule[str(name)] = allowed
        elif isinstance(allowed, str) or not isinstance(allowed, Iterable):
            raise TypeError(
                f"params[{name!r}] must be True, False or a list of keys, got {allowed!r}"
            )
        else:
            rule[str(name)] = frozenset(str(key) for key in allowed)
    return rule


# -- rows -------------------------------------------------------------------------------


def _row(span: Span, params: dict[str, Any] | None) -> Row:
    failed = span.status == StatusCode.ERROR
    actor = span.actor or {}
    return {
        "id": span.id,
        "name": span.name,
        "status": "failed" if failed else "completed",
        "params": jsonable(params) if params is not None else None,
        "trace_id": span.trace_id,
        "actor_type": actor.get("type"),
        "actor_id": actor.get("id"),
        "trace": frames_of(span),
        "started_at": span.started_at,
        "duration": span.duration,
        "error": span.status_message if failed else None,
    }


# -- the exporter behind the batch processor ----------------------------------------------


class _RowExporter:
    """Turns a batch of spans into rows and writes them (runs on the batch worker)."""

    def __init__(
        self,
        open_session: Callable[[], Session],
        fields: dict[str, str],
        label: str,
        held: _HeldParams | None,
    ) -> None:
        self._open = open_session
        self._fields = fields
        self._label = label
        self._held = held
        self._plan: Plan | None = None
        self._lock = threading.Lock()
        renew_after_fork(self)
        self._counts = {"recorded": 0, "failed": 0, "batches": 0}
        self._last_error: str | None = None

    def export(self, batch: Sequence[Span], timeout_millis: int = 30000) -> ExportResult:
        """Write one row per span; failures are counted and logged here, so the batch
        processor always sees SUCCESS (its own counters would double-count them)."""
        token = current.set(_QUIET)  # our statements must not become spans
        try:
            self._write(batch)
        except Exception as error:  # noqa: BLE001 - tracing never breaks the app
            self._failed(len(batch), "unexpected", error)
        finally:
            current.reset(token)
        return ExportResult.SUCCESS

    def _write(self, batch: Sequence[Span]) -> None:
        try:
            session = self._open()
        except Exception as error:  # noqa: BLE001 - the database may be down
            self._failed(len(batch), "connect", error)
            return
        try:
            plan = self._plan
            if plan is None:
                try:
                    plan = self._plan = self._make_plan(session)
                except Exception as error:  # noqa: BLE001 - missing table, no rights...
                    self._failed(len(batch), "table", error)
                    return
            held = self._held
            rows = [_row(span, held.take(span) if held else None) for span in batch]
            written, problem = session.insert(plan, rows)
            if written == 0:
                self._plan = None  # read the columns again next time: a migration?
            with self._lock:
                self._counts["recorded"] += written
                self._counts["batches"] += 1
            if problem is not None:
                self._failed(len(rows) - written, "insert", problem)
        finally:
            try:
                session.close()
            except Exception as error:  # noqa: BLE001
                report(f"recorder-close:{self._label}", "spanline: closing failed: %r", error)

    def _make_plan(self, session: Session) -> Plan:
        found = {column[0].lower(): column for column in session.columns()}
        if not found:
            raise LookupError(f"there is no table {self._label}")
        plan: Plan = []
        for field, wanted in self._fields.items():
            match = found.get(wanted.lower())
            if match is not None:
                plan.append((field, *match))
        if not plan:
            raise LookupError(
                f"table {self._label} has none of the columns "
                f"{', '.join(self._fields.values())} (see Recorder(columns=...))"
            )
        return plan

    def _failed(self, rows: int, what: str, error: Exception) -> None:
        with self._lock:
            self._counts["failed"] += rows
            self._last_error = f"{what}: {error!r}"
        report(
            f"recorder:{self._label}:{what}",
            "spanline: Recorder could not write to table %s (%s: %r); %d operations not "
            "recorded (counted in Recorder.stats(); the application carries on)",
            self._label,
            what,
            error,
            rows,
        )

    def stats(self) -> dict[str, Any]:
        """Rows recorded and failed, batches written, the last error."""
        with self._lock:
            return {**self._counts, "last_error": self._last_error}

    def shutdown(self) -> None:
        """Nothing to release: each batch opens and closes its own connection."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered here."""
        return True


# -- the processor -------------------------------------------------------------------------


class Recorder:
    """Record every finished operation as a row of the app's own table.

    ``spanline.tracer.add_processor(Recorder(engine, "operation_records"))``

    ``target`` is a SQLAlchemy ``Engine`` or a callable returning a new DB-API
    connection (``lambda: sqlite3.connect("app.db")``), called on the recorder's thread
    once per batch; the connection is committed and closed after the batch.  ``table``
    is ``name`` or ``schema.name``.  ``columns`` overrides :data:`FIELDS` (a value of
    ``None`` leaves that field out).  ``params``: ``False`` (default), ``True``, or
    ``{"PlaceOrder": ["product", "quantity"], "Refund": True}``; see
    :func:`record_params`.  ``handlers=True`` records handlers (``hd_`` rows) too;
    Dex records operations only, so that is the default.  ``paramstyle`` is needed only
    for a driver whose module does not declare one.  The remaining options are the
    batch processor's (``OTEL_BSP_*`` defaults).

    Operations in traces that are not recorded (sampled out, or tracing disabled) are
    not recorded here either.  Raises ``ValueError``/``TypeError`` for bad arguments;
    never raises once running.
    """

    def __init__(
        self,
        target: Any,
        table: str,
        *,
        columns: Mapping[str, str | None] | None = None,
        params: bool | Mapping[str, bool | Iterable[str]] = False,
        handlers: bool = False,
        paramstyle: str | None = None,
        max_queue_size: int | None = None,
        max_export_batch_size: int | None = None,
        schedule_delay_millis: int | None = None,
        export_timeout_millis: int | None = None,
        shutdown_timeout_millis: int | None = None,
    ) -> None:
        if not isinstance(table, str):
            raise TypeError(f"table must be a string such as 'operation_records', got {table!r}")
        schema, _, name = table.rpartition(".")
        where = Where(
            identifier(schema, "schema name") if schema else None,
            identifier(name, "table name"),
        )
        fields = dict(FIELDS)
        for field, column in (columns or {}).items():
            if field not in FIELDS:
                raise ValueError(f"unknown field {field!r} in columns; known: {', '.join(FIELDS)}")
            if column is None:
                del fields[field]
            else:
                fields[field] = identifier(column, f"column for {field!r}")
        rule = _params_rule(params)
        if not rule:
            fields.pop("params", None)
        open_session = self._session_factory(target, where, paramstyle)
        options = config.batch_options(
            max_queue_size=max_queue_size,
            max_export_batch_size=max_export_batch_size,
            schedule_delay_millis=schedule_delay_millis,
            export_timeout_millis=export_timeout_millis,
            shutdown_timeout_millis=shutdown_timeout_millis,
        )
        self._held = _HeldParams(rule, options.max_queue_size) if rule else None
        self._rows = _RowExporter(open_session, fields, table, self._held)
        self._batch = BatchSpanProcessor(
            self._rows,
            max_queue_size=options.max_queue_size,
            max_export_batch_size=options.max_export_batch_size,
            schedule_delay_millis=options.schedule_delay_millis,
            export_timeout_millis=options.export_timeout_millis,
            shutdown_timeout_millis=options.shutdown_timeout_millis,
        )
        self._types = (OPERATION, HANDLER) if handlers else (OPERATION,)
        if self._held is not None:
            _want(self._held, True)

    @staticmethod
    def _session_factory(
        target: Any, where: Where, paramstyle: str | None
    ) -> Callable[[], Session]:
        sa = sys.modules.get("sqlalchemy")
        if sa is not None and isinstance(target, sa.engine.Engine):
            return lambda: SqlAlchemySession(target, where)
        if callable(target):
            if paramstyle is not None and paramstyle not in (*PLACEHOLDERS, "numeric", "named"):
                raise ValueError(f"unknown paramstyle {paramstyle!r}")
            return lambda: DbApiSession(target, where, paramstyle)
        raise TypeError(
            "Recorder needs a SQLAlchemy Engine or a callable returning a DB-API connection, "
            f"got {type(target).__name__}"
        )

    def on_start(self, span: Span) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: Span) -> None:
        """Queue finished operations (a type check and a deque append)."""
        if span._type in self._types:
            self._batch.on_end(span)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Write everything queued now; ``False`` if the deadline passed first."""
        return self._batch.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Write what is queued (within the shutdown deadline) and stop."""
        if self._held is not None:
            _want(self._held, False)
        self._batch.shutdown()

    def stats(self) -> dict[str, Any]:
        """``recorded`` and ``failed`` rows, ``batches``, ``last_error``; spans
        ``dropped`` before reaching the database (queue full, after shutdown, abandoned
        or timed out) and the ``queue_depth``."""
        queue = self._batch.stats()
        dropped = sum(
            int(queue.get(key, 0))
            for key in (
                "dropped_queue_full",
                "dropped_after_shutdown",
                "abandoned_at_shutdown",
                "timed_out_spans",
            )
        )
        result = self._rows.stats()
        result["dropped"] = dropped
        result["queue_depth"] = queue["queue_depth"]
        if self._held is not None:
            result["params_evicted"] = self._held.evicted
        return result


def _want(holder: _HeldParams, wanted: bool) -> None:
    global _WANTING
    with _wanting_lock:
        rest = tuple(h for h in _WANTING if h is not holder)
        _WANTING = (*rest, holder) if wanted else rest
        # Operation classes hand their params over by themselves while one is wanted
        _operation.params_sink = _hand_over if _WANTING else None


def _hand_over(span: Span, params: dict[str, Any]) -> None:
    for holder in _WANTING:
        holder.hold(span, params)
