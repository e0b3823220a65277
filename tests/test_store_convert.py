"""Spans into store rows: the compiled converter (``spanline/_csrc/rows.c``) must
write exactly the rows the pure-Python one writes, for every kind of span."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spanline
from spanline import SpanKind, StatusCode
from spanline.core.ids import format_id
from spanline.store import SpanRow, convert, row_from_span, rows_from_spans
from spanline.testing import Capture

COMPILED = convert._accel


@pytest.fixture(params=["compiled", "python"])
def converter(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a test against the compiled converter and the pure-Python one."""
    saved = convert._accel
    convert._accel = COMPILED if request.param == "compiled" else None
    try:
        yield str(request.param)
    finally:
        convert._accel = saved


def _python_rows(spans: list[spanline.Span], service: str | None) -> list[tuple[object, ...]]:
    return [tuple(row) for row in convert._rows_python(spans, service)]


def _varied_spans() -> None:
    class Ship(spanline.Operation):
        def perform(self) -> None:
            with spanline.span("db", kind=SpanKind.CLIENT, meta={"m": [1, {"x": None}]}) as c:
                c.set_attributes(
                    {
                        "plain": "text",
                        "escapes": 'quote " backslash \\ newline \n tab \t bell \x07 del \x7f',
                        "unicode": "naïve ✓ \U0001f600",
                        "t": True,
                        "f": False,
                        "zero": 0,
                        "neg": -5,
                        "max": 2**63 - 1,
                        "huge": 2**90,
                        "pi": 3.14159,
                        "tiny": 1e-300,
                        "whole": 2.0,
                    }
                )
                c.add_event("retry", {"attempt": 2})
                spanline.record("order", {"id": 7, "lines": [1, 2]})
                spanline.record("flat", "yes")
            with contextlib.suppress(KeyError), spanline.span("fail"):
                raise KeyError("gone")
            with spanline.span("ok") as ok:
                ok.set_status(StatusCode.OK)
            with spanline.span("nan") as odd:
                odd.set_attributes({"nan": math.nan, "list": [1, "a"], "map": {"k": 1}})

    with spanline.start_trace(actor={"type": "user", "id": "7", "via": 'the "api"'}):
        Ship().call()
    with spanline.start_trace(actor={"type": "service", "id": "", "name": "billing"}):
        Ship().call()
    with spanline.start_trace(trace_id="external-request-id"), spanline.span("ext"):
        pass
    payload = {
        "v": 1,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "actor": {"type": "system", "name": "nightly"},
        "frames": [{"type": "operation", "id": format_id("op_", 10**18, 42), "name": "Enqueue"}],
    }
    with spanline.restore(payload):
        Ship().call()
    with spanline.span("plain root"):
        pass


def test_compiled_and_python_rows_are_identical(spanline_capture: Capture) -> None:
    assert COMPILED is not None, "spanline._accel was not built (see hatch_build.py)"
    _varied_spans()
    spans = spanline_capture.spans
    assert len(spans) > 15
    compiled = convert._rows_compiled(spans, "shop", None)
    assert compiled == _python_rows(spans, "shop")
    frames = [row[18] for row in compiled if row[18]]
    assert any('"Enqueue"' in text for text in frames)  # a remote frame, through Python
    assert any('"actor_type":"service"' in text for text in frames)


def test_public_rows_are_span_rows(spanline_capture: Capture, converter: str) -> None:
    with spanline.span("a") as a:
        a.set_attribute("k", "v")
    rows = rows_from_spans(spanline_capture.spans, "svc")
    assert [type(row) for row in rows] == [SpanRow]
    assert rows[0].attributes == '{"k":"v"}'
    assert rows[0] == row_from_span(spanline_capture.spans[0], "svc")
    assert convert.row_tuples(spanline_capture.spans, "svc") == [tuple(rows[0])]
    assert type(convert.row_tuples(spanline_capture.spans, "svc")[0]) is tuple


def test_unfinished_and_broken_spans_are_left_out(
    spanline_capture: Capture, converter: str, caplog: pytest.LogCaptureFixture
) -> None:
    for i in range(3):
        with spanline.span(f"good{i}"):
            pass
    with spanline.span("bad") as bad:
        pass
    bad._type = 99  # corrupted by hand: no type name, no id prefix
    open_span = spanline.Span("still open")
    spans = [*spanline_capture.spans, open_span]
    with caplog.at_level(logging.WARNING, logger="spanline"):
        rows = rows_from_spans(spans, None)
    assert [row.name for row in rows] == ["good0", "good1", "good2"]
    assert "could not be converted" in caplog.text


_plain = (
    st.text()
    | st.booleans()
    | st.none()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.text(max_size=20),
    attributes=st.dictionaries(st.text(max_size=10), _plain, max_size=6),
    records=st.dictionaries(st.text(max_size=10), _plain | st.lists(_plain, max_size=2)),
    actor_id=st.text(max_size=10),
)
def test_compiled_rows_match_on_arbitrary_values(
    name: str, attributes: dict[str, object], records: dict[str, object], actor_id: str
) -> None:
    capture = Capture()
    spanline.tracer.add_processor(capture)
    try:
        with spanline.start_trace(actor={"type": "user", "id": actor_id} if actor_id else None):

            @spanline.operation(name=name or "op")
            def work() -> None:
                with spanline.span(name) as s:
                    s.set_attributes(attributes)
                    for key, value in records.items():
                        spanline.record(key, value)

            work()
    finally:
        spanline.tracer.remove_processor(capture)
    spans = capture.spans
    assert convert._rows_compiled(spans, "svc", None) == _python_rows(spans, "svc")


def test_a_trace_id_at_the_last_millisecond_an_id_can_hold() -> None:
    # 58**8 - 1 ms (year ~6028): still a tr_ id; reachable through a crafted job
    # payload, so the compiled converter must render it as Python does
    from spanline.core.context import Trace, TraceRoot

    trace_int = ((58**8 - 1) << 80) | 12345
    span = spanline.Span("late")
    span.start_detached(TraceRoot(Trace(trace_int, None, None, True, 0)))
    span.end()
    compiled = convert._rows_compiled([span], None, None)
    assert compiled == _python_rows([span], None)
    assert compiled[0][3] == "tr_zzzzzzzz1111111114fr"
