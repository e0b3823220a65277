from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

import spanline
from spanline.export import BatchSpanProcessor, ExportResult
from spanline.export.otlp_http import OtlpHttpExporter
from spanline.testing import Capture
from tests.receiver import Receiver, free_port


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(0).start()
    yield server
    server.stop()


_made: list[OtlpHttpExporter] = []


def exporter_for(**options: Any) -> OtlpHttpExporter:
    """An exporter that the autouse fixture below shuts down (closing its socket)."""
    exporter = OtlpHttpExporter(**options)
    _made.append(exporter)
    return exporter


@pytest.fixture(autouse=True)
def _shutdown_exporters() -> Iterator[None]:
    yield
    while _made:
        _made.pop().shutdown()


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in any_value.kvlist_value.values}
    return getattr(any_value, kind) if kind else None


def _attrs(items: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in items}


class PlaceOrder(spanline.Operation):
    def perform(self) -> None:
        with spanline.span("stage:charge", meta={"provider": "stripe"}) as charge:
            charge.set_attribute("http.route", "/orders/{id}")
            charge.set_attribute("tags", ["a", "b"])
            charge.set_attribute("limits", {"max": 3, "ratio": 0.5})
            charge.set_attribute("huge", 2**70)
            spanline.record("amount_cents", 1299)
            raise ValueError("card declined")


def _make_trace() -> spanline.Span:
    with spanline.start_trace(actor={"type": "user", "id": 42, "via": "ios"}):
        with contextlib.suppress(ValueError):
            PlaceOrder().call()
    root = spanline.tracer.last_completed
    assert root is not None
    return root


def test_protobuf_export_maps_everything(
    receiver: Receiver, spanline_capture: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s%3Dcret,x-team=shop")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,service.name=nope")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    spanline.configure(service_name="orders")
    root = _make_trace()
    charge = root.children[0]
    exporter = exporter_for(endpoint=receiver.endpoint)
    assert exporter.export([charge, root]) is ExportResult.SUCCESS
    (got,) = receiver.received
    assert got.path == "/v1/traces"
    assert got.headers["Content-Type"] == "application/x-protobuf"
    assert got.headers["Content-Encoding"] == "gzip"
    assert got.headers["x-api-key"] == "s=cret"
    assert got.headers["x-team"] == "shop"
    request = got.request()
    (resource_spans,) = request.resource_spans
    resource = _attrs(resource_spans.resource.attributes)
    assert resource["service.name"] == "orders"  # OTEL_SERVICE_NAME/service_name wins
    assert resource["deployment.environment"] == "test"
    assert resource["telemetry.sdk.name"] == "spanline"
    (scope_spans,) = resource_spans.scope_spans
    assert scope_spans.scope.name == "spanline"
    span, place = scope_spans.spans
    # W3C ids on the wire are exactly the ones the tr_/op_ ids map to
    assert span.trace_id.hex() == root.trace_hex
    assert span.span_id.hex() == charge.span_hex
    assert span.parent_span_id.hex() == root.span_hex
    assert place.parent_span_id == b""
    assert span.name == "stage:charge"
    assert span.kind == 1  # SPAN_KIND_INTERNAL
    assert span.start_time_unix_nano == charge.start_ns
    assert span.end_time_unix_nano == charge.end_ns
    assert span.status.code == 2
    assert span.status.message == "ValueError: card declined"
    attributes = _attrs(span.attributes)
    assert attributes["http.route"] == "/orders/{id}"
    assert attributes["tags"] == ["a", "b"]
    assert attributes["limits"] == {"max": 3, "ratio": 0.5}
    assert attributes["huge"] == str(2**70)  # beyond int64: sent as a string
    assert attributes["spanline.id"] == charge.id
    assert attributes["spanline.trace_id"] == root.trace_id
    assert attributes["spanline.type"] == "span"
    assert attributes["spanline.actor.type"] == "user"
    assert attributes["spanline.actor.id"] == "42"
    assert attributes["spanline.actor.via"] == "ios"
    assert attributes["spanline.records.amount_cents"] == 1299
    assert attributes["spanline.meta.provider"] == "stripe"
    (event,) = span.events
    assert event.name == "exception"
    event_attrs = _attrs(event.attributes)
    assert event_attrs["exception.type"] == "ValueError"
    assert event_attrs["exception.message"] == "card declined"
    assert "Traceback" in event_attrs["exception.stacktrace"]
    place_attrs = _attrs(place.attributes)
    assert place_attrs["spanline.type"] == "operation"
    assert place_attrs["spanline.chain"].startswith("user:42 via ios > PlaceOrder(op_")


