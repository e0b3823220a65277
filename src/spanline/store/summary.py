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

from spanline.store.row import SpanRow

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


def summaries(rows: Iterable[SpanRow]) -> list[Summary]:
    """One summary per trace in ``rows`` (values in :data:`SUMMARY_COLUMNS` order),
    sorted by trace id so that concurrent writers lock rows in the same order."""
    found: dict[str, Summary] = {}
    for row in rows:
        summary = found.get(row.trace_hex)
        rooted = row.parent_hex is None
        if summary is None:
            found[row.trace_hex] = [
                row.trace_hex,
                row.trace_id,
                row.start_ns,
                row.end_ns,
                1,
                1 if row.status == "error" else 0,
                1 if rooted else 0,
                row.name,
                row.service,
                row.span_hex,
                row.actor_type,
                row.actor_id,
                row.actor,
            ]
            continue
        summary[_COUNT] += 1
        if row.status == "error":
            summary[_ERRORS] += 1
        summary[_END] = max(summary[_END], row.end_ns)
        earlier = row.start_ns < summary[_START]
        if earlier:
            summary[_START] = row.start_ns
        if (rooted and not summary[_ROOTED]) or (earlier and not summary[_ROOTED]):
            summary[7:10] = [row.name, row.service, row.span_hex]
            summary[_ROOTED] = 1 if rooted else 0
        if summary[10] is None and row.actor_type is not None:
            summary[10:13] = [row.actor_type, row.actor_id, row.actor]
    return [found[key] for key in sorted(found)]


def services(rows: Iterable[SpanRow]) -> list[tuple[str]]:
    """The distinct service names of a batch, as parameter tuples for
    :data:`SERVICES_SQL`."""
    return [(name,) for name in sorted({r.service for r in rows if r.service is not None})]


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
