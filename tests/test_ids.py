from __future__ import annotations

import os
import re

import pytest

import spanline
from spanline.core import ids
from spanline.testing import Capture

ID_RE = re.compile(r"^(tr|op|hd|ev|sp)_[1-9A-HJ-NP-Za-km-z]{20}$")


def test_base58_round_trip_and_fixed_width() -> None:
    for value in (0, 1, 57, 58, 3364, 2**47, 2**64 - 1):
        text = ids.b58encode(value, 12)
        assert len(text) == 12
        assert ids.b58decode(text) == value
    with pytest.raises(ValueError, match="does not fit"):
        ids.b58encode(58**3, 3)
    with pytest.raises(ValueError, match="negative"):
        ids.b58encode(-1, 3)
    with pytest.raises(ValueError, match="not a base58 character"):
        ids.b58decode("0OIl")


def test_every_id_kind_has_dex_format(spanline_capture: Capture) -> None:
    seen: dict[str, str] = {}

    @spanline.handler("thing.done")
    def on_done(event: spanline.Event) -> None:
        seen["handler"] = spanline.current_id() or ""

    @spanline.operation
    def work() -> spanline.Event:
        seen["op"] = spanline.current_id() or ""
        with spanline.span("inner") as s:
            seen["span"] = s.id or ""
        return spanline.publish("thing.done", {})

    with spanline.start_trace() as trace_id:
        event = work()
    seen["trace"] = trace_id
    seen["event"] = event.id
    assert {k: v[:3] for k, v in seen.items()} == {
        "op": "op_",
        "span": "sp_",
        "handler": "hd_",
        "trace": "tr_",
        "event": "ev_",
    }
    for value in seen.values():
        assert len(value) == 23
        assert ID_RE.match(value), value


def test_ids_sort_by_time_as_strings(spanline_capture: Capture) -> None:
    clock = spanline_capture.deterministic(step_ns=1_000_000)
    made = []
    for _ in range(50):
        with spanline.span("s") as s:
            made.append(s.id)
        clock.advance(7_000_000)
    assert made == sorted(made)
    # and with real time and random ids too
    spanline_capture.clear()
    from spanline.testing import reset_all

    reset_all()
    real = []
    for _ in range(5):
        with spanline.span("s") as s:
            real.append(s.id)
        spanline_capture.clear()
        import time

        time.sleep(0.002)
    assert real == sorted(real)


def test_span_id_suffix_encodes_w3c_span_id(spanline_capture: Capture) -> None:
    with spanline.span("s") as s:
        pass
    assert isinstance(s, spanline.Span)
    assert s.id is not None
    assert ids.decode_span_id(s.id) == s.span_id
    assert s.span_hex == f"{s.span_id:016x}"
    assert int(s.span_hex, 16) == ids.b58decode(s.id[-12:])


def test_trace_id_maps_one_to_one_to_w3c(spanline_capture: Capture) -> None:
    for _ in range(200):
        with spanline.start_trace() as trace_id:
            value = ids.trace_int_from_id(trace_id)
            assert ids.trace_id_from_int(value) == trace_id
            with spanline.span("s") as s:
                assert s.trace_hex == f"{value:032x}"
            # the top 48 bits are the id's millisecond, the middle 16 zero
            assert value >> 80 == ids.b58decode(trace_id[3:11])
            assert (value >> 64) & 0xFFFF == 0


def test_foreign_w3c_trace_id_is_kept() -> None:
    foreign = "4bf92f3577b34da6a3ce929d0e0e4736"
    assert ids.trace_int_from_id(foreign) == int(foreign, 16)
    assert ids.trace_id_from_int(int(foreign, 16)) == foreign
    with spanline.start_trace(trace_id=foreign) as trace_id:
        assert trace_id == foreign
        with spanline.span("s") as s:
            assert s.trace_hex == foreign


def test_external_trace_id_hashes_deterministically() -> None:
    a = ids.trace_int_from_id("req-8f3a")
    assert a == ids.trace_int_from_id("req-8f3a")
    assert a != ids.trace_int_from_id("req-8f3b")
    assert 0 < a < 2**128


def test_abbreviations_tell_same_millisecond_ids_apart() -> None:
    base = ids.format_id("op_", 1_767_225_600_000_000_000, 0)
    # same millisecond, random parts differing only beyond the last 6 characters
    a = base[:-8] + "AAzzzzzz"
    b = base[:-8] + "BBzzzzzz"
    c = ids.format_id("op_", 1_767_225_600_000_000_000, 12345)
    short = ids.abbreviate([a, b, c])
    assert len(set(short)) == 3
    assert short[2] == "op_" + c[-6:]
    assert all(s.startswith("op_") for s in short)


def test_validation_of_ids() -> None:
    good = ids.format_id("op_", 1_767_225_600_000_000_000, 99)
    assert ids.is_valid_id(good)
    assert ids.is_valid_id(good, "op_")
    assert not ids.is_valid_id(good, "hd_")
    assert not ids.is_valid_id("op_short")
    assert not ids.is_valid_id(good[:-1] + "0")  # 0 is not in the alphabet
    assert not ids.is_valid_id("op_" + "z" * 20)  # random part above 2**64
    assert not ids.is_valid_id(42)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_ids_differ_after_fork() -> None:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report the next ids it would draw
        os.close(read_end)
        os.write(write_end, ",".join(str(ids.new_random64()) for _ in range(5)).encode())
        os._exit(0)
    os.close(write_end)
    parent = [ids.new_random64() for _ in range(5)]
    child = b""
    while chunk := os.read(read_end, 4096):
        child += chunk
    os.close(read_end)
    os.waitpid(pid, 0)
    child_ids = [int(x) for x in child.decode().split(",")]
    assert len(child_ids) == 5
    assert not set(child_ids) & set(parent)


def test_fast_64_bit_base58_matches_the_general_encoder() -> None:
    import random

    rng = random.Random(11)
    values = [0, 1, 57, 58, 3363, 3364, 58**4 - 1, 58**4, 58**8, 2**63, 2**64 - 1]
    values += [rng.getrandbits(64) for _ in range(5000)]
    for value in values:
        assert ids._b58_64(value) == ids.b58encode(value, 12)
