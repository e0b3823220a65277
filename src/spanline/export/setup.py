"""Installing the export pipeline that ``configure(exporter=…)`` /
``OTEL_TRACES_EXPORTER`` names: one batch processor per exporter.

``otlp`` is :class:`~spanline.export.otlp_http.OtlpHttpExporter` (options from the
``OTEL_EXPORTER_OTLP_*`` variables), ``console`` is
:class:`~spanline.export.ConsoleExporter`, ``store`` is
:class:`~spanline.store.StoreExporter` (the store from ``configure(store=...)`` /
``SPANLINE_STORE``, default ``./spanline.db``), ``none`` installs nothing.  Changing the
setting shuts the previously installed processors down (flushing them) and installs
the new ones; processors you registered yourself are left alone.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence

from spanline._fork import renew_after_fork
from spanline.core.pipeline import PIPELINE
from spanline.export.batch import BatchSpanProcessor
from spanline.export.console import ConsoleExporter
from spanline.export.exporter import SpanExporter

__all__ = ["EXPORTER_NAMES", "install", "installed"]

EXPORTER_NAMES = ("otlp", "console", "store", "none")

_lock = threading.Lock()
renew_after_fork(sys.modules[__name__])
_installed: list[tuple[str, BatchSpanProcessor]] = []


def _exporter(name: str, store: str | None) -> SpanExporter:
    if name == "otlp":
        from spanline.export.otlp_http import OtlpHttpExporter

        return OtlpHttpExporter()
    if name == "console":
        return ConsoleExporter()
    if name == "store":
        from spanline.store.exporter import StoreExporter

        return StoreExporter(store)
    raise ValueError(f"unknown exporter {name!r}; use one of {', '.join(EXPORTER_NAMES)}")


def install(names: Sequence[str], store: str | None = None) -> list[BatchSpanProcessor]:
    """Make the installed exporters exactly ``names`` (``none`` or empty: no export);
    ``store`` is where the ``store`` exporter writes (``None``: ``SPANLINE_STORE``,
    else ``./spanline.db``).  A different store replaces the store exporter."""
    wanted = [n if n != "store" else f"store:{store or ''}" for n in names if n != "none"]
    with _lock:
        if [n for n, _ in _installed] == wanted:
            return [p for _, p in _installed]
        built: list[tuple[str, BatchSpanProcessor]] = []
        try:
            for key in wanted:
                exporter = _exporter(key.split(":", 1)[0], store)
                built.append((key, BatchSpanProcessor(exporter)))
        except BaseException:
            for _, processor in built:  # a later one failed: stop the workers started
                processor.shutdown(timeout_millis=1000)
            raise
        old = list(_installed)
        _installed[:] = built
    for _, processor in old:
        PIPELINE.remove(processor)
        processor.shutdown()
    for _, processor in built:
        PIPELINE.add(processor)
    return [p for _, p in built]


def installed() -> list[BatchSpanProcessor]:
    """The processors installed from the ``exporters`` setting."""
    with _lock:
        return [p for _, p in _installed]
