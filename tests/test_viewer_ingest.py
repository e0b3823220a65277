"""The OTLP/HTTP receiver's body handling: encodings, limits and error answers.

These call :func:`spanline.viewer.ingest.handle_export` directly with real OTLP
bodies (built by opentelemetry-proto, and by the OpenTelemetry SDK's own encoder);
the end-to-end tests in test_viewer_server.py send the same over real HTTP."""

from __future__ import annotations

import gzip
import json

from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from spanline.viewer.ingest import IngestResult, handle_export

TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")


def request(names: list[str]) -> ExportTraceServiceRequest:
    spans = [
        Span(
            trace_id=TRACE,
            span_id=(i + 1).to_bytes(8, "big"),
            name=name,
            start_time_unix_nano=1_700_000_000_000_000_000 + i,
            end_time_unix_nano=1_700_000_000_000_100_000 + i,
            attributes=[KeyValue(key="k", value=AnyValue(int_value=i))],
        )
        for i, name in enumerate(names)
    ]
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])]
    )


class Sink:
    def __init__(self, reject: int = 0, fail: bool = False) -> None:
        self.received: list[ExportTraceServiceRequest] = []
        self.reject = reject
        self.fail = fail

    def __call__(self, message: ExportTraceServiceRequest) -> tuple[int, str]:
        if self.fail:
            raise OSError("disk full")
        self.received.append(message)
        return self.reject, "one span had no name" if self.reject else ""


def status_of(result: IngestResult) -> status_pb2.Status:
    status = status_pb2.Status()
    if result.content_type == "application/json":
        json_format.Parse(result.body, status)
    else:
        status.ParseFromString(result.body)
    return status


def test_protobuf_body_reaches_the_sink() -> None:
    sink = Sink()
    body = request(["a", "b"]).SerializeToString()
    result = handle_export(body, "application/x-protobuf", None, sink)
    assert (result.status, result.accepted, result.rejected) == (200, 2, 0)
    assert [s.name for s in sink.received[0].resource_spans[0].scope_spans[0].spans] == ["a", "b"]
    response = ExportTraceServiceResponse.FromString(result.body)
    assert not response.HasField("partial_success")


def test_json_body_with_hex_ids() -> None:
    sink = Sink()
    document = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": TRACE.hex(),
                                "spanId": "00f067aa0ba902b7",
                                "parentSpanId": "",
                                "name": "GET /orders/{id}",
                                "kind": 2,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000000001000000",
                                "futureField": {"ignored": True},
                            }
                        ]
                    }
                ]
            }
        ]
    }
    result = handle_export(json.dumps(document).encode(), "application/json", None, sink)
    assert result.status == 200, result.body
    span = sink.received[0].resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id == TRACE
    assert span.span_id.hex() == "00f067aa0ba902b7"
    assert span.kind == Span.SPAN_KIND_SERVER
    assert json.loads(result.body) == {}


def test_gzip_body_and_the_sdk_encoder() -> None:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("from the sdk"):
        pass
    body = gzip.compress(encode_spans(memory.get_finished_spans()).SerializeToString())
    sink = Sink()
    result = handle_export(body, "application/x-protobuf", "gzip", sink)
    assert result.status == 200
    assert sink.received[0].resource_spans[0].scope_spans[0].spans[0].name == "from the sdk"


def test_partial_success_is_reported() -> None:
    result = handle_export(
        request(["a", "b", "c"]).SerializeToString(), "application/x-protobuf", None, Sink(1)
    )
    response = ExportTraceServiceResponse.FromString(result.body)
    assert (result.status, result.accepted, result.rejected) == (200, 2, 1)
    assert response.partial_success.rejected_spans == 1
    assert response.partial_success.error_message == "one span had no name"


def test_malformed_bodies_are_400_with_a_reason() -> None:
    sink = Sink()
    cases = [
        (b"\xff\xff\xff", "application/x-protobuf", None, "not a valid OTLP protobuf"),
        (b"{not json", "application/json", None, "not valid JSON"),
        (b"[1, 2]", "application/json", None, "must be a JSON object"),
        (b'{"resourceSpans": 7}', "application/json", None, "not a valid OTLP JSON"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
            "application/json",
            None,
            "traceId is not hex",
        ),
        (b"plainly not gzip", "application/x-protobuf", "gzip", "not valid gzip"),
        (gzip.compress(b"x" * 100)[:-8], "application/x-protobuf", "gzip", "truncated"),
    ]
    for body, content_type, encoding, reason in cases:
        result = handle_export(body, content_type, encoding, sink)
        assert result.status == 400, (body, result)
        assert reason in status_of(result).message, (reason, status_of(result).message)
    assert sink.received == []


def test_unsupported_media_type_and_encoding_are_415() -> None:
    body = request(["a"]).SerializeToString()
    assert handle_export(body, "text/plain", None, Sink()).status == 415
    result = handle_export(body, "application/x-protobuf", "br", Sink())
    assert result.status == 415
    assert "Content-Encoding" in status_of(result).message


def test_size_limit_applies_before_and_after_decompression() -> None:
    body = request(["a" * 2000]).SerializeToString()
    assert handle_export(body, "application/x-protobuf", None, Sink(), max_body=1000).status == 413
    bomb = gzip.compress(b"\x00" * 5_000_000)  # 5 MB of zeros in ~5 kB
    result = handle_export(bomb, "application/x-protobuf", "gzip", Sink(), max_body=1_000_000)
    assert result.status == 413
    assert "after decompression" in status_of(result).message


def test_a_failing_sink_is_503_so_clients_retry() -> None:
    body = request(["a"]).SerializeToString()
    result = handle_export(body, "application/x-protobuf", None, Sink(fail=True))
    assert result.status == 503
    assert "disk full" in status_of(result).message


def test_deeply_nested_json_does_not_crash() -> None:
    body = b'{"resourceSpans": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert handle_export(body, "application/json", None, Sink()).status == 400
