"""The batch processor's producer side (spanline.export.span_queue): the Python
class and the compiled one behave alike, and the pipeline calls their hooks."""

from __future__ import annotations

import collections
import threading
from typing import Any

import pytest

import spanline
from spanline import _native
from spanline.core.pipeline import PIPELINE
from spanline.export import BatchSpanProcessor, InMemorySpanExporter
from spanline.export.span_queue import _PySpanQueue
from spanline.testing import Capture

_accel = _native.load()
IMPLEMENTATIONS = [pytest.param(_PySpanQueue, id="python")]
if _accel is not None:  # the compiled one is checked to exist in test_native.py
    IMPLEMENTATIONS.append(pytest.param(_accel.SpanQueue, id="compiled"))


class Drops:
    """A drop callback that counts its calls (and can fail)."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False

    def __call__(self) -> None:
        self.calls += 1
        if self.fail:
            raise RuntimeError("the drop counter broke")


class CountingEvent(threading.Event):
    """A real Event that counts how often it is set."""

    def __init__(self) -> None:
        super().__init__()
        self.sets = 0

    def set(self) -> None:
        self.sets += 1
        super().set()


def _make(kind: Any, max_queue: int = 4, batch_size: int = 2) -> tuple[Any, Any, Any, Drops]:
    queue: collections.deque[object] = collections.deque()
    wake = CountingEvent()
    drops = Drops()
    return kind(queue, wake, drops, max_queue, batch_size), queue, wake, drops


@pytest.mark.parametrize("kind", IMPLEMENTATIONS)
def test_ends_are_queued_and_counted_and_the_worker_woken_once_per_batch(kind: Any) -> None:
    producer, queue, wake, drops = _make(kind)
    first, second, third = object(), object(), object()
    producer.started(first)
    producer.started(second)
    producer.ended(first)
    assert (list(queue), wake.sets) == ([first], 0)
    producer.ended(second)  # a batch: wake the worker
    producer.ended(third)  # still set: not set again
    assert (list(queue), wake.sets) == ([first, second, third], 1)
    assert (producer.started_count, producer.ended_count, drops.calls) == (2, 3, 0)
    wake.clear()  # as the worker does; the next span past the threshold wakes it again
    producer.ended(object())
    assert wake.sets == 2


@pytest.mark.parametrize("kind", IMPLEMENTATIONS)
def test_a_full_or_stopping_queue_drops_the_new_span(kind: Any) -> None:
    producer, queue, _, drops = _make(kind, max_queue=2, batch_size=10)
    spans = [object() for _ in range(3)]
    for span in spans:
        producer.ended(span)
    assert (list(queue), drops.calls, producer.ended_count) == (spans[:2], 1, 3)
    queue.clear()
    producer.stopping = True
    assert producer.stopping is True
    producer.ended(object())
    assert (len(queue), drops.calls) == (0, 2)
    drops.fail = True  # the callback's error is the caller's to count
    with pytest.raises(RuntimeError, match="drop counter"):
        producer.ended(object())


@pytest.mark.parametrize("kind", IMPLEMENTATIONS)
def test_reset_starts_over_with_a_new_queue(kind: Any) -> None:
    producer, old_queue, _, _ = _make(kind)
    producer.started(object())
    producer.ended(object())
    producer.stopping = True
    queue: collections.deque[object] = collections.deque()
    wake = CountingEvent()
    producer.reset(queue, wake)
    assert (producer.started_count, producer.ended_count, producer.stopping) == (0, 0, False)
    span = object()
    producer.ended(span)
    producer.ended(object())
    assert (queue[0], len(old_queue), wake.sets) == (span, 1, 1)


@pytest.mark.parametrize("kind", IMPLEMENTATIONS)
def test_bad_construction_is_refused(kind: Any) -> None:
    queue: collections.deque[object] = collections.deque()
    with pytest.raises(TypeError):
        kind(queue, threading.Event(), Drops(), "many", 2)
    with pytest.raises(AttributeError):
        kind(object(), threading.Event(), Drops(), 4, 2).ended(object())


def test_the_batch_processor_gives_the_pipeline_its_queue_hooks(spanline_capture: Capture) -> None:
    exporter = InMemorySpanExporter()
    processor = BatchSpanProcessor(exporter, schedule_delay_millis=60000)
    spanline.tracer.add_processor(processor)
    try:
        entry = next(e for e in PIPELINE.hooks if e[0] is processor)
        assert entry[1:] == processor._spanline_hooks()
        with spanline.span("outer"), spanline.span("inner"):
            pass
        processor.on_start(spanline_capture.spans[0])  # the public methods still work
        stats = processor.stats()
        assert (stats["started"], stats["ended"], stats["queue_depth"]) == (3, 2, 2)
        assert processor.force_flush(5000)
        assert [s.name for s in exporter.get_finished_spans()] == ["inner", "outer"]
    finally:
        spanline.tracer.remove_processor(processor)
        processor.shutdown()
    assert all(e[0] is not processor for e in PIPELINE.hooks)
    processor.on_end(spanline_capture.spans[0])  # after shutdown: dropped and counted
    assert processor.stats()["dropped_after_shutdown"] == 1


class FailingHooks:
    """A processor whose offered hooks raise; its on_start/on_end are never used."""

    def __init__(self) -> None:
        self.ended: list[str] = []

    def _spanline_hooks(self) -> tuple[Any, Any]:
        def start(span: spanline.Span) -> None:
            raise ValueError("start hook broke")

        return start, lambda span: self.ended.append(span.name)

    def on_start(self, span: spanline.Span) -> None:
        raise AssertionError("the pipeline must call the hooks")

    on_end = on_start

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def test_a_failing_hook_is_counted_and_the_others_still_run(spanline_capture: Capture) -> None:
    failing = FailingHooks()
    spanline.tracer.add_processor(failing)
    try:
        with spanline.span("first"):
            with spanline.span("second"):
                pass
    finally:
        spanline.tracer.remove_processor(failing)
    assert failing.ended == ["second", "first"]
    assert spanline.tracer.stats()["processor_errors"] == 2
    assert [s.name for s in spanline_capture.spans] == ["second", "first"]


def test_hooks_that_are_not_two_callables_are_refused() -> None:
    class Odd(FailingHooks):
        def _spanline_hooks(self) -> tuple[Any, Any]:
            return (print,)  # type: ignore[return-value]

    with pytest.raises(TypeError, match="two callables"):
        spanline.tracer.add_processor(Odd())


@pytest.mark.parametrize("kind", IMPLEMENTATIONS)
def test_a_queue_made_without_init_refuses_spans_instead_of_crashing(kind: Any) -> None:
    producer = kind.__new__(kind)
    producer.reset(collections.deque(), threading.Event())  # still no drop callback
    with pytest.raises((RuntimeError, AttributeError)):
        producer.ended(object())
