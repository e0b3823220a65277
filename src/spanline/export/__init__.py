"""Getting finished spans out of the process: processors and exporters.

* :class:`BatchSpanProcessor` -- a bounded queue drained by one worker thread, which
  hands batches to a :class:`SpanExporter`;
* exporters: :class:`InMemorySpanExporter` (tests), :class:`JsonLinesExporter` (a
  file, one span per line), :class:`ConsoleExporter` (each finished trace as a tree).
"""

from __future__ import annotations

from spanline.export.batch import BatchSpanProcessor
from spanline.export.console import ConsoleExporter
from spanline.export.exporter import ExportResult, SpanExporter
from spanline.export.jsonl import JsonLinesExporter
from spanline.export.memory import InMemorySpanExporter
from spanline.export.record import span_record
from spanline.export.tail_sampling import TailSamplingProcessor

__all__ = [
    "BatchSpanProcessor",
    "ConsoleExporter",
    "ExportResult",
    "InMemorySpanExporter",
    "JsonLinesExporter",
    "SpanExporter",
    "TailSamplingProcessor",
    "span_record",
]
