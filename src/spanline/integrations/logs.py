"""Trace context on every log line: a stdlib ``logging`` filter and a structlog
processor.

Both add the same four fields, read from the current context:

* ``trace_id`` -- ``tr_…`` (or the external id the trace was started with);
* ``span_id`` -- the current span's W3C id as 16 hex digits (what OpenTelemetry
  backends index);
* ``op_id`` -- the innermost operation or handler (``op_…``/``hd_…``);
* ``actor`` -- ``type:id`` as in ``trace_string()``.

Outside a trace they are ``None``, so format strings like ``%(trace_id)s`` always
work.  Nothing here raises into the logging call.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from spanline.core.actor import actor_label
from spanline.core.context import Frame, RemoteFrame, current
from spanline.core.span import Span
from spanline.core.trace import current_id

__all__ = ["SpanlineLogFilter", "context_fields", "structlog_processor"]

FIELDS = ("trace_id", "span_id", "op_id", "actor")


def context_fields() -> dict[str, str | None]:
    """The four fields for the current context (all ``None`` outside a trace)."""
    node = current.get()
    if node is None:
        return dict.fromkeys(FIELDS)
    trace = node._trace
    if isinstance(node, Span):
        span_id = node.span_id
    elif isinstance(node, Frame | RemoteFrame):
        span_id = node.sid
    else:
        span_id = 0
    return {
        "trace_id": trace.text,
        "span_id": f"{span_id:016x}" if span_id else None,
        "op_id": current_id(),
        "actor": actor_label(trace.actor) if trace.actor else None,
    }


class SpanlineLogFilter(logging.Filter):
    """Adds ``trace_id``, ``span_id``, ``op_id`` and ``actor`` to every record.

    ``handler.addFilter(SpanlineLogFilter())`` and then, for example,
    ``Formatter("%(levelname)s %(trace_id)s %(op_id)s %(message)s")``.  Fields a
    record already has (set through ``extra=``) are left alone.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate the record; never drops it."""
        try:
            fields = context_fields()
        except Exception:  # noqa: BLE001 - logging must never fail because of tracing
            fields = dict.fromkeys(FIELDS)
        for key, value in fields.items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def structlog_processor(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor adding the same fields (only those with a value, and
    never overwriting a key the event already has)."""
    try:
        fields = context_fields()
    except Exception:  # noqa: BLE001 - logging must never fail because of tracing
        return event_dict
    for key, value in fields.items():
        if value is not None:
            event_dict.setdefault(key, value)
    return event_dict
