"""Per-span cost of spanline against the OpenTelemetry SDK, in one process run.

Run:  python bench/bench_core.py            (needs `pip install -e '.[bench]'`)
      python bench/bench_core.py --quick    (fewer rounds, for a smoke run)

Workloads, each timed in alternating rounds with its OpenTelemetry twin so that
machine noise hits both alike; the reported figure is the median round:

  span        with spanline.span("op") as s: s.set_attribute("k", i)
  span+queue  the same with a processor that hands each finished span to a bounded
              queue (what an exporter's batch processor does on the app thread)
  operation   a two-level operation call: Outer().call() -> Inner().call()
  @operation  the same with two @spanline.operation functions
  disabled    the operation call with configure(enabled=False), and a plain span
  baseline    the same two-level call on plain classes with no tracing, so the
              tracing overhead of an operation can be told from Python's own cost

The OpenTelemetry side is TracerProvider + BatchSpanProcessor feeding an exporter
that drops everything; the operation twin is two nested start_as_current_span.
Memory: bytes retained per finished span kept in spanline's completed-trees ring,
measured with tracemalloc.
"""

from __future__ import annotations

import argparse
import collections
import gc
import logging
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence

import spanline
from spanline.core.span import Span

try:
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )
except ImportError:  # pragma: no cover - a clear message instead of a traceback
    sys.exit("the benchmark compares against the OpenTelemetry SDK: pip install -e '.[bench]'")


class DropExporter(SpanExporter):
    """Accepts every batch and keeps nothing."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


class QueueProcessor:
    """Hands finished spans to a bounded deque, as a batch processor would."""

    def __init__(self) -> None:
        self.queue: collections.deque[Span] = collections.deque(maxlen=2048)

    def on_start(self, span: Span) -> None:
        return None

    def on_end(self, span: Span) -> None:
        self.queue.append(span)

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class Inner(spanline.Operation):
    def perform(self) -> int:
        return 1


class Outer(spanline.Operation):
    def perform(self) -> int:
        return Inner().call() + 1


@spanline.operation
def inner_fn() -> int:
    return 1


@spanline.operation
def outer_fn() -> int:
    return inner_fn() + 1


def spanline_decorated(n: int) -> None:
    for _ in range(n):
        outer_fn()


class PlainInner:
    """The same two-level call with no tracing at all: Python's own cost."""

    def __init__(self, **params: object) -> None:
        self.params = params

    def call(self) -> int:
        return self.perform()

    def perform(self) -> int:
        return 1


class PlainOuter(PlainInner):
    def perform(self) -> int:
        return PlainInner().call() + 1


def plain_operation(n: int) -> None:
    for _ in range(n):
        PlainOuter().call()


def spanline_span(n: int) -> None:
    span = spanline.span
    for i in range(n):
        with span("op") as s:
            s.set_attribute("k", i)


def spanline_operation(n: int) -> None:

    for _ in range(n):
        Outer().call()


def make_otel() -> tuple[Callable[[int], None], Callable[[int], None], TracerProvider]:
    # The SDK's batch processor logs "Queue full, dropping Span" under this load.
    logging.getLogger("opentelemetry").setLevel(logging.ERROR)
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DropExporter()))
    tracer = provider.get_tracer("bench")

    def otel_span(n: int) -> None:
        start = tracer.start_as_current_span
        for i in range(n):
            with start("op") as s:
                s.set_attribute("k", i)

    def otel_operation(n: int) -> None:
        start = tracer.start_as_current_span
        for _ in range(n):
            with start("Outer"), start("Inner"):
                pass

    return otel_span, otel_operation, provider


def per_call_us(fn: Callable[[int], None], n: int) -> float:
    started = time.perf_counter()
    fn(n)
    return (time.perf_counter() - started) / n * 1e6


def alternate(
    pairs: dict[str, tuple[Callable[[int], None], Callable[[int], None] | None]],
    setups: dict[str, Callable[[], None]],
    rounds: int,
    n: int,
) -> dict[str, tuple[float, float | None]]:
    samples: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in pairs}
    for _ in range(rounds):
        for name, (ours, theirs) in pairs.items():
            setups[name]()
            samples[name][0].append(per_call_us(ours, n))
            if theirs is not None:
                samples[name][1].append(per_call_us(theirs, n))
    return {
        name: (statistics.median(a), statistics.median(b) if b else None)
        for name, (a, b) in samples.items()
    }


def memory_per_span(n: int) -> float:
    spanline.testing.reset_all()
    spanline.configure(ring_size=n)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    spanline_span(n)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    retained = len(spanline.tracer.completed)
    spanline.testing.reset_all()
    return (after - before) / retained


def main() -> None:
    import spanline.testing

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    args = parser.parse_args()
    rounds, n = (3, 5_000) if args.quick else (9, 20_000)

    otel_span, otel_operation, provider = make_otel()
    queue = QueueProcessor()

    def plain() -> None:
        spanline.testing.reset_all()

    def with_queue() -> None:
        spanline.testing.reset_all()
        spanline.tracer.add_processor(queue)

    def disabled() -> None:
        spanline.testing.reset_all()
        spanline.configure(enabled=False)

    results = alternate(
        {
            "span": (spanline_span, otel_span),
            "span+queue": (spanline_span, otel_span),
            "operation": (spanline_operation, otel_operation),
            "disabled operation": (spanline_operation, otel_operation),
            "@operation": (spanline_decorated, otel_operation),
            "disabled @operation": (spanline_decorated, otel_operation),
            "disabled span": (spanline_span, otel_span),
            "untraced baseline": (plain_operation, None),
        },
        {
            "span": plain,
            "span+queue": with_queue,
            "operation": plain,
            "disabled operation": disabled,
            "@operation": plain,
            "disabled @operation": disabled,
            "disabled span": disabled,
            "untraced baseline": plain,
        },
        rounds,
        n,
    )
    provider.shutdown()
    spanline.testing.reset_all()
    spans_per_call = {
        "operation": 2,
        "disabled operation": 2,
        "@operation": 2,
        "disabled @operation": 2,
        "untraced baseline": 2,
    }
    print(f"python {platform.python_version()} on {platform.machine()}, {rounds} rounds x {n}")
    print(f"{'workload':<20}{'spanline µs/span':>18}{'otel µs/span':>15}{'ratio':>9}")
    for name, (ours, theirs) in results.items():
        per = spans_per_call.get(name, 1)
        ours_span = ours / per
        theirs_span = theirs / per if theirs is not None else None
        ratio = f"1/{theirs_span / ours_span:.1f}" if theirs_span else "-"
        theirs_text = f"{theirs_span:.2f}" if theirs_span is not None else "-"
        print(f"{name:<20}{ours_span:>18.3f}{theirs_text:>15}{ratio:>9}")
    baseline = results["untraced baseline"][0]
    for name in ("operation", "disabled operation", "@operation", "disabled @operation"):
        overhead = (results[name][0] - baseline) / 2
        print(f"{name} overhead over untraced Python: {overhead:.3f} µs/span")
    print(f"memory per retained finished span: {memory_per_span(10_000):.0f} bytes")


if __name__ == "__main__":
    main()
