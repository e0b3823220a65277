from __future__ import annotations

import io
import json
import logging

import structlog

import spanline
from spanline.integrations.logs import SpanlineLogFilter, structlog_processor
from spanline.testing import Capture


def test_stdlib_filter_puts_trace_context_on_every_record(spanline_capture: Capture) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SpanlineLogFilter())
    handler.setFormatter(
        logging.Formatter("%(trace_id)s|%(span_id)s|%(op_id)s|%(actor)s|%(message)s")
    )
    log = logging.getLogger("test.spanline.logs")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        log.info("outside")

        class Place(spanline.Operation):
            def perform(self) -> spanline.Span:
                with spanline.span("charge") as charge:
                    log.info("inside")
                assert isinstance(charge, spanline.Span)
                return charge

        with spanline.start_trace(actor={"type": "user", "id": 42}) as trace_id:
            charge = Place().call()
        log.info("explicit", extra={"trace_id": "mine"})
    finally:
        log.removeHandler(handler)
    outside, inside, explicit = stream.getvalue().splitlines()
    assert outside == "None|None|None|None|outside"
    place = spanline_capture.find("Place")
    assert inside == f"{trace_id}|{charge.span_hex}|{place.id}|user:42|inside"
    assert explicit.startswith("mine|")


def test_structlog_processor() -> None:
    out = io.StringIO()
    structlog.configure(
        processors=[structlog_processor, structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    try:
        log = structlog.get_logger()
        log.info("outside")
        with spanline.start_trace(actor=spanline.system("nightly")) as trace_id:
            with spanline.span("job"):
                log.info("inside", trace_id_seen=True)
    finally:
        structlog.reset_defaults()
    outside, inside = (json.loads(line) for line in out.getvalue().splitlines())
    assert outside == {"event": "outside"}
    assert inside["trace_id"] == trace_id
    assert inside["actor"] == "system:nightly"
    assert len(inside["span_id"]) == 16
    assert "op_id" not in inside  # no operation on the stack
