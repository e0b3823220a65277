"""Translating between spanline's context chain and OpenTelemetry spans."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace as otel_trace
from opentelemetry.trace.span import NonRecordingSpan, SpanContext, TraceFlags

from spanline.core import clock, ids
from spanline.core.context import Frame, Node, RemoteFrame, TraceRoot, current
from spanline.core.span import Span, new_trace
from spanline.otel.adapter import OtelSpan

__all__ = ["node_for", "otel_span_for", "probe_span_id"]


def node_for(span: otel_trace.Span) -> Node | None:
    """The spanline node standing for an OpenTelemetry span: its spanline span, or a
    remote-parent node for a foreign span context; ``None`` for an invalid one."""
    if isinstance(span, OtelSpan):
        return span.spanline_span
    context = span.get_span_context()
    if not context.is_valid:
        return None
    trace = new_trace(
        clock.now_ns(),
        context.trace_id,
        parent_sampled=bool(context.trace_flags & TraceFlags.SAMPLED),
    )
    return RemoteFrame(
        trace, TraceRoot(trace), "span", f"{context.span_id:016x}", "", context.span_id
    )


def otel_span_for(node: Node | None) -> otel_trace.Span | None:
    """How spanline's current node looks to OpenTelemetry (``None``: no span)."""
    if node is None:
        return None
    if type(node) is Span:
        return OtelSpan(node)
    if isinstance(node, Frame | RemoteFrame):
        sampled = TraceFlags(TraceFlags.SAMPLED if node._trace.recorded else 0)
        return NonRecordingSpan(
            SpanContext(
                node._trace.id,
                node.sid,
                is_remote=isinstance(node, RemoteFrame),
                trace_flags=sampled,
            )
        )
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
