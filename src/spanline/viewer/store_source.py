"""The recording store as the viewer's :class:`~spanline.viewer.source.TraceSource`:
queries through :func:`spanline.store.open`, OTLP ingest through a
:class:`~spanline.store.StoreWriter` (its own thread and connection)."""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from spanline.store import Store, StoreWriter, open, rows_from_otlp
from spanline.store.row import SpanRow
from spanline.viewer.query import SearchQuery

__all__ = ["StoreSource"]

INGEST_WAIT_S = 10.0
"""How long an OTLP request waits for its spans to be committed before a 503."""


class StoreSource:
    """Reads and writes one store (a SQLite path or a ``postgresql://`` URL)."""

    def __init__(self, store: str | None) -> None:
        self._store: Store = open(store)
        self._writer: StoreWriter | None = None
        self._target = store
        self.label = self._store.location.display

    def close(self) -> None:
        """Flush ingested spans and close both connections."""
        if self._writer is not None:
            self._writer.close(10.0)
        self._store.close()

    def search(self, query: SearchQuery, since_ns: int | None) -> list[dict[str, Any]]:
        """Trace summaries matching ``query`` (see :class:`TraceSource`)."""
        attribute = query.attribute
        page = self._store.traces(
            service=query.service,
            name=query.name,
            actor=query.actor,
            status=query.status,
            since=since_ns,
            min_duration=None if query.min_ms is None else int(query.min_ms * 1e6),
            max_duration=None if query.max_ms is None else int(query.max_ms * 1e6),
            attributes={attribute[0]: _typed(attribute[1])} if attribute else None,
            order=query.sort,
            limit=query.limit,
            offset=query.offset,
        )
        return [
            {
                "trace_id": t.trace_id,
                "trace_hex": t.trace_hex,
                "root_name": t.root_name or "(unnamed)",
                "service": t.root_service,
                "actor": f"{t.actor_type}:{t.actor_id}" if t.actor_type else None,
                "start_ns": t.start_ns,
                "duration_ns": t.duration_ns,
                "span_count": t.span_count,
                "error": t.error,
            }
            for t in page.items
        ]

    def trace(self, trace_id: str) -> list[dict[str, Any]] | None:
        """Every span of the trace, shaped for the page script."""
        rows = self._store.trace(trace_id)
        return [_span(row) for row in rows] or None

    def services(self) -> list[str]:
        """Service names seen."""
        return self._store.services()

    def operations(self, since_ns: int | None, service: str | None) -> list[dict[str, Any]]:
        """Per-operation numbers over the window."""
        return [s.to_dict() for s in self._store.operations(since=since_ns, service=service)]

    def version(self) -> int:
        """Grows whenever spans are stored (by this server or any other writer)."""
        return self._store.cursor()

    def ingest(self, request: ExportTraceServiceRequest) -> tuple[int, str]:
        """Store an OTLP request's valid spans; raises when they could not be queued
        or committed in time (the receiver answers 503 and the client retries)."""
        converted = rows_from_otlp(request)
        if converted.rows:
            if self._writer is None:
                self._writer = StoreWriter(self._target)
            if not self._writer.submit(converted.rows, wait_s=INGEST_WAIT_S):
                raise RuntimeError("the store's write queue is full")
        return converted.rejected, converted.message


def _typed(text: str) -> object:
    """``key=42`` matches the number 42 and ``key=true`` the boolean (attributes keep
    their types); anything else is a string."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, bool | int | float) else text


def _span(row: SpanRow) -> dict[str, Any]:
    data = row.to_dict()
    actor = data["actor"]
    events = [
        {**event, "offset_ns": int(event.get("timestamp_ns", row.start_ns)) - row.start_ns}
        for event in data["events"]
        if isinstance(event, dict)
    ]
    return {
        "trace_id": row.trace_id,
        "trace_hex": row.trace_hex,
        "id": row.span_id,
        "span_id": row.span_hex,
        "parent_span_id": row.parent_hex,
        "name": row.name,
        "type": row.type,
        "service": row.service,
        "kind": row.kind,
        "status": row.status,
        "status_message": row.status_message,
        "start_ns": row.start_ns,
        "end_ns": row.end_ns,
        "duration_ns": row.duration_ns,
        "actor": f"{row.actor_type}:{row.actor_id}" if row.actor_type else None,
        "actor_detail": actor,
        "frames": data["frames"],
        "attributes": data["attributes"],
        "records": data["records"],
        "meta": data["meta"],
        "events": events,
    }
