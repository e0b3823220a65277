"""The trace context a queue message carries, for the Celery and RQ integrations.

At enqueue, :func:`message_context` returns the entries to add to the message:
W3C ``traceparent``/``tracestate``/``baggage`` (so other tracers can continue the
trace) and ``spanline`` -- the :func:`spanline.dump` payload, which also carries the
actor and the operation frames.  At execution, :func:`continue_message` turns them
back into a boundary: the ``spanline`` payload when present (checked, and signed with
``payload_secret``), else the ``traceparent`` alone (the actor is then not trusted).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spanline.core.carrier import dump, restore
from spanline.core.context import Boundary
from spanline.propagation.carrier import continue_trace, inject

__all__ = ["KEY", "W3C_KEYS", "continue_message", "message_context"]

KEY = "spanline"
"""The entry holding the ``dump()`` payload."""
W3C_KEYS = ("traceparent", "tracestate", "baggage")


def message_context() -> dict[str, Any]:
    """What to add to a message enqueued now (empty outside a trace)."""
    entries: dict[str, Any] = {}
    inject(entries)
    payload = dump()
    if payload is not None:
        entries[KEY] = payload
    return entries


def continue_message(entries: Mapping[str, Any]) -> Boundary | None:
    """A boundary that continues the trace ``entries`` carry, or ``None`` when they
    carry none (the job then runs in the worker's current context, if any)."""
    payload = entries.get(KEY)
    if payload is not None:
        return restore(payload)
    if entries.get("traceparent") is not None:
        return continue_trace(entries)
    return None
