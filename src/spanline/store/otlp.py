"""Decoded OTLP spans as store rows: what the viewer's receiver and ``import`` store.

Spans from any tracer are accepted: the ids are the W3C ones OTLP carries, the
service is the resource's ``service.name``.  Spans that spanline exported carry its
own data as ``spanline.*`` attributes (see :mod:`spanline.export.otlp_mapping`),
which is moved back into its columns: ``spanline.id``, ``spanline.type`` and
``spanline.trace_id`` into the ids and type, ``spanline.actor.<key>`` into the actor,
``spanline.records.<key>`` and ``spanline.meta.<key>`` into records and meta
(``spanline.chain``, the rendered chain, stays an attribute: OTLP does not carry
the frames themselves).  A span without a spanline id gets an ``sp_`` id made from
its start time and W3C span id, and a ``tr_`` trace id when its W3C trace id has the
shape spanline generates -- so either id form finds it.  ``parent_id`` is filled when
the parent is in the same request (OTLP names parents by W3C id only).

Malformed spans (ids of the wrong length or all zero, times out of range) are
counted and described, never raised: one bad span does not lose its request.
Needs ``opentelemetry-proto`` only to decode bytes (``pip install 'spanline[otlp]'``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from spanline.core import ids
from spanline.store.row import KINDS, STATUSES, TYPES, SpanRow, json_text

if TYPE_CHECKING:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan

__all__ = ["OtlpRows", "rows_from_otlp"]

_MAX_DEPTH = 16
_MAX_NS = 2**63 - 1  # what a SQLite INTEGER / PostgreSQL bigint holds
_MAX_PROBLEMS = 10
_SPANLINE = "spanline."


@dataclass
class OtlpRows:
    """The rows of one request, how many spans were rejected, and why (the first
    few reasons, each naming the span)."""

    rows: list[SpanRow] = field(default_factory=list)
    rejected: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        """One line for an OTLP partial-success answer (empty when all were kept)."""
        if not self.rejected:
            return ""
        more = self.rejected - len(self.problems)
        text = "; ".join(self.problems)
        return f"{self.rejected} spans rejected: {text}" + (f" (and {more} more)" if more else "")

    def reject(self, problem: str) -> None:
        """Count a rejected span and keep the first reasons."""
        self.rejected += 1
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(problem)


def rows_from_otlp(request: ExportTraceServiceRequest | bytes) -> OtlpRows:
    """Rows for every valid span of an OTLP ``ExportTraceServiceRequest`` (or its
    protobuf bytes; undecodable bytes raise ``ValueError``)."""
    if isinstance(request, bytes | bytearray | memoryview):
        request = _decode(bytes(request))
    result = OtlpRows()
    for resource_spans in request.resource_spans:
        service = None
        for item in resource_spans.resource.attributes:
            if item.key == "service.name" and item.value.HasField("string_value"):
                service = item.value.string_value
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                try:
                    row = _row(span, service, result)
                except Exception as error:  # noqa: BLE001 - one bad span must not lose the rest
                    result.reject(f"span {span.name[:80]!r}: {error!r}")
                    continue
                if row is not None:
                    result.rows.append(row)
    _link_parents(result.rows)
    return result


def _link_parents(rows: list[SpanRow]) -> None:
    """Fill ``parent_id`` where the parent came in the same request."""
    by_hex = {row.span_hex: row.span_id for row in rows}
    for index, row in enumerate(rows):
        if row.parent_hex is not None and row.parent_hex in by_hex:
            rows[index] = row._replace(parent_id=by_hex[row.parent_hex])


def _decode(body: bytes) -> ExportTraceServiceRequest:
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    try:
        return ExportTraceServiceRequest.FromString(body)
    except DecodeError as error:
        raise ValueError(f"not an OTLP ExportTraceServiceRequest: {error}") from None


def _problem(span: OtlpSpan) -> str | None:
    """Why the span cannot be stored, or ``None``."""
    trace_bytes, span_bytes, parent_bytes = span.trace_id, span.span_id, span.parent_span_id
    if len(trace_bytes) != 16 or not any(trace_bytes):
        return "trace_id must be 16 bytes, not all zero"
    if len(span_bytes) != 8 or not any(span_bytes):
        return "span_id must be 8 bytes, not all zero"
    if parent_bytes and (len(parent_bytes) != 8 or not any(parent_bytes)):
        return "parent_span_id must be empty or 8 bytes, not all zero"
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    if not 0 < start <= _MAX_NS or end > _MAX_NS:
        return f"start/end times out of range ({start}, {end})"
    return None


_Parts = tuple[dict[str, Any], dict[str, str], dict[str, Any], dict[str, Any], dict[str, Any]]


_OWN = frozenset({"spanline.id", "spanline.type", "spanline.trace_id"})


def _split(span: OtlpSpan) -> _Parts:
    """Attributes, and spanline's own data moved out of them: actor, records, meta
    and the ``spanline.id``/``type``/``trace_id`` values."""
    attributes: dict[str, Any] = {}
    actor: dict[str, str] = {}
    records: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    own: dict[str, Any] = {}
    for item in span.attributes:
        key = item.key
        value = _value(item.value)
        if not key.startswith(_SPANLINE) or key == "spanline.chain":
            attributes[key] = value
        elif key.startswith("spanline.actor."):
            actor[key[15:]] = value if isinstance(value, str) else json_text(value) or ""
        elif key.startswith("spanline.records."):
            records[key[17:]] = value
        elif key.startswith("spanline.meta."):
            meta[key[14:]] = value
        elif key in _OWN:
            own[key] = value
        else:  # spanline.event.name and others without a column stay attributes
            attributes[key] = value
    return attributes, (actor if actor.get("type") else {}), records, meta, own


def _row(span: OtlpSpan, service: str | None, result: OtlpRows) -> SpanRow | None:
    problem = _problem(span)
    if problem is not None:
        result.reject(f"span {span.name[:80]!r}: {problem}")
        return None
    start = span.start_time_unix_nano
    end = max(start, span.end_time_unix_nano)  # an end before the start reads as zero length
    trace_hex, span_hex = span.trace_id.hex(), span.span_id.hex()
    parent_bytes = span.parent_span_id
    attributes, actor, records, meta, own = _split(span)
    span_type = own.get("spanline.type")
    if span_type not in TYPES:
        span_type = "span"
    span_id = own.get("spanline.id")
    if not (
        isinstance(span_id, str)
        and span_id[:3] in ("sp_", "op_", "hd_")
        and ids.is_valid_id(span_id)
        and ids.decode_span_id(span_id) == int(span_hex, 16)
    ):
        span_id = ids.format_id("sp_", start, int(span_hex, 16))
    trace_id = own.get("spanline.trace_id")
    if not (
        isinstance(trace_id, str)
        and 0 < len(trace_id) <= 256
        and ids.trace_hex(ids.trace_int_from_id(trace_id)) == trace_hex
    ):
        trace_id = ids.trace_id_from_int(int(trace_hex, 16))
    kind = span.kind - 1 if 0 < span.kind <= len(KINDS) else 0
    code = span.status.code if 0 <= span.status.code < len(STATUSES) else 0
    events = [
        {
            "name": event.name,
            "timestamp_ns": event.time_unix_nano,
            "attributes": {a.key: _value(a.value) for a in event.attributes},
        }
        for event in span.events
    ]
    return tuple.__new__(
        SpanRow,
        (
            trace_hex,
            span_hex,
            parent_bytes.hex() if parent_bytes else None,
            trace_id,
            span_id,
            None,  # OTLP names the parent by W3C id only; see _link_parents
            span.name,
            span_type,
            KINDS[kind],
            STATUSES[code],
            (span.status.message or None) if code == 2 else None,
            start,
            end,
            end - start,
            service,
            actor.get("type"),
            (actor.get("id") or actor.get("name") or actor.get("source")) if actor else None,
            json_text(actor),
            None,
            json_text(attributes),
            json_text(records),
            json_text(meta),
            json_text(events),
        ),
    )


def _value(value: AnyValue, depth: int = 0) -> Any:  # noqa: PLR0911 - one exit per type
    """An OTLP ``AnyValue`` as a JSON-ready Python value (bytes as hex)."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return value.bool_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "bytes_value":
        return value.bytes_value.hex()
    if which is None:
        return None
    if depth >= _MAX_DEPTH:
        return "<nested too deep>"
    if which == "array_value":
        return [_value(v, depth + 1) for v in value.array_value.values]
    return _pairs(value.kvlist_value.values, depth + 1)


def _pairs(items: Iterable[KeyValue], depth: int) -> dict[str, Any]:
    return {item.key: _value(item.value, depth) for item in items}
