from __future__ import annotations

import pytest

import spanline
from spanline.core import clock, ids
from spanline.testing import Capture, FakeClock, SequentialIds


def test_deterministic_ids_and_clock(spanline_capture: Capture) -> None:
    fake = spanline_capture.deterministic(start_id=1, step_ns=1_000_000)
    with spanline.start_trace() as trace_id, spanline.span("a") as a:
        pass
    # 1 ms per clock reading, ids 1, 2, 3 ...
    assert trace_id == "tr_" + ids.b58encode(1_767_225_600_000, 8) + "111111111112"
    assert isinstance(a, spanline.Span)
    assert a.span_id == 2
    assert a.start_ns == 1_767_225_600_001_000_000
    assert a.duration == 0.001
    fake.advance(5_000_000)
    with spanline.span("b") as b:
        pass
    assert isinstance(b, spanline.Span)
    assert b.start_ns == a.start_ns + 7_000_000


def test_fake_clock_and_ids_standalone() -> None:
    c = FakeClock(start_ns=100, step_ns=10)
    assert [c(), c(), c()] == [100, 110, 120]
    s = SequentialIds(5)
    assert [s(), s()] == [5, 6]
    with pytest.raises(ValueError, match="start at 1"):
        SequentialIds(0)


def test_fixture_resets_state_afterwards(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import spanline

        def test_one(spanline_capture):
            spanline.configure(ring_size=3, enabled=False)
            spanline_capture.deterministic()

            @spanline.handler("leaky")
            def h(event):
                pass

        def test_two(spanline_capture):
            assert spanline.settings.enabled is True
            assert spanline.settings.ring_size == 100
            assert "leaky" not in spanline.core.events.handlers()
            with spanline.span("x") as s:
                pass
            assert s.span_id > 1000  # real random ids again
            spanline_capture.assert_outline("x")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_fixture_fails_a_test_that_leaves_a_span_open(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import spanline

        def test_leaks(spanline_capture):
            spanline.span("never-closed").__enter__()

        def test_after_leak(spanline_capture):
            assert spanline.current_span().is_recording() is False
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    # pytest counts the leaking test as passed and reports its failed teardown as an error
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*left <Span 'never-closed'*open in its context*"])


def test_assert_outline_reports_both_trees(spanline_capture: Capture) -> None:
    with spanline.span("root"), spanline.span("child"):
        pass
    spanline_capture.assert_outline("""
        root
          child
    """)
    with pytest.raises(AssertionError, match="span trees differ"):
        spanline_capture.assert_outline("root")
    with pytest.raises(LookupError, match="no finished span named 'nope'"):
        spanline_capture.find("nope")


def test_real_sources_are_restored_after_reset() -> None:
    assert ids.new_random64 is ids._system_random64
    assert clock.now_ns is not None


def test_fake_clock_rejects_a_zero_start() -> None:
    with pytest.raises(ValueError, match="start_ns > 0"):
        FakeClock(start_ns=0)
