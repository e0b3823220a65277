"""An event-fed trace backend (the Tasker design): lifecycle events become spans.

Systems that announce their work as events -- ``task.started``, ``step.completed``,
``payment.before_charge`` -- get traces without touching their code::

    backend = spanline.TraceBackend.instance()
    backend.handle_event("task.started", {"task_id": 7, "name": "import"})
    backend.handle_event("step.started", {"task_id": 7, "step_id": 1})
    backend.handle_event("step.before_fetch", {"task_id": 7, "step_id": 1})
    backend.handle_event("step.completed", {"task_id": 7, "step_id": 1})
    backend.handle_event("task.failed", {"task_id": 7, "error": "timeout"})

Routing by suffix:

* ``*.started`` opens a span keyed by the payload's ids (``task_id``, ``step_id``,
  ``operation_id``, outermost first); the open span of the longest shorter prefix is
  its parent, so steps nest under their task;
* ``*.completed`` / ``*.failed`` close it (``failed`` sets ERROR with the payload's
  ``error`` or ``error_message``);
* ``*.before_*`` / ``*.after_*`` add an event to the open span;
* anything else becomes a standalone, zero-length span.

Spans go through the same processors and exporters as every other span.  Finished
traces are also kept here, as JSON-ready trees, until :meth:`TraceBackend.export`
hands them over -- at most ``max_traces`` of them (the oldest are dropped, counted)
-- so memory stays bounded, unlike the original design, which never removed
anything.  Handling never raises: a bad event returns ``False`` and is counted.
"""

from __future__ import annotations

import collections
import socket
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from spanline._fork import renew_after_fork
from spanline._log import report
from spanline.core.span import Span

__all__ = ["TraceBackend"]

ID_KEYS = ("operation_id", "step_id", "task_id")
_MAX_OPEN = 10_000


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


