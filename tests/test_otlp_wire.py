"""The hand-written protobuf encoder must mean exactly what the opentelemetry-proto
message objects mean: decode both and compare."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import spanline
from spanline import SpanKind, StatusCode
from spanline.export import otlp_wire
from spanline.export.otlp_mapping import encode_request
from spanline.export.otlp_wire import _varint, encode_request_bytes
from spanline.testing import Capture

COMPILED = otlp_wire._accel


@pytest.fixture(autouse=True, params=["compiled", "python"])
def encoder(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test here runs against both encoders: the compiled one (built by
    hatch_build.py when the package is installed) and the pure-Python fallback."""
    saved = otlp_wire._accel
    otlp_wire._accel = COMPILED if request.param == "compiled" else None
    try:
        yield str(request.param)
    finally:
        otlp_wire._accel = saved


def _varied_spans() -> None:
    class Ship(spanline.Operation):
        def perform(self) -> None:
            with spanline.span("client", kind=SpanKind.CLIENT, meta={"m": [1, {"x": None}]}) as c:
                c.set_attributes(
                    {
                        "s": "",
                        "unicode": "naïve ✓ \U0001f600",
                        "t": True,
                        "f": False,
                        "zero": 0,
                        "neg": -5,
                        "min": -(2**63),
                        "max": 2**63 - 1,
                        "huge": 2**90,
                        "pi": 3.14159,
                        "negzero": -0.0,
                        "inf": float("inf"),
                        "list": [1, "a", 2.5, None],
                        "nested": {"a": {"b": [True, {"c": 1}]}},
                        "empty_list": [],
                        "empty_map": {},
                    }
                )
                c.add_event("retry", {"attempt": 2, "why": "503"})
                c.add_event("bare")
                spanline.record("bytes", b"\x00\x01")
                spanline.record("big", 10**30)
            with contextlib.suppress(KeyError), spanline.span("fail"):
                raise KeyError("gone")
            with spanline.span("ok") as ok:
                ok.set_status(StatusCode.OK)

    with spanline.start_trace(actor={"type": "user", "id": 7, "via": "api"}):
        Ship().call()
    with spanline.start_trace(trace_id="external-request-id"), spanline.span("ext"):
        pass
    with (
        spanline.restore(
            {
                "v": 1,
                "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "actor": None,
                "frames": [],
            }
        ),
        spanline.span("remote-child"),
    ):
        pass


def test_wire_encoding_decodes_to_the_same_request(spanline_capture: Capture) -> None:
    _varied_spans()
    spans = spanline_capture.spans
    assert len(spans) == 6
    resource = {"service.name": "shop", "deployment.environment": "test"}
    ours = ExportTraceServiceRequest.FromString(encode_request_bytes(spans, resource))
    reference = encode_request(spans, resource)
    assert ours == reference
    # and the reference really holds what we think (guards against two equal mistakes)
    decoded = reference.resource_spans[0].scope_spans[0].spans
    client = next(s for s in decoded if s.name == "client")
    attrs = {kv.key: kv.value for kv in client.attributes}
    assert attrs["min"].int_value == -(2**63)
    assert attrs["s"].WhichOneof("value") == "string_value"
    assert attrs["f"].WhichOneof("value") == "bool_value"
    assert attrs["huge"].string_value == str(2**90)
    remote = next(s for s in decoded if s.name == "remote-child")
    assert remote.parent_span_id.hex() == "00f067aa0ba902b7"
    assert remote.trace_id.hex() == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_interleaved_traces_keep_their_own_trace_fields(spanline_capture: Capture) -> None:
    # consecutive spans of one trace share its encoded trace id and attributes; a
    # batch mixes traces (generated ones written in C, actor ones built by Python)
    for actor in (None, {"type": "user", "id": "7"}, None, {"type": "svc", "id": "x"}):
        with spanline.start_trace(actor=actor), spanline.span("root"):
            for i in range(3):
                with spanline.span(f"child{i}"):
                    pass
    spans = spanline_capture.spans
    assert len({s.trace_id for s in spans}) == 4
    mixed = [*spans[::2], *spans[1::2], *reversed(spans)]  # adjacent and not
    resource = {"service.name": "shop"}
    ours = ExportTraceServiceRequest.FromString(encode_request_bytes(mixed, resource))
    assert ours == encode_request(mixed, resource)
    decoded = ours.resource_spans[0].scope_spans[0].spans
    for span, wire in zip(mixed, decoded, strict=True):
        assert wire.span_id.hex() == span.span_hex
        assert wire.trace_id.hex() == span.trace_hex
        attrs = {kv.key: kv.value.string_value for kv in wire.attributes}
        assert attrs["spanline.trace_id"] == span.trace_id


