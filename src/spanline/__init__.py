"""spanline: always-on application tracing.

What happened, who caused it, and where the time went -- with one import::

    import spanline

    with spanline.start_trace(actor={"type": "user", "id": 42}):
        PlaceOrder(product="book").call()

See ``docs/concepts.md`` for traces, actors, operations, spans, frames, events,
handlers and ids.
"""

from __future__ import annotations

from spanline._version import __version__
from spanline.backend import EventRouter, TraceBackend
from spanline.core.actor import system
from spanline.core.carrier import InvalidPayloadError, dump, restore
from spanline.core.config import ConfigError, Settings, configure, settings
from spanline.core.context import wrap
from spanline.core.events import Event, deliver, handler, publish, unsubscribe
from spanline.core.operation import Operation, operation
from spanline.core.pipeline import SpanProcessor
from spanline.core.span import (
    NoopSpan,
    Span,
    SpanEvent,
    SpanKind,
    StatusCode,
    current_span,
    record,
    span,
)
from spanline.core.trace import actor, current_id, frames, start_trace, trace_id, trace_string
from spanline.core.tracer import Tracer, stats, tracer
from spanline.integrations.registry import instrument, uninstrument

__all__ = [
    "ConfigError",
    "Event",
    "EventRouter",
    "InvalidPayloadError",
    "NoopSpan",
    "Operation",
    "Recorder",
    "Settings",
    "Span",
    "SpanEvent",
    "SpanKind",
    "SpanProcessor",
    "StatusCode",
    "TraceBackend",
    "Tracer",
    "__version__",
    "actor",
    "configure",
    "current_id",
    "current_span",
    "deliver",
    "dump",
    "frames",
    "handler",
    "instrument",
    "operation",
    "publish",
    "record",
    "restore",
    "settings",
    "shutdown",
    "span",
    "start_trace",
    "stats",
    "system",
    "trace_id",
    "trace_string",
    "tracer",
    "uninstrument",
    "unsubscribe",
    "wrap",
]


def __getattr__(name: str) -> object:
    # Recorder lives with the store; importing it on first use keeps `import spanline`
    # from loading the export and store modules for apps that never record.
    if name == "Recorder":
        from spanline.store.recorder import Recorder

        return Recorder
    raise AttributeError(f"module 'spanline' has no attribute {name!r}")


def shutdown() -> None:
    """Flush and shut down every registered processor (call before the process exits)."""
    tracer.shutdown()


def _install_exporters_from_environment() -> None:
    from spanline.core.config import install_from_environment

    install_from_environment()


_install_exporters_from_environment()
