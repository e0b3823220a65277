"""The cardinality guard, run by a real batch processor into an in-memory exporter."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

import spanline
from spanline import SpanKind
from spanline.core import cardinality, config
from spanline.core.cardinality import CardinalityGuard, id_key, name_pattern
from spanline.export import BatchSpanProcessor, InMemorySpanExporter
from spanline.testing import Capture


@pytest.fixture
def exported(
    spanline_capture: Capture,
) -> Iterator[tuple[BatchSpanProcessor, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    processor = BatchSpanProcessor(exporter, schedule_delay_millis=60000)
    spanline.tracer.add_processor(processor)
    yield processor, exporter
    processor.shutdown(timeout_millis=2000)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "high cardinality" in r.getMessage()]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("GET /orders/12345", "GET /orders/{id}"),
        ("GET /users/3f2b8c1e-9a4d-4e5f-8b6a-1c2d3e4f5a6b/cart", "GET /users/{uuid}/cart"),
        ("fetch deadbeefcafe0123456789ab", "fetch {id}"),
        ("notify alice.smith+x@example.com", "notify {email}"),
        ("replay tr_2nFg7KxW1Bq3yTgH8sLk", "replay {id}"),
        ("run op_2nFg7KxW1Bq3yTgH8sLk step 12", "run {id} step 12"),
        ("invoice-2024-000017", "invoice-{id}-{id}"),
    ],
)
def test_id_looking_parts_become_placeholders(name: str, expected: str) -> None:
    assert name_pattern(name) == expected


@pytest.mark.parametrize(
    "name",
    ["GET /orders/{id}", "GET /orders/<int:order_id>", "process PlaceOrder", "step 12", "v2 api"],
)
def test_low_cardinality_names_pass(name: str) -> None:
    assert name_pattern(name) is None


def test_attribute_keys_that_look_like_or_name_ids() -> None:
    assert id_key("user.id") == "user.id"
    assert id_key("request_id") == "request_id"
    assert id_key("customerId") == "customerId"
    assert id_key("order.12345.status") == "order.{id}.status"
    for fine in ("order.status", "payment.method", "actor.shard", "valid", "paid"):
        assert id_key(fine) is None
    # OpenTelemetry's conventional names, and spanline's own, are exempt
    assert id_key("messaging.message.id") is None
    assert id_key("spanline.messaging.actor.path") is None


def test_processor_warns_once_per_pattern_and_counts_every_span(
    exported: tuple[BatchSpanProcessor, InMemorySpanExporter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    processor, exporter = exported
    caplog.set_level(logging.WARNING, logger="spanline")
    for order in (12345, 12346, 99999):
        with spanline.span(f"GET /orders/{order}"):
            pass
    with spanline.span("GET /orders/{id}"):
        pass
    assert processor.force_flush(5000)
    # exported unchanged, counted each time, named once
    assert [s.name for s in exporter.get_finished_spans()] == [
        "GET /orders/12345",
        "GET /orders/12346",
        "GET /orders/99999",
        "GET /orders/{id}",
    ]
    assert processor.stats()["high_cardinality_names"] == 3
    assert processor.stats()["high_cardinality_attributes"] == 0
    messages = _warnings(caplog)
    assert len(messages) == 1
    assert "'GET /orders/12345'" in messages[0]
    assert "'GET /orders/{id}'" in messages[0]


def test_the_check_runs_on_the_worker_thread_not_the_app_thread(
    exported: tuple[BatchSpanProcessor, InMemorySpanExporter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    processor, _ = exported
    caplog.set_level(logging.WARNING, logger="spanline")
    with spanline.span("charge 1234567"):
        pass
    assert _warnings(caplog) == []  # nothing happened on span end
    assert processor.force_flush(5000)
    [record] = [r for r in caplog.records if "high cardinality" in r.getMessage()]
    assert record.thread != threading.get_ident()
    assert record.threadName == "spanline-batch"


def test_messaging_spans_with_id_attribute_keys(
    exported: tuple[BatchSpanProcessor, InMemorySpanExporter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    processor, _ = exported
    caplog.set_level(logging.WARNING, logger="spanline")
    with spanline.span("send PlaceOrder", kind=SpanKind.PRODUCER) as producer:
        producer.set_attributes(
            {"messaging.message.id": "m-1", "user.id": 7, "order.status": "new"}
        )
    with spanline.span("process PlaceOrder") as consumer:
        consumer.set_attributes({"messaging.system": "pykka", "request_id": "r-1"})
    with spanline.span("process PlaceOrder", kind=SpanKind.CONSUMER) as clean:
        clean.set_attributes({"messaging.system": "pykka", "messaging.message.id": "m-2"})
    with spanline.span("handle", kind=SpanKind.SERVER) as server:
        server.set_attributes({"user.id": 7})  # not a messaging span: not checked
    assert processor.force_flush(5000)
    stats = processor.stats()
    assert stats["high_cardinality_attributes"] == 2
    assert stats["high_cardinality_names"] == 0
    messages = _warnings(caplog)
    assert len(messages) == 2
    assert "'user.id'" in messages[0]
    assert "'request_id'" in messages[1]


def test_switched_off_by_configure_and_by_environment(
    exported: tuple[BatchSpanProcessor, InMemorySpanExporter],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    processor, exporter = exported
    caplog.set_level(logging.WARNING, logger="spanline")
    spanline.configure(cardinality_warnings=False)
    with spanline.span("GET /orders/12345"):
        pass
    assert processor.force_flush(5000)
    config.reset_settings()
    monkeypatch.setenv("SPANLINE_CARDINALITY_WARNINGS", "false")
    spanline.configure()
    assert not spanline.settings.cardinality_warnings
    with spanline.span("GET /orders/12346"):
        pass
    assert processor.force_flush(5000)
    assert len(exporter.get_finished_spans()) == 2
    assert processor.stats()["high_cardinality_names"] == 0
    assert _warnings(caplog) == []
    monkeypatch.setenv("SPANLINE_CARDINALITY_WARNINGS", "maybe")
    with pytest.raises(spanline.ConfigError, match="SPANLINE_CARDINALITY_WARNINGS"):
        spanline.configure()
    with pytest.raises(spanline.ConfigError, match="cardinality_warnings"):
        spanline.configure(cardinality_warnings="no")  # type: ignore[arg-type]


def test_memory_is_bounded_and_a_failing_check_never_raises(
    spanline_capture: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="spanline")
    guard = CardinalityGuard(max_keys=3)
    spans = [spanline.Span(f"job{i}/1234") for i in range(5)]
    assert [guard.check(s) for s in spans] == [(True, False)] * 5
    assert len(guard._seen) == 3
    messages = [r.getMessage() for r in caplog.records]
    assert sum("high cardinality" in m for m in messages) == 3
    assert any("no longer named" in m for m in messages)
    guard.clear()
    assert guard._seen == set()
    assert cardinality.MAX_KEYS == 1000

    assert guard.check(object()) == (False, False)  # type: ignore[arg-type]
    assert any("cardinality check failed" in r.getMessage() for r in caplog.records)


def test_a_batch_counts_every_span_and_names_each_pattern_once(
    spanline_capture: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="spanline")
    guard = CardinalityGuard()
    batch: list[object] = [spanline.Span("GET /orders/12345") for _ in range(3)]
    batch.append(spanline.Span("GET /orders/{id}"))
    batch.append(object())  # a broken entry is reported and skipped, not fatal
    batch.append(
        spanline.Span("process Order", kind=SpanKind.CONSUMER, attributes={"order.id": "7"})
    )
    batch.append(
        spanline.Span("send Order", attributes={"messaging.system": "x", "customer_id": "9"})
    )
    assert guard.check_batch(batch) == (3, 2)  # type: ignore[arg-type]
    messages = [r.getMessage() for r in caplog.records]
    assert sum("looks like it contains an id" in m for m in messages) == 1
    assert sum("carries attribute" in m for m in messages) == 2
    assert any("cardinality check failed" in m for m in messages)
    assert guard.check_batch([]) == (0, 0)
