"""An exporter that appends one JSON object per span to a file (JSON Lines)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from spanline._fork import renew_after_fork
from spanline.core.span import Span
from spanline.export.exporter import ExportResult
from spanline.export.record import span_record

__all__ = ["JsonLinesExporter"]


class JsonLinesExporter:
    """Append finished spans to ``path``, one :func:`span_record` per line.

    Each batch is written with a single ``write`` and flushed, so a reader (or a crash)
    sees whole lines.  The file is opened lazily, and reopened in a forked child so
    parent and child never share a file offset.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        renew_after_fork(self)
        self._file: IO[str] | None = None
        self._pid = os.getpid()

    def _handle(self) -> IO[str]:
        if self._file is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
            self._pid = os.getpid()
        return self._file

    def export(self, batch: Sequence[Span], timeout_millis: int = 30000) -> ExportResult:
        """Write the batch; an I/O error raises (the batch processor counts it)."""
        text = "".join(json.dumps(span_record(s), ensure_ascii=False) + "\n" for s in batch)
        with self._lock:
            handle = self._handle()
            handle.write(text)
            handle.flush()
        return ExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the file."""
        with self._lock:
            if self._file is not None:
                self._file.flush()
        return True

    def shutdown(self) -> None:
        """Close the file."""
        with self._lock:
            if self._file is not None and self._pid == os.getpid():
                self._file.close()
            self._file = None
