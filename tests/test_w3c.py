"""W3C Trace Context, case by case as the specification's test suite checks it."""

from __future__ import annotations

import pytest

import spanline
from spanline.propagation import continue_trace, extract, inject
from spanline.propagation.w3c import (
    format_traceparent,
    header_values,
    parse_traceparent,
    parse_tracestate,
)
from spanline.testing import Capture

TRACE = "12345678901234567890123456789012"
PARENT = "1234567890123456"
VALID = f"00-{TRACE}-{PARENT}-01"


def test_valid_traceparent_and_case_insensitive_names() -> None:
    for name in ("traceparent", "TraceParent", "TRACEPARENT"):
        parsed = parse_traceparent(header_values({name: VALID}, "traceparent"))
        assert parsed is not None
        assert f"{parsed.trace_id:032x}" == TRACE
        assert f"{parsed.parent_id:016x}" == PARENT
        assert parsed.sampled


@pytest.mark.parametrize(
    "value",
    [
        f"00-{TRACE}-{PARENT}-01.",  # trailing characters on version 00
        f"00-{TRACE}-{PARENT}-01-what-the-future-will-be-like",
        f"ff-{TRACE}-{PARENT}-01",  # version 255
        f".0-{TRACE}-{PARENT}-01",
        f"000-{TRACE}-{PARENT}-01",
        f"0-{TRACE}-{PARENT}-01",
        f"00-{'0' * 32}-{PARENT}-01",  # all-zero trace id
        f"00-.{TRACE[1:]}-{PARENT}-01",
        f"00-{TRACE}3-{PARENT}-01",
        f"00-{TRACE[:-1]}-{PARENT}-01",
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"00-{TRACE}-{PARENT}7-01",
        f"00-{TRACE}-{PARENT[:-1]}-01",
        f"00-{TRACE}-{PARENT}-.0",
        f"00-{TRACE.upper().replace('1', 'A')}-{PARENT}-01",  # uppercase hex
        f"cc-{TRACE}-{PARENT}-01.what-the-future-will-be-like",
        "",
    ],
)
def test_invalid_traceparents(value: str) -> None:
    assert parse_traceparent([value]) is None


def test_future_versions_and_duplicates() -> None:
    for value in (f"cc-{TRACE}-{PARENT}-01", f"cc-{TRACE}-{PARENT}-01-what-the-future-will-be"):
        parsed = parse_traceparent([value])
        assert parsed is not None
        assert parsed.version == 0xCC
    assert parse_traceparent([VALID, VALID]) is None  # two headers: invalid
    assert parse_traceparent([]) is None
    pairs = [("traceparent", VALID), ("TraceParent", VALID)]
    assert parse_traceparent(header_values(pairs, "traceparent")) is None


def test_tracestate_rules() -> None:
    assert parse_tracestate(["foo=1,bar=2", "rojo=1,congo=2", "baz=3"]) == [
        ("foo", "1"),
        ("bar", "2"),
        ("rojo", "1"),
        ("congo", "2"),
        ("baz", "3"),
    ]
    assert parse_tracestate(["foo=1", ""]) == [("foo", "1")]
    assert parse_tracestate(["foo=1 \t , \t bar=2,\t baz=3"]) == [
        ("foo", "1"),
        ("bar", "2"),
        ("baz", "3"),
    ]
    assert parse_tracestate(["foo=1,,bar=2"]) == [("foo", "1"), ("bar", "2")]
    key = "abcdefghijklmnopqrstuvwxyz0123456789_-*/"
    value = "".join(map(chr, [*range(0x20, 0x2C), *range(0x2D, 0x3D), *range(0x3E, 0x7F)]))
    assert parse_tracestate([f"{key}={value}"]) == [(key, value)]
    assert parse_tracestate([f"{key}@a-z0-9_-*/={value}"]) == [(f"{key}@a-z0-9_-*/", value)]
    members = ",".join(f"bar{i:02d}={i:02d}" for i in range(1, 33))
    parsed = parse_tracestate([members])
    assert parsed is not None
    assert len(parsed) == 32


