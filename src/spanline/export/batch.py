"""The batch span processor: a bounded queue drained by one worker thread.

What the application thread does in ``on_end``: one length check, one
``deque.append``, and -- once per batch -- setting an event to wake the worker.  No
lock, no I/O, and (with the compiled helpers) no Python frame: the processor gives
the pipeline C-level hooks (:mod:`spanline.export.span_queue`).  Everything else
happens on the worker:

* it wakes when the queue reaches ``max_export_batch_size``, when
  ``schedule_delay_millis`` has passed, or on ``force_flush``/``shutdown``, and exports
  everything queued, in batches of at most ``max_export_batch_size``;
* the worker calls ``export`` itself, under ``export_timeout_millis``: a call that
  overruns is counted in ``export_timeouts`` (its spans in ``timed_out_spans``, its
  result ignored) as soon as :meth:`~BatchSpanProcessor.stats`,
  :meth:`~BatchSpanProcessor.force_flush` or :meth:`~BatchSpanProcessor.shutdown`
  sees it overrun, when a full queue drops a span, or when the call returns late; no
  new call starts until it returns, so a hung exporter never piles up threads --
  spans wait in the queue meanwhile (an export on a thread of its own, handed over
  and awaited per batch, cost a busy server 1.5-3.5 us of CPU per request at
  512-span batches: ``docs/benchmarks.md``);
* an exporter that raises or returns FAILURE is counted and logged (rate-limited);
* before export, each span passes the cardinality guard
  (:mod:`spanline.core.cardinality`): span names (and messaging attribute keys) that
  look like they carry ids are reported once per pattern and counted in
  ``high_cardinality_names`` (``high_cardinality_attributes``).

**Shutdown** flushes within its deadline, and stops waiting early for an export still
running at twice its own timeout; spans a hung export kept in the queue, or still queued
when the deadline passes, are counted ``abandoned_at_shutdown`` and no further batch
is handed to the exporter.

**Overload drops the newest span.**  When the queue holds ``max_queue_size`` spans,
the span that just ended is not queued and ``dropped_queue_full`` is incremented.
Dropping the newest costs one comparison, never disturbs spans already accepted
(so a count taken under a lock, only on this path, is exact) and never blocks the
producer.  Every span handed to ``on_end`` is eventually counted exactly once as
exported, failed, timed out or dropped.  Concurrent producers may overshoot the bound
by at most one span each (the check and the append are not one atomic step).

**Fork.**  After ``os.fork`` the child gets an empty queue, zeroed counters and its
own worker thread (pre-fork servers such as gunicorn work), while the parent carries
on untouched.  **Exit.**  ``spanline.shutdown()`` -- also registered with ``atexit`` --
flushes within ``shutdown_timeout_millis`` and then shuts the exporter down.
"""

from __future__ import annotations

import collections
import os
import threading
import time
import weakref
from typing import Any

from spanline._log import report
from spanline.core import config
from spanline.core.cardinality import CardinalityGuard
from spanline.core.span import Span
from spanline.export.exporter import ExportResult, SpanExporter
from spanline.export.span_queue import new_span_queue

__all__ = ["BatchSpanProcessor"]


