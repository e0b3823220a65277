"""Shared by the viewer tests: a store seeded with real spanline spans, and the real
viewer (uvicorn) serving it on 127.0.0.1."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import uvicorn

import spanline
import spanline.testing
from spanline.store import StoreWriter
from spanline.viewer.serve import build
from tests.receiver import free_port

XSS = "<img src=x onerror=alert(1)>"


class PlaceOrder(spanline.Operation):
    operation_name = "orders.Place"

    def perform(self) -> None:
        with spanline.span("stage:price", context={"product": "book"}) as stage:
            stage.record("amount_cents", 1299)
        with spanline.span("db.SELECT", meta={"table": "orders"}):
            spanline.record("rows", 3)
        if self.params.get("fail"):
            raise ValueError("card declined")


def seed_store(path: Path) -> dict[str, str]:
    """Three traces: user:42 places an order, user:7's order fails, and a span named
    like an XSS payload; returns their trace ids by role."""
    spanline.testing.reset_all()
    capture = spanline.testing.Capture()
    spanline.tracer.add_processor(capture)
    ids: dict[str, str] = {}
    with spanline.start_trace(actor={"type": "user", "id": 42}) as trace_id:
        PlaceOrder().call()
    ids["ok"] = trace_id
    with spanline.start_trace(actor={"type": "user", "id": 7}) as trace_id:
        with contextlib.suppress(ValueError):
            PlaceOrder(fail=True).call()
    ids["error"] = trace_id
    with spanline.start_trace(actor={"type": "user", "id": 9}) as trace_id:
        with spanline.span(XSS, attributes={XSS: XSS}) as span:
            span.record(XSS, XSS)
    ids["xss"] = trace_id
    spanline.testing.reset_all()
    writer = StoreWriter(str(path))
    assert writer.submit_spans(capture.spans, service="shop", wait_s=30)
    writer.close()
    return ids


@contextlib.contextmanager
def viewer(
    store: Path, *, host: str = "127.0.0.1", token: str | None = None, max_body: int = 16 << 20
) -> Iterator[str]:
    """The real viewer on a free port; yields its base URL.  ``host`` decides the
    security mode (loopback or token) -- it always listens on 127.0.0.1."""
    port = free_port()
    app, source, _ = build(str(store), host=host, port=port, token=token, max_body=max_body)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="critical",
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(1000):
        if server.started:
            break
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        source.close()
