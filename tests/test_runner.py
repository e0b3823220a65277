"""The export call runner (spanline.export.runner): one long-lived thread, one call
at a time, waited on with a deadline."""

from __future__ import annotations

import logging
import threading

import pytest

from spanline.export.runner import CallRunner


def _threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def test_calls_run_one_at_a_time_on_one_long_lived_thread() -> None:
    runner = CallRunner("runner-reuse")
    ran_on: list[int] = []
    for _ in range(5):
        runner.submit(lambda: ran_on.append(threading.get_ident()))
        assert runner.wait(5)
        assert not runner.busy()
    assert len(ran_on) == 5
    assert len(set(ran_on)) == 1  # the same thread every time
    assert threading.get_ident() not in ran_on
    assert len(_threads("runner-reuse")) == 1
    runner.stop()


def test_an_overrunning_call_keeps_the_runner_busy_until_it_returns() -> None:
    runner = CallRunner("runner-slow")
    gate = threading.Event()
    runner.submit(gate.wait)
    assert not runner.wait(0.05)  # the deadline passes: the caller walks away
    assert runner.busy()
    with pytest.raises(RuntimeError, match="still running"):
        runner.submit(lambda: None)
    gate.set()
    assert runner.wait(5)
    assert not runner.busy()
    done = threading.Event()
    runner.submit(done.set)  # usable again
    assert runner.wait(5)
    assert done.is_set()
    runner.stop()


def test_stop_ends_the_thread_and_a_later_call_starts_a_new_one() -> None:
    runner = CallRunner("runner-stop")
    runner.submit(lambda: None)
    assert runner.wait(5)
    (first,) = _threads("runner-stop")
    runner.stop()
    first.join(5)
    assert not first.is_alive()
    seen: list[str] = []
    runner.submit(lambda: seen.append(threading.current_thread().name))
    assert runner.wait(5)
    assert seen == ["runner-stop"]
    runner.stop()


def test_a_call_that_raises_is_logged_and_the_runner_carries_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner = CallRunner("runner-raises")

    def boom() -> None:
        raise ValueError("exporter bug")

    with caplog.at_level(logging.ERROR, logger="spanline"):
        runner.submit(boom)
        assert runner.wait(5)
    assert "exporter bug" in caplog.text
    done = threading.Event()
    runner.submit(done.set)  # the same thread, still serving
    assert runner.wait(5)
    assert done.is_set()
    assert len(_threads("runner-raises")) == 1
    runner.stop()
