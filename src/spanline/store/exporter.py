"""The store exporter: finished spans into the store, behind a batch processor.

``BatchSpanProcessor(StoreExporter())`` is the whole pipeline: the processor keeps
the application thread's cost at one ``deque.append`` and calls :meth:`export` from
its worker; the exporter hands the batch to its
:class:`~spanline.store.writer.StoreWriter`, whose one thread converts it to rows and
writes them.

``export`` waits (within its timeout) until the batch is committed, so a flushed
processor means committed rows -- or, while the store is unreachable, until the rows
are parked in the writer's bounded queue, from which they are written once it is
back.  It returns FAILURE only for spans that were dropped (queue full or closed),
so the processor's ``export_failed`` counts exactly the spans lost.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from spanline.core import config
from spanline.core.location import StoreLocation
from spanline.export.exporter import ExportResult
from spanline.store.retention import Retention
from spanline.store.writer import StoreWriter

if TYPE_CHECKING:
    from spanline.core.span import Span

__all__ = ["StoreExporter"]


class StoreExporter:
    """Export finished spans to a SQLite or PostgreSQL store.

    ``store`` as for :func:`spanline.store.resolve_store` (default ``SPANLINE_STORE``,
    else ``./spanline.db``); ``service`` is written on every row (default: the
    configured ``service.name``); the other options are the
    :class:`~spanline.store.writer.StoreWriter`'s.
    """

    def __init__(
        self,
        store: str | os.PathLike[str] | StoreLocation | None = None,
        *,
        service: str | None = None,
        schema: str | None = None,
        retention: Retention | None = None,
        writer: StoreWriter | None = None,
        **writer_options: Any,
    ) -> None:
        if writer is not None and (store is not None or schema or retention or writer_options):
            raise TypeError("pass either writer= or the store and its options, not both")
        self.writer = writer or StoreWriter(
            store, schema=schema, retention=retention, **writer_options
        )
        self._service = service

    @property
    def service(self) -> str:
        """The service name written on rows."""
        return self._service or config.settings.resource["service.name"]

    def export(self, batch: Sequence[Span], timeout_millis: int = 30000) -> ExportResult:
        """Convert and queue the batch; wait until it is committed or parked."""
        # the writer thread converts the spans: rows built on the thread that writes
        # them are cheaper to write.  Wait a little less than the caller's deadline, so
        # a slow commit is reported as accepted-and-queued, not as a timed-out export.
        if self.writer.submit_spans(batch, self.service, wait_s=timeout_millis / 1000 * 0.9):
            return ExportResult.SUCCESS
        return ExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Wait until every queued row is committed."""
        return self.writer.flush(timeout_millis / 1000)

    def shutdown(self) -> None:
        """Write what is queued (30 s at most) and close the store."""
        self.writer.close()

    def stats(self) -> dict[str, Any]:
        """The writer's counters (see :meth:`StoreWriter.stats`)."""
        return self.writer.stats()
