"""spanline's OpenTelemetry runtime context: one truth for "the current span".

OpenTelemetry keeps its context (current span, baggage …) in a runtime context that
can be replaced through the ``opentelemetry_context`` entry point (selected with
``OTEL_PYTHON_CONTEXT=spanline``).  This one keeps OpenTelemetry's values in its own
``ContextVar`` like the default does, and ties the current *span* to spanline's chain:

* ``get_current()`` reports spanline's innermost span (or remote parent) as the
  current span, so ``opentelemetry.trace.get_current_span()`` inside
  ``with spanline.span(...)`` returns that span and propagators inject its ids;
* ``attach(context)`` with a span in it makes that span current for spanline too --
  a span started through the OpenTelemetry API, or a remote parent extracted from
  headers -- so spanline spans opened inside become its children.

OpenTelemetry instantiates this class while ``opentelemetry.trace`` is still being
imported, so this module imports nothing from it; the translation code
(:mod:`spanline.otel.bridge`) is loaded on first use.  The base class is
OpenTelemetry's interface for runtime contexts (underscored, but the one its entry
point mechanism requires).
"""

from __future__ import annotations

import contextvars
from types import ModuleType
from typing import Any

from opentelemetry.context.context import Context, _RuntimeContext

from spanline.core.context import Node, current

__all__ = ["SpanlineRuntimeContext"]

_EMPTY = Context()
_bridge: ModuleType | None = None


def _translate() -> ModuleType:
    global _bridge
    if _bridge is None:
        from spanline.otel import bridge

        _bridge = bridge
    return _bridge


class SpanlineRuntimeContext(_RuntimeContext):
    """Selected with ``OTEL_PYTHON_CONTEXT=spanline`` (``spanline.otel.install()``
    sets it when it runs before the first import of ``opentelemetry.context``)."""

    def __init__(self) -> None:
        self._values: contextvars.ContextVar[Context | None] = contextvars.ContextVar(
            "spanline_otel_context", default=None
        )

    # OpenTelemetry treats the token as opaque and hands it back to detach(): ours
    # carries both our tokens.
    def attach(self, context: Context) -> Any:
        """Make ``context`` current; a span in it becomes spanline's current node."""
        bridge = _translate()
        value_token = self._values.set(context)
        node_token: contextvars.Token[Node | None] | None = None
        node = bridge.node_for(bridge.otel_trace.get_current_span(context))
        # A context without a valid span means "no current span" (a new root), as in
        # OpenTelemetry: spanline's chain follows, until detach.
        if current.get() is not node:
            node_token = current.set(node)
        return (value_token, node_token)

    def get_current(self) -> Context:
        """OpenTelemetry's values, with spanline's innermost span as the current span."""
        values = self._values.get() or _EMPTY
        node = current.get()
        if node is None:
            return values
        bridge = _translate()
        span = bridge.otel_span_for(node)
        if span is None:
            return values
        existing = bridge.otel_trace.get_current_span(values)
        if getattr(existing, "spanline_span", None) is node:
            return values
        context: Context = bridge.otel_trace.set_span_in_context(span, values)
        return context

    def detach(self, token: Any) -> None:
        """Undo one ``attach`` (in the context it was made in)."""
        value_token, node_token = token
        if node_token is not None:
            current.reset(node_token)
        self._values.reset(value_token)
