"""What the viewer reads and writes: the :class:`TraceSource` protocol.

The viewer's pages and its OTLP receiver speak only to this protocol; the recording
store (``spanline.store``) provides it.  Span dictionaries have these keys (the JSON
shape of ``/api/traces/{id}``, documented in ``docs/viewer.md``): ``trace_id``,
``trace_hex``, ``id``, ``span_id`` and ``parent_span_id`` (W3C hex), ``name``,
``service``, ``kind``, ``status`` (``unset``/``ok``/``error``), ``status_message``,
``start_ns``, ``end_ns`` (``None`` while in progress), ``duration_ns``, ``actor``
(``"user:42"`` or ``None``), ``frames``, ``attributes``, ``records``, ``meta`` and
``events`` (each with ``name``, ``timestamp_ns``, ``offset_ns`` and ``attributes``).
"""

from __future__ import annotations

from typing import Any, Protocol

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from spanline.viewer.query import SearchQuery

__all__ = ["TraceSource"]


class TraceSource(Protocol):
    """The store as the viewer sees it.  Methods are called from worker threads (the
    web server runs them off its event loop), so they must be thread-safe."""

    label: str
    """Where the data lives, for the page header (a path, or a DSN without password)."""

    def search(self, query: SearchQuery, since_ns: int | None) -> list[dict[str, Any]]:
        """Trace summaries: ``trace_id``, ``trace_hex``, ``root_name``, ``service``,
        ``actor``, ``start_ns``, ``duration_ns``, ``span_count``, ``error``."""
        ...

    def trace(self, trace_id: str) -> list[dict[str, Any]] | None:
        """Every span of a trace (by ``tr_`` id or W3C hex), or ``None``."""
        ...

    def services(self) -> list[str]:
        """Service names seen, sorted."""
        ...

    def operations(self, since_ns: int | None, service: str | None) -> list[dict[str, Any]]:
        """Per operation: ``name``, ``service``, ``count``, ``errors``,
        ``error_rate``, ``rate_per_s`` (over the window), ``p50_ns``, ``p95_ns``,
        ``p99_ns``."""
        ...

    def version(self) -> int:
        """A number that grows whenever spans are added (for live updates)."""
        ...

    def ingest(self, request: ExportTraceServiceRequest) -> tuple[int, str]:
        """Store the spans of an OTLP request; ``(rejected count, message)``."""
        ...
