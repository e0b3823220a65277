"""An ``opentelemetry.trace.TracerProvider`` whose spans are spanline spans."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from opentelemetry import trace as otel_trace
from opentelemetry.context.context import Context
from opentelemetry.trace import Link
from opentelemetry.util.types import Attributes

from spanline.core.context import current
from spanline.core.span import Span, SpanKind
from spanline.otel.adapter import OtelSpan
from spanline.otel.bridge import node_for

__all__ = ["SpanlineTracer", "SpanlineTracerProvider"]


class SpanlineTracer(otel_trace.Tracer):
    """Starts spanline spans through the OpenTelemetry tracing API."""

    def __init__(self, name: str, version: str | None = None) -> None:
        self.scope_name = name
        self.scope_version = version

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: otel_trace.SpanKind = otel_trace.SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> otel_trace.Span:
        """A started (not current) spanline span; its parent is the span in
        ``context``, or else spanline's current span."""
        if context is not None:
            parent = node_for(otel_trace.get_current_span(context))
        else:
            parent = current.get() or node_for(otel_trace.get_current_span())
        scope: dict[str, Any] = {"otel.scope.name": self.scope_name}
        if self.scope_version:
            scope["otel.scope.version"] = self.scope_version
        span = Span(name, kind=SpanKind(kind.value), attributes={**scope, **dict(attributes or {})})
        span.start_detached(parent, start_time)
        adapter = OtelSpan(span)
        for link in links or ():
            adapter.add_link(link.context, link.attributes)
        return adapter

    @contextlib.contextmanager
    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: Context | None = None,
        kind: otel_trace.SpanKind = otel_trace.SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[otel_trace.Span]:
        """Start a span and make it current for OpenTelemetry *and* spanline."""
        span = self.start_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )
        assert isinstance(span, OtelSpan)  # noqa: S101 - start_span returns one
        token = current.set(span.spanline_span)
        try:
            with otel_trace.use_span(
                span,
                end_on_exit=end_on_exit,
                record_exception=record_exception,
                set_status_on_exception=set_status_on_exception,
            ) as s:
                yield s
        finally:
            with contextlib.suppress(ValueError):
                current.reset(token)


class SpanlineTracerProvider(otel_trace.TracerProvider):
    """Hands out :class:`SpanlineTracer` objects (one per instrumentation scope)."""

    def __init__(self) -> None:
        self._tracers: dict[tuple[str, str | None], SpanlineTracer] = {}

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> otel_trace.Tracer:
        """The tracer for an instrumentation scope."""
        key = (instrumenting_module_name, instrumenting_library_version)
        tracer = self._tracers.get(key)
        if tracer is None:
            tracer = self._tracers[key] = SpanlineTracer(*key)
        return tracer
