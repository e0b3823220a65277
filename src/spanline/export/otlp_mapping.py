"""spanline spans as OTLP messages (wire types from ``opentelemetry-proto``).

The mapping (documented in ``docs/opentelemetry.md``):

* ids: the W3C trace id and span id the ``tr_``/``op_`` ids map to, as 16/8 bytes;
* kind: spanline's OpenTelemetry numbering + 1 (OTLP reserves 0 for "unspecified");
* status: UNSET/OK/ERROR with the error description;
* events: name, time, attributes -- exceptions are ``exception`` events with
  ``exception.type``/``message``/``stacktrace`` per the semantic conventions;
* attributes: any value as an OTLP ``AnyValue`` (maps and lists included);
* spanline's own data, under the ``spanline.`` namespace: ``spanline.id``,
  ``spanline.trace_id``, ``spanline.type``, ``spanline.actor.<key>``,
  ``spanline.chain`` (operations and handlers), ``spanline.records.<key>`` and
  ``spanline.meta.<key>``;
* resource: ``service.name`` and ``OTEL_RESOURCE_ATTRIBUTES`` plus the
  ``telemetry.sdk.*`` attributes; one scope, ``spanline``.

Importing this module needs the ``otlp`` extra (``pip install 'spanline[otlp]'``).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Status
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan

from spanline._version import __version__
from spanline.core.jsonsafe import jsonable
from spanline.core.span import Span
from spanline.export.record import resource_attributes, spanline_attributes

__all__ = ["any_value", "as_json", "encode_request", "resource_attributes", "span_to_otlp"]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_MAX_DEPTH = 16
_SCOPE = InstrumentationScope(name="spanline", version=__version__)


def _text(value: str) -> str:
    """The text with lone surrogates replaced (protobuf strings must be valid UTF-8)."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace").decode()
    return value


def any_value(value: object, _depth: int = 0) -> AnyValue:  # noqa: PLR0911 - one exit per type
    """Any Python value as an OTLP ``AnyValue`` (never raises)."""
    if isinstance(value, str):
        return AnyValue(string_value=_text(value))
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            return AnyValue(int_value=value)
        return AnyValue(string_value=str(jsonable(value)))
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if value is None:
        return AnyValue()
    if isinstance(value, bytes | bytearray):
        return AnyValue(bytes_value=bytes(value))
    if _depth < _MAX_DEPTH:
        if isinstance(value, Mapping):
            return AnyValue(
                kvlist_value=KeyValueList(
                    values=[
                        KeyValue(key=_text(str(k)), value=any_value(v, _depth + 1))
                        for k, v in value.items()
                    ]
                )
            )
        if isinstance(value, list | tuple | set | frozenset):
            return AnyValue(
                array_value=ArrayValue(values=[any_value(v, _depth + 1) for v in value])
            )
    try:
        return AnyValue(string_value=repr(value))
    except Exception:  # noqa: BLE001 - a broken __repr__ must not break export
        return AnyValue(string_value=f"<unrepresentable {type(value).__qualname__}>")


def _key_values(items: Iterable[tuple[str, object]]) -> list[KeyValue]:
    return [KeyValue(key=_text(key), value=any_value(value)) for key, value in items]


def span_to_otlp(span: Span) -> OtlpSpan:
    """One finished span as an OTLP ``Span``."""
    parent = span.parent_span_id
    status_message = span.status_message
    return OtlpSpan(
        trace_id=bytes.fromhex(span.trace_hex or ""),
        span_id=span.span_id.to_bytes(8, "big"),
        parent_span_id=parent.to_bytes(8, "big") if parent else b"",
        name=_text(span.name),
        kind=cast("OtlpSpan.SpanKind.ValueType", int(span.kind) + 1),
        start_time_unix_nano=span.start_ns,
        end_time_unix_nano=span.end_ns,
        attributes=_key_values([*span.attributes.items(), *spanline_attributes(span)]),
        events=[
            OtlpSpan.Event(
                time_unix_nano=e.timestamp_ns,
                name=_text(e.name),
                attributes=_key_values(e.attributes.items()),
            )
            for e in span.events
        ],
        status=Status(
            code=cast("Status.StatusCode.ValueType", int(span.status)),
            message=_text(status_message or ""),
        ),
    )


def _encodable(spans: Sequence[Span]) -> list[OtlpSpan]:
    out = []
    for span in spans:
        try:
            out.append(span_to_otlp(span))
        except Exception:  # noqa: BLE001, S112 - one bad span must not lose the batch
            continue
    return out


def encode_request(spans: Sequence[Span], resource: Mapping[str, str]) -> ExportTraceServiceRequest:
    """An ``ExportTraceServiceRequest`` carrying ``spans`` under one resource and scope."""
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=_key_values(resource_attributes(resource).items())),
                scope_spans=[ScopeSpans(scope=_SCOPE, spans=_encodable(spans))],
            )
        ]
    )


def as_json(request: ExportTraceServiceRequest) -> dict[str, Any]:
    """The request in the OTLP/JSON encoding: lowerCamelCase names, enums as integers,
    64-bit integers as strings, and trace/span ids as hex (not base64)."""
    from google.protobuf.json_format import MessageToDict

    data: dict[str, Any] = MessageToDict(request, use_integers_for_enums=True)
    for resource_spans in data.get("resourceSpans", ()):
        for scope_spans in resource_spans.get("scopeSpans", ()):
            for span in scope_spans.get("spans", ()):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = _b64_to_hex(span[key])
    return data


def _b64_to_hex(text: str) -> str:
    return base64.b64decode(text).hex()
