"""One finished span as a flat, JSON-ready dict (for line-oriented exporters)."""

from __future__ import annotations

from typing import Any

from spanline.core.jsonsafe import jsonable
from spanline.core.span import Span

__all__ = ["span_record"]


def span_record(span: Span) -> dict[str, Any]:
    """The span without its children: ids in both forms, parent, times in ns since the
    epoch, and the span's data.  Children refer to it through ``parent_id``."""
    return {
        "trace_id": span.trace_id,
        "id": span.id,
        "parent_id": span.parent_id,
        "w3c_trace_id": span.trace_hex,
        "w3c_span_id": span.span_hex,
        "w3c_parent_span_id": f"{span.parent_span_id:016x}" if span.parent_span_id else None,
        "name": span.name,
        "type": span.type,
        "kind": span.kind.name.lower(),
        "status": span.status.name.lower(),
        "status_message": span.status_message,
        "start_ns": span.start_ns,
        "end_ns": span.end_ns,
        "actor": span.actor,
        "attributes": jsonable(span.attributes),
        "records": jsonable(span.records),
        "meta": jsonable(span.meta),
        "events": [
            {"name": e.name, "timestamp_ns": e.timestamp_ns, "attributes": e.attributes}
            for e in span.events
        ],
    }
