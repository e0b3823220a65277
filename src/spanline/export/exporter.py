"""The exporter interface (the OpenTelemetry shape).

Threading rules: :meth:`SpanExporter.export` is called from one thread at a time (the
batch processor's worker), never from application threads.  It should respect
``timeout_millis`` where it can: a call that runs past its export timeout is counted
as timed out, but the batch processor's worker waits for it, and spans queue up (and,
once the queue is full, are dropped and counted) until it returns.
``force_flush`` and ``shutdown`` may come from any thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from spanline.core.span import Span

__all__ = ["ExportResult", "SpanExporter"]


class ExportResult(Enum):
    """What an export call achieved."""

    SUCCESS = "success"
    FAILURE = "failure"


@runtime_checkable
class SpanExporter(Protocol):
    """Sends a batch of finished spans somewhere."""

    def export(self, batch: Sequence[Span], timeout_millis: int = 30000) -> ExportResult:
        """Deliver ``batch``; return SUCCESS or FAILURE (raising counts as FAILURE)."""

    def shutdown(self) -> None:
        """Release resources; ``export`` will not be called again."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Deliver anything the exporter itself buffers."""
