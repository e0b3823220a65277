"""End to end against a real third-party OTLP receiver (Arize Phoenix, from PyPI):
spans leave through the OTLP exporter, cross a real proxy that first answers 503,
and are read back from Phoenix's own API with the ids spanline gave them.

The 503s come from our proxy on 127.0.0.1 because Phoenix cannot be told to answer
them; everything after the proxy is Phoenix's own code."""

from __future__ import annotations

import time
from pathlib import Path

import spanline
from spanline.export.otlp_http import OtlpHttpExporter
from spanline.testing import Capture
from tests.phoenix import phoenix_server, spans_in
from tests.receiver import ForwardingProxy


def test_spans_arrive_in_phoenix_after_503_retries(
    spanline_capture: Capture, tmp_path: Path
) -> None:
    spanline.configure(service_name="spanline-e2e")

    class PlaceOrder(spanline.Operation):
        def perform(self) -> None:
            with spanline.span("stage:charge") as charge:
                charge.set_attribute("amount_cents", 1299)
                spanline.record("provider", "stripe")

    with spanline.start_trace(actor={"type": "user", "id": 42}):
        PlaceOrder().call()
    root = spanline.tracer.last_completed
    assert root is not None
    charge = root.children[0]

    with phoenix_server(tmp_path) as base:
        proxy = ForwardingProxy(base + "/v1/traces").start()
        proxy.plan = [(503, {"Retry-After": "0"}, b"warming up")] * 2
        try:
            exporter = OtlpHttpExporter(endpoint=proxy.endpoint, timeout_millis=20_000)
            assert exporter.export([charge, root]) is spanline.export.ExportResult.SUCCESS
            exporter.shutdown()
            assert exporter.stats()["retries"] == 2
            assert [r.status for r in proxy.received] == [503, 503, 200]
            stored: list[dict[str, object]] = []
            deadline = time.monotonic() + 60  # Phoenix ingests asynchronously
            while time.monotonic() < deadline:
                stored = spans_in(base)
                if len(stored) == 2:
                    break
                time.sleep(0.25)
        finally:
            proxy.stop()

    by_name = {s["name"]: s for s in stored}
    assert set(by_name) == {"PlaceOrder", "stage:charge"}
    place, stage = by_name["PlaceOrder"], by_name["stage:charge"]
    assert place["context"] == {"trace_id": root.trace_hex, "span_id": root.span_hex}
    assert stage["context"] == {"trace_id": root.trace_hex, "span_id": charge.span_hex}
    assert stage["parent_id"] == root.span_hex
    attributes = stage["attributes"]
    assert isinstance(attributes, dict)
    assert attributes["spanline.id"] == charge.id
    assert attributes["spanline.trace_id"] == root.trace_id
    assert attributes["spanline.actor.id"] == "42"
    assert attributes["amount_cents"] == 1299
    place_attributes = place["attributes"]
    assert isinstance(place_attributes, dict)
    assert str(place_attributes["spanline.chain"]).startswith("user:42 > PlaceOrder(op_")
