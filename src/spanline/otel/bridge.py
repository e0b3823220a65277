"""Translating between spanline's context chain and OpenTelemetry spans."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace as otel_trace
from opentelemetry.trace.span import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from spanline.core import clock, ids
from spanline.core.context import Frame, Node, RemoteFrame, TraceRoot, current
from spanline.core.span import Span, new_trace
from spanline.otel.adapter import OtelSpan

__all__ = [
    "ForeignFrame",
    "NodeSpan",
    "node_for",
    "otel_span_for",
    "probe_span_id",
    "trace_state_of",
]


class ForeignFrame(RemoteFrame):
    """A parent span from outside spanline (extracted from headers by an OpenTelemetry
    propagator); keeps its full span context, W3C tracestate included."""

    __slots__ = ("span_context",)

    def __init__(self, context: SpanContext) -> None:
        trace = new_trace(
            clock.now_ns(),
            context.trace_id,
            parent_sampled=bool(context.trace_flags & TraceFlags.SAMPLED),
        )
        super().__init__(
            trace, TraceRoot(trace), "span", f"{context.span_id:016x}", "", context.span_id
        )
        self.span_context = context


class NodeSpan(NonRecordingSpan):
    """A non-recording span standing for a spanline node that is not a recorded span
    (an unrecorded frame, a remote parent); it remembers the node, so handing the
    context to another thread and attaching it there continues the same trace --
    same trace id, actor and frames."""

    def __init__(self, node: Frame | RemoteFrame) -> None:
        if isinstance(node, ForeignFrame):
            context = node.span_context
        else:
            sampled = TraceFlags(TraceFlags.SAMPLED if node._trace.recorded else 0)
            context = SpanContext(
                node._trace.id,
                node.sid,
                is_remote=isinstance(node, RemoteFrame),
                trace_flags=sampled,
            )
        super().__init__(context)
        self.spanline_node = node


def node_for(span: otel_trace.Span) -> Node | None:
    """The spanline node standing for an OpenTelemetry span: its spanline span or
    node, or a :class:`ForeignFrame` for a foreign span context; ``None`` for an
    invalid one (no current span)."""
    if isinstance(span, OtelSpan):
        return span.spanline_span
    if isinstance(span, NodeSpan):
        return span.spanline_node
    context = span.get_span_context()
    if not context.is_valid:
        return None
    return ForeignFrame(context)


def otel_span_for(node: Node | None) -> otel_trace.Span | None:
    """How spanline's current node looks to OpenTelemetry (``None``: no span)."""
    if node is None:
        return None
    if type(node) is Span:
        return OtelSpan(node)
    if isinstance(node, Frame | RemoteFrame):
        return NodeSpan(node)
    return None


def trace_state_of(span: Span) -> TraceState | None:
    """The W3C tracestate a span inherits from a foreign parent of its local root."""
    node: Node | None = span
    while type(node) is Span:
        node = node._parent
    while node is not None:
        if isinstance(node, ForeignFrame):
            return node.span_context.trace_state
        node = node._parent
    return None


def probe_span_id() -> tuple[int, Any]:
    """Push an unrecorded frame and read it back through OpenTelemetry: tells whether
    this runtime context is the active one (used by ``install``)."""
    trace = new_trace(clock.now_ns())
    trace.recorded = False
    frame = Frame("spanline.probe", TraceRoot(trace), trace, clock.now_ns())
    token = current.set(frame)
    try:
        seen = otel_trace.get_current_span().get_span_context().span_id
    finally:
        current.reset(token)
    return frame.sid, seen or ids.new_random64()
