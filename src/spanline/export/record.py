"""One finished span as a flat, JSON-ready dict (for line-oriented exporters)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spanline._version import __version__
from spanline.core.jsonsafe import jsonable
from spanline.core.span import Span
from spanline.core.trace import chain, frames_of

__all__ = ["resource_attributes", "span_record", "spanline_attributes"]


def spanline_attributes(span: Span) -> list[tuple[str, object]]:
    """spanline's own data as exported attributes (names documented in docs/opentelemetry.md):
    ``spanline.id``, ``spanline.type``, ``spanline.trace_id``, ``spanline.actor.<key>``,
    ``spanline.chain`` (operations and handlers), ``spanline.records.<key>`` and
    ``spanline.meta.<key>`` (made JSON-safe: bounded and cycle-free)."""
    items: list[tuple[str, object]] = [
        ("spanline.id", span.id),
        ("spanline.type", span.type),
        ("spanline.trace_id", span.trace_id),
    ]
    actor = span.actor
    if actor:
        items.extend((f"spanline.actor.{key}", value) for key, value in actor.items())
    if span.type != "span":
        items.append(("spanline.chain", chain(frames_of(span))))
    items.extend((f"spanline.records.{k}", v) for k, v in jsonable(span.records).items())
    items.extend((f"spanline.meta.{k}", v) for k, v in jsonable(span.meta).items())
    return items


def resource_attributes(resource: Mapping[str, str]) -> dict[str, str]:
    """The resource as exported: the configured attributes plus ``telemetry.sdk.*``."""
    return {
        "telemetry.sdk.name": "spanline",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": __version__,
        **resource,
    }


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
