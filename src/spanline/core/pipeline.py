"""Where finished spans go: the registered processors and the ring of completed trees.

Threading rules (the contract later exporters build on):

* ``on_start(span)`` runs on the thread that started the span, right after it became
  current; ``on_end(span)`` runs on the thread that ended it, after it stopped being
  current.  Both must be fast and must not block: a processor that does I/O hands the
  span to its own thread.  The span is finished (read-only) by the time ``on_end``
  sees it.
* A processor that raises is counted in :meth:`Pipeline.stats` and logged once a
  minute at most; the exception never reaches the application.
* ``shutdown()`` and ``force_flush(timeout_millis)`` are called from whichever thread
  calls :func:`spanline.shutdown` / :meth:`Tracer.force_flush`.
* A processor may offer ``_spanline_hooks()``, returning the two callables the
  pipeline then calls instead of its ``on_start`` and ``on_end`` (read once, when the
  processor is added; they must behave as those methods do).  The batch processor
  offers C-level ones, so a span reaches its queue without a Python frame.
"""

from __future__ import annotations

import atexit
import collections
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from spanline._fork import renew_after_fork
from spanline._log import report

if TYPE_CHECKING:
    from spanline.core.span import Span

__all__ = ["PIPELINE", "Pipeline", "SpanProcessor"]

Hook = Callable[["Span"], object]


@runtime_checkable
class SpanProcessor(Protocol):
    """Receives every recorded span when it starts and when it ends."""

    def on_start(self, span: Span) -> None:
        """Called when ``span`` has started (on the starting thread)."""

    def on_end(self, span: Span) -> None:
        """Called when ``span`` has ended (on the ending thread)."""

    def shutdown(self) -> None:
        """Release resources; no more spans will arrive."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Deliver everything buffered; return ``False`` if the deadline passed."""


class Pipeline:
    """The registered processors, the completed-trees ring and the error counters."""

    __slots__ = ("_counts", "_lock", "hooks", "ring")

    def __init__(self, ring_size: int = 100) -> None:
        # (processor, its start hook, its end hook) per processor, in order: what the
        # hot path checks and calls (the compiled span lifecycle reads it too)
        self.hooks: tuple[tuple[SpanProcessor, Hook, Hook], ...] = ()
        self.ring: collections.deque[Span] = collections.deque(maxlen=ring_size)
        self._lock = threading.Lock()
        renew_after_fork(self)
        self._counts: collections.Counter[str] = collections.Counter()

    # -- registration (not on the hot path; copy-on-write so readers need no lock) --

    def add(self, processor: SpanProcessor) -> None:
        """Register a processor; it sees spans started from now on."""
        for method in ("on_start", "on_end"):
            if not callable(getattr(processor, method, None)):
                raise TypeError(
                    f"{type(processor).__name__} has no {method}() method; "
                    "a span processor needs on_start, on_end, shutdown and "
                    "force_flush"
                )
        on_start, on_end = _hooks_of(processor)
        with self._lock:
            self.hooks = (*self.hooks, (processor, on_start, on_end))

    def remove(self, processor: SpanProcessor) -> None:
        """Unregister a processor (no error if it was not registered)."""
        with self._lock:
            self.hooks = tuple(entry for entry in self.hooks if entry[0] is not processor)

    @property
    def processors(self) -> tuple[SpanProcessor, ...]:
        """The registered processors, in order."""
        return tuple(entry[0] for entry in self.hooks)

    def set_ring_size(self, size: int) -> None:
        """Keep at most ``size`` completed root spans (the newest ones)."""
        with self._lock:
            if self.ring.maxlen != size:
                self.ring = collections.deque(self.ring, maxlen=size)

    # -- the calls the hot path makes only when processors exist --

    def start(self, span: Span) -> None:
        """Tell every processor that ``span`` started."""
        for processor, on_start, _ in self.hooks:
            try:
                on_start(span)
            except Exception as error:  # noqa: BLE001 - tracing never breaks the app
                self.failed("processor_errors", processor, "on_start", error)

    def end(self, span: Span) -> None:
        """Tell every processor that ``span`` ended."""
        for processor, _, on_end in self.hooks:
            try:
                on_end(span)
            except Exception as error:  # noqa: BLE001 - tracing never breaks the app
                self.failed("processor_errors", processor, "on_end", error)

    # -- counters --

    def count(self, name: str, amount: int = 1) -> None:
        """Add to a named counter (errors, drops, rejected payloads...)."""
        with self._lock:
            self._counts[name] += amount

    def failed(self, counter: str, culprit: object, where: str, error: BaseException) -> None:
        """Count a failure and log it (rate-limited), naming the culprit."""
        self.count(counter)
        name = getattr(culprit, "__qualname__", None) or type(culprit).__qualname__
        report(
            f"{counter}:{name}:{where}",
            "spanline: %s.%s failed: %r (counted in spanline.tracer.stats(); tracing continues)",
            name,
            where,
            error,
            exc_info=error,
        )

    def stats(self) -> dict[str, int]:
        """A snapshot of the counters plus the ring's fill level."""
        with self._lock:
            snapshot = dict(self._counts)
        snapshot["completed_retained"] = len(self.ring)
        snapshot["processors"] = len(self.processors)
        return snapshot

    def shutdown(self) -> None:
        """Shut every processor down (errors counted, never raised)."""
        for processor in self.processors:
            try:
                processor.shutdown()
            except Exception as error:  # noqa: BLE001
                self.failed("processor_errors", processor, "shutdown", error)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush every processor; ``False`` if any missed the deadline or failed."""
        ok = True
        for processor in self.processors:
            try:
                ok = bool(processor.force_flush(timeout_millis)) and ok
            except Exception as error:  # noqa: BLE001
                self.failed("processor_errors", processor, "force_flush", error)
                ok = False
        return ok

    def clear(self) -> None:
        """Forget retained trees and counters; processors stay registered."""
        with self._lock:
            self.ring.clear()
            self._counts.clear()

    def reset(self) -> None:
        """Also drop every processor (used between tests)."""
        self.clear()
        with self._lock:
            self.hooks = ()


def _hooks_of(processor: SpanProcessor) -> tuple[Hook, Hook]:
    """The callables the pipeline calls for ``processor``'s starts and ends: its
    ``_spanline_hooks()`` when it offers them, else its ``on_start`` and ``on_end``."""
    offered = getattr(processor, "_spanline_hooks", None)
    if callable(offered):
        hooks = offered()
        if (
            isinstance(hooks, tuple)
            and len(hooks) == 2
            and callable(hooks[0])
            and callable(hooks[1])
        ):
            return hooks
        raise TypeError(
            f"{type(processor).__name__}._spanline_hooks() must return two callables "
            f"(a start hook and an end hook), not {hooks!r}"
        )
    return processor.on_start, processor.on_end


PIPELINE = Pipeline()
"""The process-wide pipeline every span reports to."""


@atexit.register
def _shutdown_at_exit() -> None:
    """At interpreter exit, let every processor flush within its own deadline."""
    PIPELINE.shutdown()