class TraceBackend:
    """Collects spans from lifecycle events; thread-safe; never raises."""

    _instance: ClassVar[TraceBackend | None] = None
    _instance_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, max_traces: int = 1000) -> None:
        if max_traces <= 0:
            raise ValueError(f"max_traces must be > 0, got {max_traces!r}")
        self.max_traces = max_traces
        self.instance_id = socket.gethostname()
        self.created_at = _now_iso()
        self._created = time.monotonic()
        self._lock = threading.Lock()
        renew_after_fork(self)
        self._open: dict[tuple[tuple[str, str], ...], Span] = {}
        self._finished: collections.OrderedDict[str, list[dict[str, Any]]] = (
            collections.OrderedDict()
        )
        self._counts: collections.Counter[str] = collections.Counter()

    @classmethod
    def instance(cls) -> TraceBackend:
        """The process-wide backend (created on first use)."""
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    # -- events ---------------------------------------------------------------------

    def handle_event(self, event_name: str, payload: Mapping[str, Any] | None = None) -> bool:
        """Turn one lifecycle event into span data; ``False`` (counted) if unusable."""
        try:
            if not isinstance(event_name, str) or not event_name:
                raise ValueError(f"event name must be a non-empty string, got {event_name!r}")
            data = {} if payload is None else payload
            if not isinstance(data, Mapping):
                raise TypeError(f"payload must be a mapping, got {type(data).__name__}")
            subject, _, action = event_name.rpartition(".")
            if action == "started":
                self._started(event_name, subject, data)
            elif action in ("completed", "failed"):
                self._finished_event(event_name, data, failed=action == "failed")
            elif action.startswith(("before_", "after_")):
                self._span_event(event_name, data)
            else:
                self._standalone(event_name, data)
        except Exception as error:  # noqa: BLE001 - the event flow must never break
            with self._lock:
                self._counts["events_rejected"] += 1
            report(
                "trace-backend",
                "spanline: TraceBackend ignored %r: %s",
                event_name,
                error,
                level=30,
            )
            return False
        with self._lock:
            self._counts["events_handled"] += 1
        return True

    @staticmethod
    def _path(data: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
        """The payload's ids, outermost first: ``(("task_id", "7"), ("step_id", "1"))``."""
        return tuple(
            (key, str(data[key])) for key in reversed(ID_KEYS) if data.get(key) is not None
        )

    def _innermost_open(self, path: tuple[tuple[str, str], ...]) -> Span | None:
        """The open span of the longest prefix of ``path`` (call under the lock)."""
        for end in range(len(path), 0, -1):
            span = self._open.get(path[:end])
            if span is not None:
                return span
        return None

    def _started(self, event_name: str, subject: str, data: Mapping[str, Any]) -> None:
        path = self._path(data)
        if not path:
            raise ValueError(f"{event_name} has none of {', '.join(ID_KEYS)}")
        with self._lock:
            if path in self._open:
                raise ValueError(f"{dict(path)} was already started")
            if len(self._open) >= _MAX_OPEN:
                raise ValueError(f"more than {_MAX_OPEN} spans are open; is .completed sent?")
            parent = self._innermost_open(path[:-1])
            span = Span(
                str(data.get("name") or subject or event_name),
                attributes={"spanline.event.name": event_name, **dict(path)},
            )
            span.start_detached(parent)
            for name, value in data.items():
                if name not in ID_KEYS and name != "name":
                    span.set_attribute(f"payload.{name}", value)
            self._open[path] = span

    def _finished_event(self, event_name: str, data: Mapping[str, Any], failed: bool) -> None:
        path = self._path(data)
        with self._lock:
            span = self._open.pop(path, None)
        if span is None:
            raise ValueError(f"{event_name}: no open span for {dict(path) or 'the payload'}")
        error = (
            str(data.get("error") or data.get("error_message") or event_name) if failed else None
        )
        span.end(error=error)
        if span.parent is None:
            self._keep(span)

    def _span_event(self, event_name: str, data: Mapping[str, Any]) -> None:
        path = self._path(data)
        with self._lock:
            span = self._innermost_open(path)
        if span is None:
            raise ValueError(f"{event_name}: no open span for {dict(path) or 'the payload'}")
        span.add_event(event_name, {k: v for k, v in data.items() if k not in ID_KEYS})

    def _standalone(self, event_name: str, data: Mapping[str, Any]) -> None:
        with self._lock:
            parent = self._innermost_open(self._path(data))
        span = Span(event_name, attributes={"spanline.event.name": event_name})
        span.start_detached(parent)
        span.add_event(event_name, dict(data))
        span.end(end_ns=span.start_ns)
        if parent is None:
            self._keep(span)

    def _keep(self, root: Span) -> None:
        tree = root.to_dict()
        with self._lock:
            self._finished.setdefault(root.trace_id or "", []).append(tree)
            while len(self._finished) > self.max_traces:
                self._finished.popitem(last=False)
                self._counts["traces_dropped"] += 1

    # -- reading -----------------------------------------------------------------------

    def export(self) -> dict[str, Any]:
        """Hand over the finished traces (they leave memory) with metadata."""
        with self._lock:
            traces = dict(self._finished)
            self._finished.clear()
            self._counts["traces_exported"] += len(traces)
        return {
            "traces": traces,  # to_dict() trees are JSON-ready already
            "metadata": {
                "backend": "trace",
                "instance_id": self.instance_id,
                "created_at": self.created_at,
                "exported_at": _now_iso(),
                "trace_count": len(traces),
            },
        }

    def stats(self) -> dict[str, Any]:
        """Open spans, finished traces waiting for export, counters and uptime."""
        with self._lock:
            counts: dict[str, Any] = dict(self._counts)
            counts["active_spans"] = len(self._open)
            counts["finished_traces"] = len(self._finished)
        counts["backend_uptime"] = time.monotonic() - self._created
        counts["instance_id"] = self.instance_id
        for key in ("events_handled", "events_rejected", "traces_exported", "traces_dropped"):
            counts.setdefault(key, 0)
        return counts

    def reset(self) -> None:
        """Forget open spans, finished traces and counters (for tests)."""
        with self._lock:
            self._open.clear()
            self._finished.clear()
            self._counts.clear()
