"""Tail sampling: decide what to keep once a local trace is complete.

:class:`TailSamplingProcessor` sits in front of another processor (usually a
:class:`~spanline.export.BatchSpanProcessor`).  It buffers the spans of each local
trace -- everything under one local root span in this process -- until that root
ends, then forwards the whole tree if

* any span in it has status ERROR, or
* the root took at least ``slow_ms``, or
* the trace wins ``ratio`` (decided on the trace id, as :class:`TraceIdRatio` does),

and drops it otherwise.  Memory is bounded: at most ``max_buffered_spans`` spans are
held; past that the oldest unfinished trace is dropped whole.  Every dropped span is
counted (``stats()``).  Spans that end after their root was decided (work handed to
another thread, say) follow that decision for ``decision_memory`` traces.

Unlike head sampling this needs every span of a trace recorded first, so use it with
head sampling left at ``always_on`` (the default).  ``on_end`` takes a lock: this is
an opt-in processor, not the default hot path.
"""

from __future__ import annotations

import collections
import threading

from spanline._fork import renew_after_fork
from spanline.core.pipeline import SpanProcessor
from spanline.core.sampling import TraceIdRatio
from spanline.core.span import Span, StatusCode

__all__ = ["TailSamplingProcessor"]


class TailSamplingProcessor:
    """Keep whole local traces that failed, were slow, or win a ratio."""

    def __init__(
        self,
        downstream: SpanProcessor,
        *,
        slow_ms: float | None = None,
        ratio: float = 0.0,
        max_buffered_spans: int = 10_000,
        decision_memory: int = 10_000,
    ) -> None:
        if slow_ms is not None and slow_ms < 0:
            raise ValueError(f"slow_ms must be >= 0, got {slow_ms!r}")
        if max_buffered_spans <= 0 or decision_memory <= 0:
            raise ValueError("max_buffered_spans and decision_memory must be > 0")
        self._downstream = downstream
        self._slow_ns = None if slow_ms is None else int(slow_ms * 1_000_000)
        self._ratio = TraceIdRatio(ratio)
        self._max_spans = max_buffered_spans
        self._lock = threading.Lock()
        renew_after_fork(self)
        # key: the local root's span id -> spans ended so far, oldest trace first
        self._buffers: collections.OrderedDict[int, list[Span]] = collections.OrderedDict()
        self._buffered = 0
        self._decided: collections.OrderedDict[int, bool] = collections.OrderedDict()
        self._decision_memory = decision_memory
        self._counts: collections.Counter[str] = collections.Counter()

    @staticmethod
    def _root_of(span: Span) -> Span:
        node = span
        while (parent := node.parent) is not None:
            node = parent
        return node

    def on_start(self, span: Span) -> None:
        """Pass the start on (batch processors ignore it)."""
        self._downstream.on_start(span)

    def on_end(self, span: Span) -> None:
        """Buffer the span; when it is a local root, decide for its whole tree."""
        root = self._root_of(span)
        key = root.span_id
        forward: list[Span] = []
        with self._lock:
            decided = self._decided.get(key)
            if decided is not None:  # a straggler after its trace was decided
                if decided:
                    forward = [span]
                else:
                    self._counts["dropped_spans"] += 1
            else:
                buffer = self._buffers.setdefault(key, [])
                buffer.append(span)
                self._buffered += 1
                if span is root:
                    forward = self._decide(key, root)
                else:
                    self._evict_over_limit()
        for finished in forward:
            self._downstream.on_end(finished)

    def _decide(self, key: int, root: Span) -> list[Span]:
        spans = self._buffers.pop(key)
        self._buffered -= len(spans)
        keep = (
            any(s.status == StatusCode.ERROR for s in spans)
            or (self._slow_ns is not None and root.end_ns - root.start_ns >= self._slow_ns)
            or self._ratio.should_sample(int(root.trace_hex or "0", 16), None)
        )
        self._decided[key] = keep
        if len(self._decided) > self._decision_memory:
            self._decided.popitem(last=False)
        if keep:
            self._counts["kept_traces"] += 1
            return spans
        self._counts["dropped_traces"] += 1
        self._counts["dropped_spans"] += len(spans)
        return []

    def _evict_over_limit(self) -> None:
        while self._buffered > self._max_spans and self._buffers:
            key, spans = self._buffers.popitem(last=False)
            self._buffered -= len(spans)
            self._counts["evicted_traces"] += 1
            self._counts["dropped_spans"] += len(spans)
            self._decided[key] = False

    def stats(self) -> dict[str, int]:
        """kept_traces, dropped_traces, evicted_traces (memory bound), dropped_spans,
        and buffered_spans right now."""
        with self._lock:
            counts = dict(self._counts)
            counts["buffered_spans"] = self._buffered
        for key in ("kept_traces", "dropped_traces", "evicted_traces", "dropped_spans"):
            counts.setdefault(key, 0)
        return counts

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush downstream (undecided traces stay buffered until their root ends)."""
        return self._downstream.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Shut downstream down; undecided traces are dropped and counted."""
        with self._lock:
            self._counts["dropped_spans"] += self._buffered
            self._buffers.clear()
            self._buffered = 0
        self._downstream.shutdown()