@pytest.mark.parametrize(
    "values",
    [
        ["foo=1,foo=1"],
        ["foo=1,foo=2"],
        ["foo=1", "foo=2"],  # duplicates across headers
        ["foo =1"],
        ["FOO=1"],
        ["foo.bar=1"],
        ["foo@=1,bar=2"],
        ["@foo=1,bar=2"],
        ["foo@@bar=1,bar=2"],
        ["foo@bar@baz=1,bar=2"],
        ["foo=bar=baz"],
        ["foo=,bar=3"],
        ["foo=1", "z" * 257 + "=1"],
        ["foo=1", "t" * 242 + "@v=1"],
        ["foo=1", "t@" + "v" * 15 + "=1"],
        [",".join(f"bar{i:02d}={i:02d}" for i in range(1, 34))],  # 33 members
    ],
)
def test_invalid_tracestate_is_discarded_whole(values: list[str]) -> None:
    assert parse_tracestate(values) is None


def test_key_length_limits_that_are_allowed() -> None:
    assert parse_tracestate(["foo=1", "z" * 256 + "=1"]) is not None
    assert parse_tracestate(["foo=1", "t" * 241 + "@" + "v" * 14 + "=1"]) is not None


def test_continue_trace_then_inject_passes_state_on(spanline_capture: Capture) -> None:
    headers = {"TraceParent": f"00-{TRACE}-{PARENT}-03", "tracestate": "rojo=1,congo=2"}
    with continue_trace(headers) as trace_id, spanline.span("handler") as handler:
        outgoing: dict[str, str] = {}
        inject(outgoing)
    assert isinstance(handler, spanline.Span)
    assert trace_id == handler.trace_id
    assert handler.trace_hex == TRACE
    assert handler.parent_id == PARENT
    # same trace, our span as the parent, flags (sampled + random) passed on
    assert outgoing["traceparent"] == f"00-{TRACE}-{handler.span_hex}-03"
    assert outgoing["tracestate"] == "rojo=1,congo=2"


def test_invalid_traceparent_starts_a_new_trace_and_drops_tracestate(
    spanline_capture: Capture,
) -> None:
    headers = {"traceparent": f"00-{'0' * 32}-{PARENT}-01", "tracestate": "rojo=1"}
    assert extract(headers) is None
    with continue_trace(headers), spanline.span("handler") as handler:
        outgoing: dict[str, str] = {}
        inject(outgoing)
    assert isinstance(handler, spanline.Span)
    assert handler.trace_hex != "0" * 32
    assert handler.parent_id is None
    assert "tracestate" not in outgoing
    assert outgoing["traceparent"].endswith("-03")  # new trace: sampled, random id


def test_unsampled_callers_are_followed_and_inject_outside_a_trace_writes_nothing(
    spanline_capture: Capture,
) -> None:
    with continue_trace({"traceparent": f"00-{TRACE}-{PARENT}-00"}), spanline.span("work") as work:
        outgoing: dict[str, str] = {}
        inject(outgoing)
    assert not work.is_recording()
    assert outgoing["traceparent"] == f"00-{TRACE}-{PARENT}-00"  # the remote parent's id
    assert spanline_capture.spans == []
    nothing: dict[str, str] = {}
    inject(nothing)
    assert nothing == {}
    assert format_traceparent(1, 2, 0x101) == f"00-{1:032x}-{2:016x}-01"


def test_baggage_parsing_and_formatting() -> None:
    from spanline.propagation.baggage import MAX_MEMBERS, format_baggage, parse_baggage

    assert parse_baggage(["userId=alice,serverNode=DF%2028 ; prop=1", "isProduction=false"]) == {
        "userId": "alice",
        "serverNode": "DF 28",
        "isProduction": "false",
    }
    # invalid members are skipped, the others kept
    assert parse_baggage(['bad key=1,ok=2,noequals,quote="x",utf=%E2%9C%93']) == {
        "ok": "2",
        "utf": "\u2713",
    }
    assert parse_baggage(["bad=%FF"]) == {}  # not UTF-8 once decoded
    many = ",".join(f"k{i}=v" for i in range(100))
    assert len(parse_baggage([many])) == MAX_MEMBERS
    text = format_baggage({"spanline.actor.id": "4 2", "bad key": "x", "via": "a,b"})
    assert text == "spanline.actor.id=4%202,via=a%2Cb"
    assert parse_baggage([text]) == {"spanline.actor.id": "4 2", "via": "a,b"}