class BatchSpanProcessor:
    """Queue finished spans and export them in batches from a worker thread."""

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue_size: int | None = None,
        max_export_batch_size: int | None = None,
        schedule_delay_millis: int | None = None,
        export_timeout_millis: int | None = None,
        shutdown_timeout_millis: int | None = None,
    ) -> None:
        """Options left as ``None`` come from ``OTEL_BSP_*`` (or Keryx's
        ``OTEL_SPAN_*``) variables, else the defaults: queue 2048, batch 512, delay
        5000 ms, export and shutdown timeouts 30000 ms.  Invalid values raise
        :class:`~spanline.ConfigError` naming the culprit."""
        if not callable(getattr(exporter, "export", None)):
            raise TypeError(f"{type(exporter).__name__} has no export() method")
        options = config.batch_options(
            max_queue_size=max_queue_size,
            max_export_batch_size=max_export_batch_size,
            schedule_delay_millis=schedule_delay_millis,
            export_timeout_millis=export_timeout_millis,
            shutdown_timeout_millis=shutdown_timeout_millis,
        )
        self._exporter = exporter
        self._max_queue = options.max_queue_size
        self._batch_size = options.max_export_batch_size
        self._delay_s = options.schedule_delay_millis / 1000
        self._export_timeout_ms = options.export_timeout_millis
        self._shutdown_timeout_ms = options.shutdown_timeout_millis
        self._cardinality = CardinalityGuard()
        self._start_runtime()
        _LIVE.add(self)
        ref = weakref.ref(self)
        if hasattr(os, "register_at_fork"):  # pragma: no branch - absent only on Windows
            os.register_at_fork(after_in_child=lambda: _reinit(ref))

    def _start_runtime(self) -> None:
        self._queue: collections.deque[Span] = collections.deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        if not hasattr(self, "_producer"):
            self._producer = new_span_queue(
                self._queue, self._wake, self._drop, self._max_queue, self._batch_size
            )
        else:  # a forked child: the pipeline holds this object's hooks, keep it
            self._producer.reset(self._queue, self._wake)
        self._flush_waiters: list[threading.Event] = []
        # the export call in progress: when it started (perf_counter), its spans, and
        # whether it has been counted as timed out already (all under _lock)
        self._call_started: float | None = None
        self._call_spans = 0
        self._call_counted = False
        self._flushing: threading.Thread | None = None  # an exporter flush that overran
        self._stopped = False
        self._abandoned = False
        self._counts: collections.Counter[str] = collections.Counter()
        self._last_export_ms = 0.0
        self._max_export_ms = 0.0
        self._worker = threading.Thread(target=self._run, name="spanline-batch", daemon=True)
        self._worker.start()

    # -- the application thread's side (hot path) ----------------------------------

    def on_start(self, span: Span) -> None:
        """Count the start."""
        self._producer.started(span)

    def on_end(self, span: Span) -> None:
        """Queue the span, or count it dropped if the queue is full or shut down."""
        self._producer.ended(span)

    def _spanline_hooks(self) -> tuple[Any, Any]:
        """What the pipeline calls instead of on_start/on_end: the producer's own
        methods (C-level when compiled), one call fewer per span."""
        return self._producer.started, self._producer.ended

    @property
    def _stopping(self) -> bool:
        return self._producer.stopping

    def _drop(self) -> None:
        # (off the hot path: only for a full or stopped queue) a full queue is often
        # an export that hangs; its timeout is counted and reported from here too
        self._check_overrun()
        with self._lock:
            self._counts["dropped_after_shutdown" if self._stopping else "dropped_queue_full"] += 1
        report(
            f"batch-drop:{id(self)}",
            "spanline: the export queue (%d spans) is full or shut down; dropping spans "
            "(counted in the processor's stats())",
            self._max_queue,
            level=30,
        )

    # -- the worker ---------------------------------------------------------------

    def _run(self) -> None:
        waiters: list[threading.Event] = []
        while True:
            # with flushes pending (spans arriving while it drains), poll briefly
            woken = self._wake.wait(0.05 if waiters else self._delay_s)
            self._wake.clear()
            with self._lock:
                waiters.extend(self._flush_waiters)
                self._flush_waiters = []
                stopping = self._stopping
            # Woken by the batch threshold, export full batches only: the remainder
            # waits for the next batch or the schedule delay.  (Exporting whatever
            # arrived during the previous export made ~15-span batches under steady
            # load: bench/bench_asgi.py.)  A timer tick, a flush or shutdown takes all.
            self._drain(full_only=woken and not waiters and not stopping)
            if stopping:
                # whatever a hung export kept in the queue will not leave it now
                self._abandon_queue()
            if not self._queue:
                # a flush succeeds only once what was queued has left the queue
                for waiter in waiters:
                    waiter.set()
                waiters = []
            if stopping:
                return

    def _drain(self, full_only: bool = False) -> None:
        queue = self._queue
        while len(queue) >= (self._batch_size if full_only else 1):
            with self._lock:  # shutdown may abandon the queue: never both
                if self._abandoned:
                    return
                batch = [queue.popleft() for _ in range(min(self._batch_size, len(queue)))]
            self._check_cardinality(batch)
            self._export(batch)

    def _check_cardinality(self, batch: list[Span]) -> None:
        """Run the cardinality guard over ``batch`` (on the worker, never the app)."""
        names, attributes = self._cardinality.check_batch(batch)
        if names or attributes:
            with self._lock:
                self._counts["high_cardinality_names"] += names
                self._counts["high_cardinality_attributes"] += attributes

    def _abandon_queue(self) -> int:
        """Count what is still queued as abandoned and drop it (exactly once)."""
        with self._lock:
            self._abandoned = True
            left = len(self._queue)
            self._queue.clear()
            if left:
                self._counts["abandoned_at_shutdown"] += left
        return left

    def _export(self, batch: list[Span]) -> None:
        started = time.perf_counter()
        with self._lock:
            self._call_started = started
            self._call_spans = len(batch)
            self._call_counted = False
        outcome: object
        try:
            outcome = self._exporter.export(batch, self._export_timeout_ms)
        except BaseException as error:  # noqa: BLE001 - counted and logged below
            # even SystemExit or CancelledError: this thread is the processor's, and
            # the spans queued behind this batch must still be exported or counted
            outcome = error
        ended = time.perf_counter()
        elapsed_ms = (ended - started) * 1000
        exporter_name = type(self._exporter).__name__
        with self._lock:
            late = self._overrun_locked(ended)  # it returned after its deadline
            timed_out = self._call_counted
            self._call_started = None
            self._counts["batches"] += 1
            self._last_export_ms = elapsed_ms
            self._max_export_ms = max(self._max_export_ms, elapsed_ms)
            if not timed_out:  # once counted as timed out, its result no longer counts
                succeeded = outcome is ExportResult.SUCCESS
                self._counts["exported" if succeeded else "export_failed"] += len(batch)
        if late:
            self._report_overrun(len(batch))
        if not timed_out and outcome is not ExportResult.SUCCESS:
            report(
                f"export-failed:{id(self)}",
                "spanline: %s.export failed (%r); %d spans lost",
                exporter_name,
                outcome,
                len(batch),
                exc_info=outcome if isinstance(outcome, BaseException) else None,
            )

    def _overrun_locked(self, now: float) -> bool:
        """Count the export in progress as timed out if it has overrun its timeout and
        was not counted yet; ``True`` when it was counted now (hold ``_lock``)."""
        started = self._call_started
        if (
            started is None
            or self._call_counted
            or (now - started) * 1000 <= self._export_timeout_ms
        ):
            return False
        self._call_counted = True
        self._counts["export_timeouts"] += 1
        self._counts["timed_out_spans"] += self._call_spans
        return True

    def _check_overrun(self) -> float:
        """How long (ms) the export in progress has run, 0 when none is; one that
        overran its timeout is counted and reported the first time it is seen."""
        now = time.perf_counter()
        with self._lock:
            counted_now = self._overrun_locked(now)
            started = self._call_started
            spans = self._call_spans
        if counted_now:
            self._report_overrun(spans)
        return 0.0 if started is None else (now - started) * 1000

    def _report_overrun(self, spans: int) -> None:
        report(
            f"export-timeout:{id(self)}",
            "spanline: %s.export did not finish within %d ms; %d spans counted as timed out",
            type(self._exporter).__name__,
            self._export_timeout_ms,
            spans,
        )

    # -- flushing and shutting down -----------------------------------------------

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        """Export everything queued now; ``False`` if the deadline passed first."""
        if self._stopped:
            return True
        done = threading.Event()
        with self._lock:
            self._flush_waiters.append(done)
        self._wake.set()
        timeout = self._export_timeout_ms if timeout_millis is None else timeout_millis
        deadline = time.monotonic() + timeout / 1000
        if not done.wait(timeout / 1000):
            self._check_overrun()  # a hung export may hold the queue: count it now
            return False
        # then whatever the exporter buffers itself, within what is left of the
        # deadline (on a helper thread: an exporter that ignores its timeout must not
        # hold the caller)
        previous = self._flushing
        if previous is not None:  # an earlier exporter flush overran: one at a time
            previous.join(max(0.0, deadline - time.monotonic()))
            if previous.is_alive():
                return False
        left_ms = max(0, int((deadline - time.monotonic()) * 1000))
        outcome: list[object] = []

        def call() -> None:
            try:
                outcome.append(bool(self._exporter.force_flush(left_ms)))
            except Exception as error:  # noqa: BLE001 - counted and logged below
                outcome.append(error)

        thread = threading.Thread(target=call, name="spanline-flush", daemon=True)
        thread.start()
        thread.join(max(0.0, deadline - time.monotonic()) + 0.05)
        self._flushing = thread if thread.is_alive() else None
        result = outcome[0] if outcome else None
        if isinstance(result, Exception) or result is None:
            with self._lock:
                self._counts["flush_errors"] += 1
            report(
                f"exporter-flush:{id(self)}",
                "spanline: %s.force_flush %s",
                type(self._exporter).__name__,
                f"failed: {result!r}" if result is not None else "did not finish in time",
                level=30,
            )
            return False
        return result is True

    def shutdown(self, timeout_millis: int | None = None) -> None:
        """Flush within the shutdown deadline, stop the worker, shut the exporter down.

        Spans that end afterwards are dropped and counted; a second call does nothing.
        """
        with self._lock:
            if self._stopping:
                return
            self._producer.stopping = True
        timeout = self._shutdown_timeout_ms if timeout_millis is None else timeout_millis
        self._wake.set()
        deadline = time.monotonic() + timeout / 1000
        hung = False
        while True:
            self._worker.join(min(0.05, max(0.0, deadline - time.monotonic())))
            if not self._worker.is_alive():
                break
            # An export still running at twice its timeout is taken for hung and not
            # waited for (a slow one that ends soon after its timeout is).
            hung = self._check_overrun() > 2 * self._export_timeout_ms
            if hung or time.monotonic() >= deadline:
                break
        if self._worker.is_alive():
            # Stop the worker taking more batches and count what is left once (the
            # batch being exported finishes, or is already counted as timed out).
            left = self._abandon_queue()
            if not hung:
                with self._lock:
                    self._counts["shutdown_timeouts"] += 1
            report(
                f"shutdown-timeout:{id(self)}",
                "spanline: %s; %d queued spans abandoned at shutdown",
                f"an export hung for over {2 * self._export_timeout_ms} ms"
                if hung
                else f"the shutdown deadline ({timeout} ms) passed",
                left,
            )
        self._stopped = True
        try:
            self._exporter.shutdown()
        except Exception as error:  # noqa: BLE001 - tracing never breaks the app
            report(
                f"exporter-shutdown:{id(self)}",
                "spanline: %s.shutdown failed: %r",
                type(self._exporter).__name__,
                error,
                exc_info=error,
            )

    # -- reading ------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters: started, ended, exported, export_failed, export_timeouts,
        timed_out_spans, dropped_queue_full, dropped_after_shutdown, batches,
        high_cardinality_names and high_cardinality_attributes (spans whose name, or
        messaging attribute keys, look like they carry ids), flush_errors (an
        exporter's force_flush that raised or overran the deadline); the queue
        depth; the last and the slowest export's latency in ms; and the exporter's own
        ``stats()`` under ``exporter`` when it has them.  An export running past its
        timeout is counted (and reported) by this call if nothing counted it yet."""
        self._check_overrun()
        with self._lock:
            snapshot: dict[str, Any] = dict(self._counts)
            snapshot["last_export_ms"] = self._last_export_ms
            snapshot["max_export_ms"] = self._max_export_ms
        snapshot["started"] = self._producer.started_count
        snapshot["ended"] = self._producer.ended_count
        snapshot["queue_depth"] = len(self._queue)
        exporter_stats = getattr(self._exporter, "stats", None)
        if callable(exporter_stats):
            snapshot["exporter"] = {"name": type(self._exporter).__name__, **exporter_stats()}
        for key in (
            "exported",
            "export_failed",
            "export_timeouts",
            "timed_out_spans",
            "dropped_queue_full",
            "dropped_after_shutdown",
            "batches",
            "high_cardinality_names",
            "high_cardinality_attributes",
            "flush_errors",
        ):
            snapshot.setdefault(key, 0)
        return snapshot


_LIVE: weakref.WeakSet[BatchSpanProcessor] = weakref.WeakSet()


def _reinit(ref: weakref.ref[BatchSpanProcessor]) -> None:
    """In a forked child: a fresh queue, counters and worker for a live processor."""
    processor = ref()
    if processor is not None and not processor._stopped:
        processor._start_runtime()