def test_keyboard_interrupt_while_drawing_a_lazy_trace_id_propagates(
    spanline_capture: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spanline.core import ids

    with spanline.span("s"):
        pass
    (span,) = spanline_capture.spans
    span._trace._id = 0  # a trace whose id nobody has read yet: encoding draws it
    real = ids.new_random64
    fired: list[int] = []

    def interrupted_once() -> int:
        if not fired:
            fired.append(1)
            raise KeyboardInterrupt  # Ctrl-C landing in the draw
        return real()

    monkeypatch.setattr(ids, "new_random64", interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        encode_request_bytes([span], {})
    assert fired == [1]
    assert encode_request_bytes([span], {})  # the next try draws and encodes


def test_empty_batch_and_varints() -> None:
    assert ExportTraceServiceRequest.FromString(encode_request_bytes([], {})) == encode_request(
        [], {}
    )
    for value in (0, 1, 127, 128, 300, 16383, 16384, 2**35, 2**63 - 1, -1, -(2**63)):
        raw = _varint(value)
        decoded, shift = 0, 0
        for byte in raw:
            decoded |= (byte & 0x7F) << shift
            shift += 7
        if value < 0:
            decoded -= 1 << 64
            assert len(raw) == 10
        assert decoded == value


def test_lone_surrogates_become_valid_utf8(spanline_capture: Capture) -> None:
    import os

    name = os.fsdecode(b"report-\xff.csv")  # '\udcff' inside
    with spanline.span(f"upload {name}") as s:
        s.set_attribute("file.name", name)
        s.add_event(name, {name: name})
    body = encode_request_bytes(spanline_capture.spans, {"service.name": name})
    decoded = ExportTraceServiceRequest.FromString(body)  # valid UTF-8 throughout
    span = decoded.resource_spans[0].scope_spans[0].spans[0]
    assert span.name == "upload report-?.csv"  # the lone surrogate became "?"
    assert decoded == encode_request(spanline_capture.spans, {"service.name": name})


def test_one_unencodable_span_does_not_cost_the_batch(spanline_capture: Capture) -> None:
    for i in range(5):
        with spanline.span(f"good{i}"):
            pass
    with spanline.span("bad") as bad:
        pass
    bad.name = None  # type: ignore[assignment] - a user writing the attribute directly
    skipped: list[spanline.Span] = []
    body = encode_request_bytes(spanline_capture.spans, {}, skipped)
    names = [
        s.name
        for s in ExportTraceServiceRequest.FromString(body).resource_spans[0].scope_spans[0].spans
    ]
    assert names == [f"good{i}" for i in range(5)]
    assert skipped == [bad]


class _Replacer:
    """A value whose repr gives the span a new attributes dict (the old one dies)."""

    def __init__(self) -> None:
        self.span: spanline.Span | None = None

    def __repr__(self) -> str:
        assert self.span is not None
        self.span._attributes = {"replaced": 1}
        return "replaced"


def test_attributes_replaced_while_encoding_do_not_crash(spanline_capture: Capture) -> None:
    replacer = _Replacer()
    with spanline.span("odd") as s:
        s.set_attributes({"a": 1, **{f"pad{i}": "x" * i for i in range(40)}})
    replacer.span = s
    assert s._attributes is not None
    s._attributes["r"] = replacer
    body = encode_request_bytes(spanline_capture.spans, {})
    span = ExportTraceServiceRequest.FromString(body).resource_spans[0].scope_spans[0].spans[0]
    keys = [kv.key for kv in span.attributes]
    assert keys[:42] == ["a", *(f"pad{i}" for i in range(40)), "r"]  # the snapshot


class _Mutator:
    """A value whose repr mutates the span's attributes while they are encoded."""

    def __init__(self, target: dict[str, object]) -> None:
        self.target = target

    def __repr__(self) -> str:
        self.target.clear()
        self.target.update({f"new{i}": i for i in range(50)})
        return "mutated"


def test_attributes_changed_while_encoding_do_not_crash(spanline_capture: Capture) -> None:
    with spanline.span("odd") as s:
        s.set_attribute("a", "x")
        s.set_attribute("b", 1)
    attributes = s._attributes
    assert attributes is not None
    attributes["m"] = _Mutator(attributes)
    attributes["z"] = "after"
    body = encode_request_bytes(spanline_capture.spans, {})
    span = ExportTraceServiceRequest.FromString(body).resource_spans[0].scope_spans[0].spans[0]
    keys = [kv.key for kv in span.attributes]
    assert keys[:3] == ["a", "b", "m"]
    assert {kv.key: kv.value.string_value for kv in span.attributes}["m"] == "mutated"


_scalars = (
    st.text()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.none()
    | st.binary(max_size=8)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.text(),
    attributes=st.dictionaries(st.text(max_size=20), _values, max_size=6),
    status=st.sampled_from([None, "ok", "error"]),
    message=st.text(max_size=30),
)
def test_both_encoders_match_the_reference_on_arbitrary_spans(
    encoder: str, name: str, attributes: dict[str, object], status: str | None, message: str
) -> None:
    capture = Capture()
    spanline.tracer.add_processor(capture)
    try:
        with spanline.start_trace(actor={"type": "user", "id": "7"} if status else None):
            with spanline.span(name) as s:
                s.set_attributes(attributes)
                if status == "ok":
                    s.set_status(StatusCode.OK)
                elif status == "error":
                    s.set_status(StatusCode.ERROR, message)
    finally:
        spanline.tracer.remove_processor(capture)
    spans = capture.spans
    ours = ExportTraceServiceRequest.FromString(encode_request_bytes(spans, {"service.name": "x"}))
    assert ours == encode_request(spans, {"service.name": "x"})


@pytest.mark.parametrize("end", [-1, 2**64, 2**100, 0, 2**63, 2**64 - 1])
def test_times_outside_64_bits_skip_the_span_and_the_edges_encode(end: int) -> None:
    with spanline.span("timed") as span:
        pass
    span._end = end
    skipped: list[spanline.Span] = []
    body = otlp_wire.encode_request_bytes([span], {"service.name": "t"}, skipped)
    if 0 <= end < 2**64:
        assert skipped == []
        request = ExportTraceServiceRequest.FromString(body)
        assert request.resource_spans[0].scope_spans[0].spans[0].end_time_unix_nano == end
    else:
        assert skipped == [span]