def test_actor_travels_in_baggage_but_is_trusted_only_on_request(
    spanline_capture: Capture,
) -> None:
    with (
        spanline.start_trace(actor={"type": "user", "id": 42, "via": "ios"}),
        spanline.span("client"),
    ):
        headers: dict[str, str] = {}
        inject(headers)
    assert "spanline.actor.type=user" in headers["baggage"]
    # a public boundary: the incoming actor is ignored (no impersonation by header)
    with continue_trace(headers):
        assert spanline.actor() is None
        assert spanline.trace_id() is not None
    # a boundary between our own services opts in
    with continue_trace(headers, trust_actor=True):
        assert spanline.actor() == {"type": "user", "id": "42", "via": "ios"}
    # a forged actor without a type is not an actor at all
    forged = {**headers, "baggage": "spanline.actor.id=1"}
    with continue_trace(forged, trust_actor=True):
        assert spanline.actor() is None


def test_optional_white_space_around_traceparent_is_accepted() -> None:
    for value in (f" {VALID}", f"{VALID}\t", f" \t{VALID} \t"):
        parsed = parse_traceparent([value])
        assert parsed is not None
        assert f"{parsed.trace_id:032x}" == TRACE


def test_unknown_trace_flags_are_kept_and_passed_on(spanline_capture: Capture) -> None:
    parsed = parse_traceparent([f"00-{TRACE}-{PARENT}-09"])
    assert parsed is not None
    assert parsed.flags == 0x09
    assert parsed.sampled
    future = parse_traceparent([f"cc-{TRACE}-{PARENT}-09-extra"])
    assert future is not None
    assert future.flags == 0x09
    with continue_trace({"traceparent": f"00-{TRACE}-{PARENT}-09"}), spanline.span("h") as h:
        outgoing: dict[str, str] = {}
        inject(outgoing)
    assert outgoing["traceparent"] == f"00-{TRACE}-{h.span_hex}-09"


def test_tracestate_member_limit_counts_across_headers() -> None:
    first = ",".join(f"a{i:02d}=1" for i in range(16))
    second = ",".join(f"b{i:02d}=1" for i in range(16))
    parsed = parse_tracestate([first, second])
    assert parsed is not None
    assert len(parsed) == 32
    assert parse_tracestate([first, second, "c=1"]) is None


def test_tracestate_values_keep_inner_spaces_and_carriers_may_list_values() -> None:
    # spaces inside a value are part of it; spaces after it are optional white space
    assert parse_tracestate(["foo= a b \t,bar=2"]) == [("foo", " a b"), ("bar", "2")]
    carrier = {"TraceState": ["foo=1", "bar=2"], "traceparent": [VALID]}
    assert parse_tracestate(header_values(carrier, "tracestate")) == [("foo", "1"), ("bar", "2")]
    assert parse_traceparent(header_values(carrier, "traceparent")) is not None
    # values that are not text (bytes, numbers) are not headers spanline can read
    assert extract({"traceparent": VALID.encode()}) is None
    assert extract([("traceparent", 1), ("traceparent",)]) is None


@pytest.mark.parametrize(
    "values",
    [
        ["foo=caf\u00e9"],  # value outside printable ASCII
        ["f\u00f6o=1"],  # key outside the allowed characters
        ["foo"],  # no "="
        ["=1"],  # empty key
        ["foo=" + "v" * 257],  # value over 256 characters
    ],
)
def test_more_invalid_tracestate_members(values: list[str]) -> None:
    assert parse_tracestate(values) is None
