"""OTLP into store rows: spanline's own spans round-trip, spans from the real
OpenTelemetry SDK (another service) are stored and found by their W3C ids, and
malformed spans are rejected one by one with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

import spanline
import spanline.store
from spanline.export.otlp_mapping import encode_request
from spanline.store import StoreWriter, rows_from_otlp, rows_from_spans
from spanline.testing import Capture
from tests.test_store_support import writers

__all__ = ["writers"]  # a fixture, used through its name


def test_spanline_spans_round_trip_through_otlp(spanline_capture: Capture) -> None:
    @spanline.operation
    def place_order() -> None:
        spanline.record("order", {"id": 7, "items": [1, 2]})
        with spanline.span("db.query", attributes={"db.rows": 3, "tags": ["a", "b"]}) as s:
            s.add_event("retry", {"attempt": 2})

    with spanline.start_trace(actor={"type": "user", "id": 42, "via": "ios"}):
        place_order()
    spans = spanline_capture.spans
    wire = encode_request(spans, {"service.name": "shop"}).SerializeToString()
    converted = rows_from_otlp(wire)
    assert (converted.rejected, converted.message) == (0, "")
    direct = rows_from_spans(spans, "shop")
    for got, want in zip(converted.rows, direct, strict=True):
        got_d, want_d = got.to_dict(), want.to_dict()
        # OTLP carries the chain as text, not the frames themselves
        assert got_d.pop("frames") == []
        want_d.pop("frames")
        got_d["attributes"].pop("spanline.chain", None)
        assert got_d == want_d


@pytest.fixture
def otel_request() -> ExportTraceServiceRequest:
    """Spans made by the real OpenTelemetry SDK in a service called payments."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "payments"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("payments-app")
    with tracer.start_as_current_span("POST /charge", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.response.status_code", 502)
        with tracer.start_as_current_span("stripe.charge", kind=SpanKind.CLIENT) as child:
            child.set_attribute("amount", 12.5)
            child.add_event("sent", {"bytes": 120})
            child.set_status(Status(StatusCode.ERROR, "card declined"))
    provider.shutdown()
    return encode_spans(exporter.get_finished_spans())


def test_spans_from_another_tracer_are_stored_and_found_by_their_w3c_ids(
    otel_request: ExportTraceServiceRequest, tmp_path: Path, writers: list[StoreWriter]
) -> None:
    converted = rows_from_otlp(otel_request)
    assert converted.rejected == 0
    child, root = converted.rows
    assert (root.service, root.kind, root.parent_hex) == ("payments", "server", None)
    assert (child.kind, child.status, child.status_message) == ("client", "error", "card declined")
    assert child.parent_hex == root.span_hex
    assert child.parent_id == root.span_id  # linked: the parent came in the same request
    assert root.span_id.startswith("sp_")
    assert root.trace_id == root.trace_hex  # a foreign id has no tr_ form
    assert child.to_dict()["events"][0]["name"] == "sent"
    assert child.to_dict()["attributes"] == {"amount": 12.5}
    db = tmp_path / "ingest.db"
    writer = StoreWriter(db)
    writers.append(writer)
    writer.submit(converted.rows)
    assert writer.flush()
    with spanline.store.open(db) as store:
        roots = store.tree(root.trace_hex)
        assert [(n.span.name, n.depth) for n in roots[0].walk()] == [
            ("POST /charge", 0),
            ("stripe.charge", 1),
        ]
        assert store.span(child.span_id) is not None
        summary = store.traces(service="payments").items[0]
        assert (summary.root_name, summary.error, summary.span_count) == ("POST /charge", True, 2)


def _span(**fields: object) -> OtlpSpan:
    base: dict[str, object] = {
        "trace_id": bytes(range(1, 17)),
        "span_id": bytes(range(1, 9)),
        "name": "ok",
        "start_time_unix_nano": 1_700_000_000_000_000_000,
        "end_time_unix_nano": 1_700_000_000_001_000_000,
    }
    base.update(fields)
    return OtlpSpan(**base)  # type: ignore[arg-type]


def test_malformed_spans_are_rejected_alone_with_reasons() -> None:
    nested = AnyValue()
    nested.kvlist_value.values.append(KeyValue(key="deep", value=AnyValue(bytes_value=b"\x01")))
    good = _span(attributes=[KeyValue(key="map", value=nested)], kind=99)
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                scope_spans=[
                    ScopeSpans(
                        spans=[
                            good,
                            _span(name="short", trace_id=b"\x01" * 8),
                            _span(name="zero", span_id=b"\x00" * 8),
                            _span(name="orphan", parent_span_id=b"\x01\x02"),
                            _span(name="timeless", start_time_unix_nano=0),
                            _span(name="backwards", end_time_unix_nano=1),
                        ]
                    )
                ]
            )
        ]
    )
    converted = rows_from_otlp(request)
    assert [r.name for r in converted.rows] == ["ok", "backwards"]
    assert converted.rows[0].service is None
    assert converted.rows[0].kind == "internal"  # an unknown kind
    assert converted.rows[0].to_dict()["attributes"] == {"map": {"deep": "01"}}
    assert converted.rows[1].duration_ns == 0  # an end before the start
    assert converted.rejected == 4
    assert "span 'short': trace_id must be 16 bytes" in converted.message
    assert "span 'zero': span_id must be 8 bytes" in converted.message
    assert "span 'orphan': parent_span_id" in converted.message
    assert "span 'timeless': start/end times out of range" in converted.message


def test_bytes_that_are_not_otlp_are_a_clear_error() -> None:
    with pytest.raises(ValueError, match="not an OTLP ExportTraceServiceRequest"):
        rows_from_otlp(b"\xff\xff\xff not protobuf")
