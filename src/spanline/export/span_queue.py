"""The application thread's side of a batch processor's queue: count a span's start,
queue its end.

:class:`BatchSpanProcessor` hands these two calls to the pipeline as its hooks
(:meth:`spanline.core.pipeline.Pipeline.add`), so that a span's start and end reach
the queue without a Python frame in between.  When the compiled helpers are built,
``spanline._accel.SpanQueue`` does the same in C; this class defines the behaviour,
and the tests run both.

``ended(span)``: one length check, one ``deque.append`` and -- once the queue holds
a batch -- setting the worker's event if it is not set yet.  A full queue (or one
shut down) drops the span: the ``drop`` callback counts and reports it.  No lock;
concurrent producers may overshoot ``max_queue`` by one span each.
"""

from __future__ import annotations

import collections
import itertools
import operator
import threading
from collections.abc import Callable
from typing import Any

from spanline._native import load

__all__ = ["new_span_queue"]


class _PySpanQueue:
    """Counts starts and ends and queues ended spans, bounded (see the module)."""

    __slots__ = (
        "_append",
        "_batch",
        "_drop",
        "_ended",
        "_max",
        "_queue",
        "_started",
        "_wake",
        "stopping",
    )

    def __init__(
        self,
        queue: collections.deque[Any],
        wake: threading.Event,
        drop: Callable[[], None],
        max_queue: int,
        batch_size: int,
    ) -> None:
        if not callable(drop):
            raise TypeError("drop must be callable")
        self._drop = drop
        self._max = operator.index(max_queue)
        self._batch = operator.index(batch_size)
        self.reset(queue, wake)

    def reset(self, queue: collections.deque[Any], wake: threading.Event) -> None:
        """Start over with a new queue and event (a forked child), counters at 0."""
        self._append = queue.append
        self._queue = queue
        self._wake = wake
        # next() on itertools.count is one atomic C call: exact counts, no lock
        self._started = itertools.count()
        self._ended = itertools.count()
        self.stopping = False

    def started(self, span: object) -> None:
        """Count a span's start."""
        next(self._started)

    def ended(self, span: object) -> None:
        """Queue an ended span, or drop it when the queue is full or stopping."""
        next(self._ended)
        queue = self._queue
        if len(queue) >= self._max or self.stopping:
            self._drop()
            return
        self._append(span)
        if len(queue) >= self._batch and not self._wake.is_set():
            self._wake.set()

    @property
    def started_count(self) -> int:
        """Spans started so far."""
        return _peek(self._started)

    @property
    def ended_count(self) -> int:
        """Spans ended so far (queued or dropped)."""
        return _peek(self._ended)


def _peek(counter: itertools.count[int]) -> int:
    """The next value an ``itertools.count`` would return, without advancing it
    (read from its ``repr``, ``count(N)``, which every Python version keeps)."""
    return int(repr(counter)[6:-1])


_accel = load()
_SpanQueue: Any = _accel.SpanQueue if _accel is not None else _PySpanQueue


def new_span_queue(
    queue: collections.deque[Any],
    wake: threading.Event,
    drop: Callable[[], None],
    max_queue: int,
    batch_size: int,
) -> _PySpanQueue:
    """A span queue (compiled when built) feeding ``queue`` and waking ``wake``;
    ``drop()`` is called for each span a full or stopping queue turns away."""
    created: _PySpanQueue = _SpanQueue(queue, wake, drop, max_queue, batch_size)
    return created
