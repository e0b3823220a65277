"""An exporter that keeps spans in memory (for tests)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from spanline._fork import renew_after_fork
from spanline.core.span import Span
from spanline.export.exporter import ExportResult

__all__ = ["InMemorySpanExporter"]


class InMemorySpanExporter:
    """Collects every exported span, in export order (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        renew_after_fork(self)
        self._spans: list[Span] = []
        self._stopped = False

    def export(self, batch: Sequence[Span], timeout_millis: int = 30000) -> ExportResult:
        """Keep the batch; FAILURE after shutdown."""
        with self._lock:
            if self._stopped:
                return ExportResult.FAILURE
            self._spans.extend(batch)
        return ExportResult.SUCCESS

    def get_finished_spans(self) -> list[Span]:
        """A copy of everything exported so far."""
        with self._lock:
            return list(self._spans)

    def clear(self) -> None:
        """Forget exported spans."""
        with self._lock:
            self._spans.clear()

    def shutdown(self) -> None:
        """Refuse further exports."""
        with self._lock:
            self._stopped = True

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered."""
        return True
