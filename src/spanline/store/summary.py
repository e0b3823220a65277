"""Per-trace summaries of a batch, merged into the ``traces`` table by the writer.

The writer folds a batch's rows into one summary per trace here (in Python, once per
batch) and upserts those; the database merges them with what it already holds:
earliest start, latest end, counts added, and the root -- the span without a parent
once one is stored, until then the earliest span seen.
"""

# ruff: noqa: S608 - SQL is built from fixed fragments only; every value is bound

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from spanline.store.row import COLUMNS, RowValues

__all__ = ["SERVICES_SQL", "SUMMARY_COLUMNS", "services", "summaries", "upsert_sql"]

SUMMARY_COLUMNS = (
    "trace_hex",
    "trace_id",
    "start_ns",
    "end_ns",
    "span_count",
    "error_count",
    "rooted",
    "root_name",
    "root_service",
    "root_span_hex",
    "actor_type",
    "actor_id",
    "actor",
)

Summary = list[Any]
_START, _END, _COUNT, _ERRORS, _ROOTED = 2, 3, 4, 5, 6


_TRACE_HEX, _SPAN_HEX, _PARENT_HEX, _TRACE_ID, _NAME, _STATUS = (
    COLUMNS.index(name)
    for name in ("trace_hex", "span_hex", "parent_hex", "trace_id", "name", "status")
)
_ROW_START, _ROW_END, _SERVICE, _ACTOR_TYPE, _ACTOR_ID, _ACTOR = (
    COLUMNS.index(name)
    for name in ("start_ns", "end_ns", "service", "actor_type", "actor_id", "actor")
)


def summaries(rows: Iterable[RowValues]) -> list[Summary]:
    """One summary per trace in ``rows`` (values in :data:`SUMMARY_COLUMNS` order),
    sorted by trace id so that concurrent writers lock rows in the same order."""
    found: dict[str, Summary] = {}
    for row in rows:
        summary = found.get(row[_TRACE_HEX])
        rooted = row[_PARENT_HEX] is None
        error = row[_STATUS] == "error"
        if summary is None:
            found[row[_TRACE_HEX]] = [
                row[_TRACE_HEX],
                row[_TRACE_ID],
                row[_ROW_START],
                row[_ROW_END],
                1,
                1 if error else 0,
                1 if rooted else 0,
                row[_NAME],
                row[_SERVICE],
                row[_SPAN_HEX],
                row[_ACTOR_TYPE],
                row[_ACTOR_ID],
                row[_ACTOR],
            ]
            continue
        summary[_COUNT] += 1
        if error:
            summary[_ERRORS] += 1
        summary[_END] = max(summary[_END], row[_ROW_END])
        earlier = row[_ROW_START] < summary[_START]
        if earlier:
            summary[_START] = row[_ROW_START]
        if (rooted and not summary[_ROOTED]) or (earlier and not summary[_ROOTED]):
            summary[7:10] = [row[_NAME], row[_SERVICE], row[_SPAN_HEX]]
            summary[_ROOTED] = 1 if rooted else 0
        if summary[10] is None and row[_ACTOR_TYPE] is not None:
            summary[10:13] = [row[_ACTOR_TYPE], row[_ACTOR_ID], row[_ACTOR]]
    return [found[key] for key in sorted(found)]


def services(rows: Iterable[RowValues]) -> list[tuple[str]]:
    """The distinct service names of a batch, as parameter tuples for
    :data:`SERVICES_SQL`."""
    return [(name,) for name in sorted({r[_SERVICE] for r in rows if r[_SERVICE] is not None})]


SERVICES_SQL = "INSERT INTO services (name) VALUES ({mark}) ON CONFLICT (name) DO NOTHING"
"""Remember a service name (``{mark}`` is the placeholder)."""


def upsert_sql(placeholder: str, least: str, greatest: str) -> str:
    """The merge statement: ``placeholder`` is ``?`` or ``%s``; ``least``/``greatest``
    name the two-argument minimum and maximum (``min``/``max`` in SQLite)."""
    values = ", ".join([placeholder] * len(SUMMARY_COLUMNS))
    better = (
        "(excluded.rooted > traces.rooted OR "
        "(traces.rooted = 0 AND excluded.rooted = 0 AND excluded.start_ns < traces.start_ns))"
    )
    no_actor = "traces.actor_type IS NULL"
    return (
        f"INSERT INTO traces ({', '.join(SUMMARY_COLUMNS)}) VALUES ({values}) "
        "ON CONFLICT (trace_hex) DO UPDATE SET "
        f"start_ns = {least}(traces.start_ns, excluded.start_ns), "
        f"end_ns = {greatest}(traces.end_ns, excluded.end_ns), "
        "span_count = traces.span_count + excluded.span_count, "
        "error_count = traces.error_count + excluded.error_count, "
        f"root_name = CASE WHEN {better} THEN excluded.root_name ELSE traces.root_name END, "
        f"root_service = CASE WHEN {better} THEN excluded.root_service "
        "ELSE traces.root_service END, "
        f"root_span_hex = CASE WHEN {better} THEN excluded.root_span_hex "
        "ELSE traces.root_span_hex END, "
        f"rooted = {greatest}(traces.rooted, excluded.rooted), "
        "actor_type = coalesce(traces.actor_type, excluded.actor_type), "
        f"actor_id = CASE WHEN {no_actor} THEN excluded.actor_id ELSE traces.actor_id END, "
        f"actor = CASE WHEN {no_actor} THEN excluded.actor ELSE traces.actor END"
    )
