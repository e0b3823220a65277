"""Property tests: W3C extraction never raises, whatever the headers hold."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spanline
from spanline.propagation import continue_trace, extract, inject
from spanline.propagation.baggage import MAX_MEMBERS as MAX_BAGGAGE
from spanline.propagation.baggage import format_baggage, parse_baggage
from spanline.propagation.w3c import (
    MAX_MEMBERS,
    format_traceparent,
    format_tracestate,
    parse_traceparent,
    parse_tracestate,
)
from spanline.testing import Capture

FAST = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
NAMES = ("traceparent", "tracestate", "baggage")


def _mixed_case(name: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda upper: "".join(c.upper() if u else c for c, u in zip(name, upper, strict=True))
    )


# header values: arbitrary text, arbitrary bytes read as latin-1 (what a WSGI server
# hands over), near-valid W3C strings, and huge values
_near_valid = st.builds(
    lambda v, t, p, f, tail: f"{v}-{t}-{p}-{f}{tail}",
    st.text(string.hexdigits, min_size=1, max_size=3),
    st.text(string.hexdigits + "-", min_size=0, max_size=34),
    st.text(string.hexdigits, min_size=0, max_size=17),
    st.text(string.hexdigits + ".", min_size=0, max_size=3),
    st.text(max_size=8),
)
VALUES = st.one_of(
    st.text(),
    st.binary().map(lambda raw: raw.decode("latin-1")),
    _near_valid,
    st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=3), st.integers(1, 20000)),
)
NAME = st.one_of(st.sampled_from(NAMES).flatmap(_mixed_case), st.text(max_size=12))
CARRIERS = st.one_of(
    st.dictionaries(NAME, st.one_of(VALUES, st.lists(VALUES, max_size=4)), max_size=8),
    st.lists(st.tuples(NAME, VALUES), max_size=60),
    st.lists(st.one_of(st.tuples(NAME, VALUES), st.integers(), st.none(), st.text()), max_size=5),
    st.dictionaries(st.one_of(st.integers(), st.binary()), st.one_of(st.binary(), st.integers())),
    st.none(),
    st.text(),
    st.integers(),
)


@FAST
@given(carrier=CARRIERS, trust=st.booleans())
def test_extract_never_raises(spanline_capture: Capture, carrier: object, trust: bool) -> None:
    remote = extract(carrier, trust_actor=trust)
    if remote is not None:
        assert remote.tracestate is None or len(remote.tracestate) <= MAX_MEMBERS
    with continue_trace(carrier, trust_actor=trust) as trace_id:
        assert trace_id is not None
        with spanline.span("handler"):
            outgoing: dict[str, str] = {}
            inject(outgoing)  # what came in is passed on without raising either
    assert all(isinstance(v, str) for v in outgoing.values())


_TRACE_ID = st.integers(1, 2**128 - 1)
_SPAN_ID = st.integers(1, 2**64 - 1)
_KEY = st.builds(
    str.__add__,
    st.sampled_from(string.ascii_lowercase),
    st.text(string.ascii_lowercase + string.digits + "_-*/", max_size=8),
)
_VALUE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ",=")
_VALUE = st.text(_VALUE_CHARS, min_size=1, max_size=12).map(lambda v: v.rstrip(" ") or "x")
_STATE = st.dictionaries(_KEY, _VALUE, min_size=1, max_size=MAX_MEMBERS).map(
    lambda members: list(members.items())
)


@FAST
@given(trace_id=_TRACE_ID, span_id=_SPAN_ID, flags=st.integers(0, 255))
def test_a_valid_traceparent_round_trips(trace_id: int, span_id: int, flags: int) -> None:
    parsed = parse_traceparent([format_traceparent(trace_id, span_id, flags)])
    assert parsed is not None
    assert (parsed.version, parsed.trace_id, parsed.parent_id, parsed.flags) == (
        0,
        trace_id,
        span_id,
        flags,
    )


@FAST
@given(
    trace_id=_TRACE_ID,
    span_id=_SPAN_ID,
    sampled=st.booleans(),
    state=_STATE,
    name=_mixed_case("traceparent"),
)
def test_inject_then_extract_continues_the_same_trace(
    spanline_capture: Capture,
    trace_id: int,
    span_id: int,
    sampled: bool,
    state: list[tuple[str, str]],
    name: str,
) -> None:
    incoming = {
        name: format_traceparent(trace_id, span_id, int(sampled)),
        "TraceState": format_tracestate(state),
    }
    with continue_trace(incoming), spanline.span("hop") as hop:
        outgoing: dict[str, str] = {}
        inject(outgoing)
    remote = extract(outgoing)
    assert remote is not None
    assert remote._trace.id == trace_id
    assert remote.sid == (hop.span_id if sampled else span_id)
    assert bool(remote.flags & 1) == sampled
    assert remote.tracestate == state


@FAST
@given(values=st.lists(VALUES, max_size=6))
def test_tracestate_parsing_never_raises_nor_exceeds_32_members(values: list[str]) -> None:
    members = parse_tracestate(values)
    assert members is None or 1 <= len(members) <= MAX_MEMBERS


@FAST
@given(states=st.lists(_STATE, min_size=1, max_size=3))
def test_tracestate_over_32_members_is_dropped_whole(states: list[list[tuple[str, str]]]) -> None:
    keys = [k for state in states for k, _ in state]
    members = parse_tracestate([format_tracestate(s) for s in states])
    if len(keys) != len(set(keys)) or len(keys) > MAX_MEMBERS:
        assert members is None
    else:
        assert members == [m for state in states for m in state]


@FAST
@given(values=st.lists(VALUES, max_size=6))
def test_baggage_parsing_never_raises(values: list[str]) -> None:
    baggage = parse_baggage(values)
    assert len(baggage) <= MAX_BAGGAGE
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in baggage.items())


@FAST
@given(
    entries=st.dictionaries(
        st.from_regex(r"[A-Za-z0-9_.\-]{1,12}", fullmatch=True), st.text(max_size=30), max_size=10
    )
)
def test_baggage_round_trips(entries: dict[str, str]) -> None:
    assert parse_baggage([format_baggage(entries)]) == entries


def test_huge_values_and_many_headers_are_read_without_raising(spanline_capture: Capture) -> None:
    valid = format_traceparent(7, 9, 1)
    huge = {"traceparent": valid, "tracestate": "a=1," * 250_000, "baggage": "k=v," * 250_000}
    remote = extract(huge, trust_actor=True)
    assert remote is not None
    assert remote.tracestate is None  # over 32 members: dropped whole
    many = [(f"X-Header-{i}", "x" * 100) for i in range(10_000)] + [("TRACEPARENT", valid)]
    assert extract(many) is not None
    assert parse_baggage(["k=v," * 250_000]) == {}  # over 8192 bytes: not read at all
    assert parse_traceparent(["\x00" * 1_000_000]) is None
