"""The file formats ``export`` writes and ``import`` reads.

* **spanline JSON**: ``{"spanline": "rows", "version": 1, "spans": [...]}``, each
  span a store row's :meth:`~spanline.store.SpanRow.to_dict` -- every column,
  lossless.
* **OTLP JSON**: an OTLP/HTTP ``ExportTraceServiceRequest`` in its JSON encoding
  (hex trace and span ids), one resource per service.  spanline's own columns travel
  as ``spanline.*`` attributes (as :mod:`spanline.export.otlp_mapping` writes them),
  which :func:`spanline.store.rows_from_otlp` moves back into columns; only the
  operation frames (``frames``) are not carried.
* **OTLP protobuf**: the same request in binary (``import`` only).

OTLP needs ``opentelemetry-proto`` (``pip install 'spanline[otlp]'``), imported
only when used.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from spanline.store import COLUMNS, SpanRow, json_text, rows_from_otlp
from spanline.store.row import KINDS, STATUSES

if TYPE_CHECKING:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

__all__ = ["Loaded", "load", "otlp_document", "rows_document"]

ROWS_FORMAT = "rows"
ROWS_VERSION = 1
_JSON_COLUMNS = ("actor", "frames", "attributes", "records", "meta", "events")
_INT_COLUMNS = ("start_ns", "end_ns", "duration_ns")
_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def rows_document(rows: Sequence[SpanRow]) -> dict[str, Any]:
    """The spanline JSON document for ``rows``."""
    return {
        "spanline": ROWS_FORMAT,
        "version": ROWS_VERSION,
        "spans": [row.to_dict() for row in rows],
    }


def otlp_document(rows: Sequence[SpanRow]) -> dict[str, Any]:
    """``rows`` as an OTLP/JSON ``ExportTraceServiceRequest`` (hex ids)."""
    from spanline.export.otlp_mapping import as_json

    return as_json(_request(rows))


def _request(rows: Sequence[SpanRow]) -> ExportTraceServiceRequest:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans

    from spanline._version import __version__
    from spanline.export.otlp_mapping import resource_attributes

    by_service: dict[str | None, list[SpanRow]] = {}
    for row in rows:
        by_service.setdefault(row.service, []).append(row)
    scope = InstrumentationScope(name="spanline", version=__version__)
    request = ExportTraceServiceRequest()
    for service, group in by_service.items():
        resource = resource_attributes({"service.name": service} if service else {})
        request.resource_spans.append(
            ResourceSpans(
                resource=Resource(attributes=_key_values(resource.items())),
                scope_spans=[ScopeSpans(scope=scope, spans=[_span(row) for row in group])],
            )
        )
    return request


def _key_values(items: Any) -> list[Any]:
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue

    from spanline.export.otlp_mapping import any_value

    return [KeyValue(key=key, value=any_value(value)) for key, value in items]


def _span(row: SpanRow) -> Any:
    from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

    data = row.to_dict()
    attributes: list[tuple[str, object]] = list(data["attributes"].items())
    attributes += [
        ("spanline.id", row.span_id),
        ("spanline.type", row.type),
        ("spanline.trace_id", row.trace_id),
    ]
    attributes += [(f"spanline.actor.{k}", v) for k, v in (data["actor"] or {}).items()]
    attributes += [(f"spanline.records.{k}", v) for k, v in data["records"].items()]
    attributes += [(f"spanline.meta.{k}", v) for k, v in data["meta"].items()]
    events = [
        Span.Event(
            time_unix_nano=int(event.get("timestamp_ns") or row.start_ns),
            name=str(event.get("name", "")),
            attributes=_key_values((event.get("attributes") or {}).items()),
        )
        for event in data["events"]
        if isinstance(event, dict)
    ]
    kind = KINDS.index(row.kind) + 1 if row.kind in KINDS else 0
    code = STATUSES.index(row.status) if row.status in STATUSES else 0
    return Span(
        trace_id=bytes.fromhex(row.trace_hex),
        span_id=bytes.fromhex(row.span_hex),
        parent_span_id=bytes.fromhex(row.parent_hex) if row.parent_hex else b"",
        name=row.name,
        kind=kind,  # type: ignore[arg-type]
        start_time_unix_nano=row.start_ns,
        end_time_unix_nano=row.end_ns,
        attributes=_key_values(attributes),
        events=events,
        status=Status(code=code, message=row.status_message or ""),  # type: ignore[arg-type]
    )


class Loaded:
    """What a file held: its ``rows``, the ``format`` it was in, and how many spans
    were ``rejected`` and why (``problems``)."""

    def __init__(
        self, rows: list[SpanRow], format: str, rejected: int = 0, problems: str = ""
    ) -> None:
        self.rows = rows
        self.format = format
        self.rejected = rejected
        self.problems = problems


def load(data: bytes) -> Loaded:
    """Rows from the bytes of an export file (spanline JSON, OTLP JSON or OTLP
    protobuf); ``ValueError`` describing what is wrong otherwise."""
    head = data.lstrip()[:1]
    if head in (b"{", b"["):
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"not valid JSON: {error}") from None
        if isinstance(document, dict) and "resourceSpans" in document:
            converted = rows_from_otlp(_parse_otlp_json(document))
            return Loaded(converted.rows, "OTLP JSON", converted.rejected, converted.message)
        if isinstance(document, dict) and document.get("spanline") == ROWS_FORMAT:
            return Loaded(_rows(document), "spanline JSON")
        raise ValueError(
            "JSON that is neither spanline JSON (a 'spanline': 'rows' document from "
            "'spanline export --format json') nor OTLP JSON (with 'resourceSpans')"
        )
    try:
        converted = rows_from_otlp(data)
    except ImportError:
        raise ValueError(
            "not JSON; reading OTLP protobuf needs opentelemetry-proto: "
            "pip install 'spanline[otlp]'"
        ) from None
    if not converted.rows and not converted.rejected:
        raise ValueError("neither JSON nor an OTLP protobuf request with spans")
    return Loaded(converted.rows, "OTLP protobuf", converted.rejected, converted.message)


def _parse_otlp_json(document: dict[str, Any]) -> ExportTraceServiceRequest:
    try:
        from google.protobuf import json_format
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )
    except ImportError:
        raise ValueError(
            "reading OTLP JSON needs opentelemetry-proto: pip install 'spanline[otlp]'"
        ) from None
    for resource_spans in _list(document, "resourceSpans"):
        for scope_spans in _list(resource_spans, "scopeSpans"):
            for number, span in enumerate(_list(scope_spans, "spans")):
                for key in _ID_KEYS:
                    if isinstance(span, dict) and isinstance(span.get(key), str):
                        span[key] = _hex_to_base64(span[key], f"span {number} {key}")
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError) as error:
        raise ValueError(f"not an OTLP ExportTraceServiceRequest: {error}") from None
    return request


def _list(node: object, key: str) -> list[Any]:
    found = node.get(key, []) if isinstance(node, dict) else []
    return found if isinstance(found, list) else []


def _hex_to_base64(text: str, where: str) -> str:
    if not text:
        return text
    try:
        return base64.b64encode(bytes.fromhex(text)).decode()
    except ValueError:
        pass
    try:  # the protobuf JSON mapping's own form, base64, is accepted too
        base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError(f"{where} {text[:40]!r} is neither hex nor base64") from None
    return text


def _rows(document: dict[str, Any]) -> list[SpanRow]:
    if document.get("version") != ROWS_VERSION:
        raise ValueError(
            f"spanline JSON version {document.get('version')!r}; this spanline reads "
            f"version {ROWS_VERSION}"
        )
    spans = document.get("spans")
    if not isinstance(spans, list):
        raise ValueError("spanline JSON without a 'spans' list")
    return [_row(item, number) for number, item in enumerate(spans)]


def _row(item: object, number: int) -> SpanRow:
    if not isinstance(item, dict):
        raise ValueError(f"span {number} is not an object")
    missing = [column for column in COLUMNS if column not in item]
    if missing:
        raise ValueError(f"span {number} lacks {', '.join(missing)}")
    values = []
    for column in COLUMNS:
        value = item[column]
        if column in _JSON_COLUMNS:
            value = json_text(value)
        elif column in _INT_COLUMNS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"span {number} {column}={value!r} is not a time in ns")
        elif value is not None and not isinstance(value, str):
            raise ValueError(f"span {number} {column}={value!r} is not text")
        values.append(value)
    row = SpanRow(*values)
    for column in ("trace_hex", "span_hex", "trace_id", "span_id", "name"):
        if not getattr(row, column):
            raise ValueError(f"span {number} has an empty {column}")
    return row
