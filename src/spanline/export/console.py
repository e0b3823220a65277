"""An exporter that prints each finished trace as an indented tree."""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from typing import TextIO

from spanline._fork import renew_after_fork
from spanline.core.render import render_tree
from spanline.core.span import Span
from spanline.export.exporter import ExportResult

__all__ = ["ConsoleExporter"]


class ConsoleExporter:
    """Print the tree of every local root span it exports (children print with their
    root, since the whole tree is in memory when the root ends)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        renew_after_fork(self)

    def export(self, batch: Sequence[Span], timeout_millis: int = 30000) -> ExportResult:
        """Print the trees whose roots are in ``batch``."""
        roots = [s for s in batch if s.parent is None]
        if roots:
            text = "".join(f"trace {r.trace_id}\n{render_tree(r)}\n\n" for r in roots)
            with self._lock:
                stream = self._stream or sys.stdout
                stream.write(text)
                stream.flush()
        return ExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered."""
        return True

    def shutdown(self) -> None:
        """Nothing to release."""
