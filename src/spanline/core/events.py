"""Domain events (``ev_``) and their handlers (``hd_``), in the same trace.

``publish(name, payload)`` creates an :class:`Event` whose metadata says which trace,
actor and operation caused it, notes it on the current span, and runs every handler
registered for ``name`` in a handler frame (a span with an ``hd_`` id) of the same
trace.  A handler that raises is marked ERROR on its span, counted as
``handler_errors`` and logged; the publisher and the other handlers carry on.

For an event bus that delivers later or elsewhere, ``publish(..., deliver=False)``
only creates the event; :func:`deliver` runs the handlers wherever the event arrives,
continuing the publisher's trace from ``event.metadata["context"]``.
"""

from __future__ import annotations

import inspect
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from spanline._fork import renew_after_fork
from spanline.core import clock, ids
from spanline.core.carrier import dump, restore
from spanline.core.context import current
from spanline.core.decorate import callable_name
from spanline.core.pipeline import PIPELINE
from spanline.core.span import HANDLER, Span, current_span
from spanline.core.trace import actor, current_id, start_trace, trace_id

__all__ = [
    "Event",
    "deliver",
    "handler",
    "handlers",
    "load_registry",
    "publish",
    "save_registry",
    "unsubscribe",
]

F = TypeVar("F", bound=Callable[..., Any])
Handler = Callable[["Event"], Any]


@dataclass(frozen=True, slots=True)
class Event:
    """A published event: ``id`` (``ev_…``), ``name``, ``payload`` and ``metadata``
    (``trace_id``, ``actor``, ``caused_by`` -- the operation that published it --,
    ``published_at`` in ns, and ``context``, a :func:`dump` for later delivery)."""

    id: str
    name: str
    payload: Any
    metadata: Mapping[str, Any] = field(default_factory=dict)


_lock = threading.Lock()
renew_after_fork(sys.modules[__name__])
_registry: dict[str, tuple[tuple[Handler, str], ...]] = {}


def handler(event_name: str, *, name: str | None = None) -> Callable[[F], F]:
    """Register the decorated function to run, in a handler frame, for ``event_name``.

    The function is returned unchanged (calling it directly does not trace it); its
    span is named ``name`` or the function's ``__qualname__``.
    """
    if not isinstance(event_name, str) or not event_name:
        raise ValueError(f"event name must be a non-empty string, got {event_name!r}")

    def register(fn: F) -> F:
        if inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"{fn.__qualname__} is async; handlers run synchronously inside "
                "publish(), so make it a plain function (it may schedule work)"
            )
        label = name or callable_name(fn)
        with _lock:
            _registry[event_name] = (*_registry.get(event_name, ()), (fn, label))
        return fn

    return register


def unsubscribe(event_name: str, fn: Handler) -> None:
    """Remove a handler (no error if it was not registered)."""
    with _lock:
        remaining = tuple(h for h in _registry.get(event_name, ()) if h[0] is not fn)
        if remaining:
            _registry[event_name] = remaining
        else:
            _registry.pop(event_name, None)


def handlers() -> dict[str, tuple[Handler, ...]]:
    """A copy of the registry: event name -> handlers, in registration order."""
    with _lock:
        return {event: tuple(fn for fn, _ in entries) for event, entries in _registry.items()}


def save_registry() -> dict[str, tuple[tuple[Handler, str], ...]]:
    """Snapshot the registry (the testing kit restores it after each test)."""
    with _lock:
        return dict(_registry)


def load_registry(saved: dict[str, tuple[tuple[Handler, str], ...]]) -> None:
    """Replace the registry with a snapshot from :func:`save_registry`."""
    with _lock:
        _registry.clear()
        _registry.update(saved)


def _run_handlers(event: Event) -> None:
    for fn, label in _registry.get(event.name, ()):
        frame = Span(
            label,
            attributes={"spanline.event.name": event.name, "spanline.event.id": event.id},
            type_=HANDLER,
        )
        try:
            with frame:
                fn(event)
        except Exception as error:  # noqa: BLE001 - one handler's failure is contained
            PIPELINE.failed("handler_errors", fn, "handle", error)


def publish(name: str, payload: Any = None, *, deliver: bool = True) -> Event:
    """Publish an event; with ``deliver=True`` (the default) run its handlers now.

    Outside any trace, publishing starts one (no actor) so the handlers share it.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"event name must be a non-empty string, got {name!r}")
    if current.get() is None:
        with start_trace():
            return publish(name, payload, deliver=deliver)
    now = clock.now_ns()
    event_id = ids.format_id("ev_", now, ids.new_random64() or 1)
    metadata = {
        "trace_id": trace_id(),
        "actor": actor(),
        "caused_by": current_id(),
        "published_at": now,
        "context": dump(),
    }
    event = Event(event_id, name, payload, metadata)
    current_span().add_event(name, {"spanline.event.id": event_id})
    if deliver:
        _run_handlers(event)
    return event


def deliver(event: Event) -> None:
    """Run ``event``'s handlers in the publisher's trace (for events delivered later)."""
    with restore(event.metadata.get("context")):
        _run_handlers(event)