def test_json_protocol(receiver: Receiver, spanline_capture: Capture) -> None:
    root = _make_trace()
    exporter = exporter_for(endpoint=receiver.endpoint, protocol="http/json", compression="none")
    assert exporter.export([root]) is ExportResult.SUCCESS
    (got,) = receiver.received
    assert got.headers["Content-Type"] == "application/json"
    assert "Content-Encoding" not in got.headers
    span = got.json()["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["traceId"] == root.trace_hex  # hex, not base64
    assert span["spanId"] == root.span_hex
    assert span["kind"] == 1
    assert span["startTimeUnixNano"] == str(root.start_ns)
    assert span["status"]["code"] == 2


def test_retries_503_honouring_retry_after_then_succeeds(
    receiver: Receiver, spanline_capture: Capture
) -> None:
    receiver.plan = [(503, {"Retry-After": "0"}, b"busy"), (503, {"Retry-After": "0"}, b"")]
    exporter = exporter_for(endpoint=receiver.endpoint, timeout_millis=10_000)
    assert exporter.export([_make_trace()]) is ExportResult.SUCCESS
    assert len(receiver.received) == 3
    assert exporter.stats()["retries"] == 2
    assert exporter.stats()["exported"] == 1


@pytest.mark.parametrize("status", [429, 502, 504])
def test_other_retryable_statuses_use_backoff(
    receiver: Receiver, spanline_capture: Capture, status: int
) -> None:
    receiver.plan = [(status, {}, b"")]
    exporter = exporter_for(endpoint=receiver.endpoint, timeout_millis=10_000)
    assert exporter.export([_make_trace()]) is ExportResult.SUCCESS
    assert len(receiver.received) == 2


@pytest.mark.parametrize("status", [400, 401, 404, 413, 500])
def test_non_retryable_status_fails_at_once_with_the_body_logged(
    receiver: Receiver,
    spanline_capture: Capture,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    receiver.plan = [(status, {}, b"bad things happened")]
    exporter = exporter_for(endpoint=receiver.endpoint)
    with caplog.at_level(logging.ERROR, logger="spanline"):
        assert exporter.export([_make_trace()]) is ExportResult.FAILURE
    assert len(receiver.received) == 1
    assert f"HTTP {status}" in caplog.text
    assert "bad things happened" in caplog.text
    assert exporter.stats()["failed"] == 1


def test_partial_success_is_counted_and_logged(
    receiver: Receiver, spanline_capture: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    response = ExportTraceServiceResponse()
    response.partial_success.rejected_spans = 1
    response.partial_success.error_message = "span too old"
    receiver.plan = [
        (200, {"Content-Type": "application/x-protobuf"}, response.SerializeToString())
    ]
    root = _make_trace()
    exporter = exporter_for(endpoint=receiver.endpoint)
    with caplog.at_level(logging.WARNING, logger="spanline"):
        assert exporter.export([root, root.children[0]]) is ExportResult.SUCCESS
    assert exporter.stats()["rejected"] == 1
    assert exporter.stats()["exported"] == 1
    assert "span too old" in caplog.text


def test_endpoint_down_then_back_within_the_deadline(spanline_capture: Capture) -> None:
    port = free_port()
    late = Receiver(port)
    starter = threading.Timer(0.6, late.start)
    starter.start()
    try:
        exporter = exporter_for(
            endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout_millis=15_000
        )
        assert exporter.export([_make_trace()]) is ExportResult.SUCCESS
        assert exporter.stats()["retries"] >= 1
        assert len(late.spans()) == 1
    finally:
        starter.join()
        late.stop()


def test_endpoint_down_fails_after_the_deadline(
    spanline_capture: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = exporter_for(
        endpoint=f"http://127.0.0.1:{free_port()}/v1/traces", timeout_millis=400
    )
    with caplog.at_level(logging.ERROR, logger="spanline"):
        assert exporter.export([_make_trace()]) is ExportResult.FAILURE
    assert exporter.stats()["failed"] == 1
    assert "could not export 1 spans" in caplog.text


def test_shutdown_interrupts_a_retry_wait(receiver: Receiver, spanline_capture: Capture) -> None:
    receiver.plan = [(503, {"Retry-After": "20"}, b"")]
    exporter = exporter_for(endpoint=receiver.endpoint, timeout_millis=60_000)
    result: list[ExportResult] = []
    worker = threading.Thread(target=lambda: result.append(exporter.export([_make_trace()])))
    worker.start()
    for _ in range(500):
        if receiver.received:
            break
        threading.Event().wait(0.01)
    exporter.shutdown()
    worker.join(10)
    assert not worker.is_alive()
    assert result == [ExportResult.FAILURE]
    assert exporter.export([_make_trace()]) is ExportResult.FAILURE  # refused after shutdown


def test_with_the_batch_processor_spans_queue_during_an_outage_and_arrive(
    spanline_capture: Capture,
) -> None:
    port = free_port()
    server = Receiver(port)
    server.plan = [(503, {"Retry-After": "0"}, b"")] * 3
    server.start()
    try:
        processor = BatchSpanProcessor(
            exporter_for(endpoint=server.endpoint, timeout_millis=10_000),
            max_export_batch_size=10,
            schedule_delay_millis=60_000,
        )
        spanline.tracer.add_processor(processor)
        for i in range(25):
            with spanline.span(f"s{i}"):
                pass
        assert processor.force_flush(20_000)
        assert sorted(s.name for s in server.spans()) == sorted(f"s{i}" for i in range(25))
        assert processor.stats()["exported"] == 25
        processor.shutdown()
    finally:
        server.stop()


def test_bad_options_are_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(spanline.ConfigError, match="gRPC is not supported"):
        OtlpHttpExporter(protocol="grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli")
    with pytest.raises(spanline.ConfigError, match="OTEL_EXPORTER_OTLP_COMPRESSION='brotli'"):
        OtlpHttpExporter()
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_COMPRESSION")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")
    with pytest.raises(spanline.ConfigError, match="OTEL_EXPORTER_OTLP_ENDPOINT"):
        OtlpHttpExporter()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
    assert exporter_for().options.endpoint == "http://collector:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://x.example/custom")
    assert exporter_for().options.endpoint == "https://x.example/custom"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "novalue")
    with pytest.raises(spanline.ConfigError, match="'novalue' is not key=value"):
        OtlpHttpExporter()


def test_retry_after_zero_still_backs_off(receiver: Receiver, spanline_capture: Capture) -> None:
    receiver.plan = [(503, {"Retry-After": "0"}, b"")] * 1000
    exporter = exporter_for(endpoint=receiver.endpoint, timeout_millis=1500)
    assert exporter.export([_make_trace()]) is ExportResult.FAILURE
    assert len(receiver.received) <= 8  # backoff from 0.25 s, not a tight loop


def test_retry_after_is_honoured_inside_the_deadline(
    receiver: Receiver, spanline_capture: Capture
) -> None:
    import email.utils
    import time as _time

    # a wait longer than what is left of the deadline: give up after one request
    receiver.plan = [(503, {"Retry-After": "5"}, b"")]
    exporter = exporter_for(endpoint=receiver.endpoint, timeout_millis=1000)
    assert exporter.export([_make_trace()]) is ExportResult.FAILURE
    assert len(receiver.received) == 1
    # the same with an HTTP date
    receiver.received.clear()
    later = email.utils.formatdate(_time.time() + 30, usegmt=True)
    receiver.plan = [(429, {"Retry-After": later}, b"")]
    assert exporter.export([_make_trace()]) is ExportResult.FAILURE
    assert len(receiver.received) == 1
    # a short one is waited out, then the retry succeeds
    receiver.received.clear()
    receiver.plan = [(503, {"Retry-After": "1"}, b"")]
    started = _time.monotonic()
    patient = exporter_for(endpoint=receiver.endpoint, timeout_millis=10_000)
    assert patient.export([_make_trace()]) is ExportResult.SUCCESS
    assert _time.monotonic() - started >= 1.0  # waited at least what the server asked
    assert len(receiver.received) == 2


def test_bodies_are_uncompressed_by_default(receiver: Receiver, spanline_capture: Capture) -> None:
    # as in the OpenTelemetry SDKs: gzip costs the app CPU, and a collector on the
    # same host or network does not need it (OTEL_EXPORTER_OTLP_COMPRESSION=gzip)
    with spanline.span("plain"):
        pass
    exporter = exporter_for(endpoint=receiver.endpoint)
    assert exporter.export(spanline_capture.spans) is ExportResult.SUCCESS
    (got,) = receiver.received
    assert "Content-Encoding" not in got.headers
    assert got.raw == got.body  # nothing to decompress
    assert got.request().resource_spans[0].scope_spans[0].spans[0].name == "plain"
