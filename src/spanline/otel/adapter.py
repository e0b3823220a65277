"""A spanline span seen through the ``opentelemetry.trace.Span`` interface."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import trace as otel_trace
from opentelemetry.trace.span import SpanContext, TraceFlags, TraceState
from opentelemetry.trace.status import Status
from opentelemetry.trace.status import StatusCode as OtelStatusCode
from opentelemetry.util.types import AttributeValue

from spanline.core.span import Span, StatusCode

__all__ = ["OtelSpan", "span_context_of"]

_EMPTY_STATE = TraceState()


def span_context_of(span: Span) -> SpanContext:
    """The W3C span context of a started spanline span; the tracestate of a foreign
    parent is passed on unchanged, as W3C Trace Context asks."""
    from spanline.otel.bridge import trace_state_of

    return SpanContext(
        trace_id=int(span.trace_hex or "0", 16),
        span_id=span.span_id,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if span._trace.recorded else 0),
        trace_state=trace_state_of(span) or _EMPTY_STATE,
    )


class OtelSpan(otel_trace.Span):
    """Wraps a spanline :class:`~spanline.Span`; every call lands on it."""

    __slots__ = ("spanline_span",)

    def __init__(self, span: Span) -> None:
        self.spanline_span = span

    def get_span_context(self) -> SpanContext:
        """The span's W3C ids (the ones its ``tr_``/``op_`` ids map to)."""
        return span_context_of(self.spanline_span)

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        """Set attributes on the spanline span."""
        self.spanline_span.set_attributes(attributes)

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """Set one attribute on the spanline span."""
        self.spanline_span.set_attribute(key, value)

    def add_event(
        self,
        name: str,
        attributes: Mapping[str, AttributeValue] | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Add an event to the spanline span."""
        self.spanline_span.add_event(name, attributes, timestamp)

    def add_link(
        self, context: SpanContext, attributes: Mapping[str, AttributeValue] | None = None
    ) -> None:
        """Links are recorded as ``link`` events (spanline has no link model yet)."""
        self.spanline_span.add_event(
            "link",
            {
                "link.trace_id": f"{context.trace_id:032x}",
                "link.span_id": f"{context.span_id:016x}",
                **(attributes or {}),
            },
        )

    def update_name(self, name: str) -> None:
        """Rename the spanline span."""
        self.spanline_span.update_name(name)

    def is_recording(self) -> bool:
        """Whether the spanline span records."""
        return self.spanline_span.is_recording()

    def set_status(self, status: Status | OtelStatusCode, description: str | None = None) -> None:
        """Map OpenTelemetry's status onto the spanline span's."""
        if isinstance(status, Status):
            code, description = status.status_code, status.description
        else:
            code = status
        self.spanline_span.set_status(StatusCode(code.value), description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: Mapping[str, AttributeValue] | None = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """Add an ``exception`` event to the spanline span."""
        self.spanline_span.record_exception(exception, attributes)

    def end(self, end_time: int | None = None) -> None:
        """End the spanline span (it must have been started by the OTel tracer)."""
        self.spanline_span.end(end_time)

    def __repr__(self) -> str:
        return f"OtelSpan({self.spanline_span!r})"
