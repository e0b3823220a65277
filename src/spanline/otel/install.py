"""``spanline.otel.install()``: make spanline the OpenTelemetry tracer provider."""

from __future__ import annotations

import os
import sys

from spanline._log import logger

__all__ = ["install"]

_PROVIDER: object = None


def install() -> object:
    """Set spanline as OpenTelemetry's global ``TracerProvider`` and select spanline's
    runtime context when that is still possible; returns the provider.

    Call it early, before anything imports ``opentelemetry``: the runtime context is
    chosen on OpenTelemetry's first import.  When it is too late, spans started
    through the OpenTelemetry API still become spanline spans, but
    ``get_current_span()`` does not see spanline's own spans; a warning says how to
    fix it (``OTEL_PYTHON_CONTEXT=spanline`` in the environment).
    """
    global _PROVIDER
    if "opentelemetry.context" not in sys.modules:
        os.environ.setdefault("OTEL_PYTHON_CONTEXT", "spanline")
    from opentelemetry import trace as otel_trace

    from spanline.otel.bridge import probe_span_id
    from spanline.otel.provider import SpanlineTracerProvider

    if _PROVIDER is None:
        _PROVIDER = SpanlineTracerProvider()
        otel_trace.set_tracer_provider(_PROVIDER)
    pushed, seen = probe_span_id()
    if pushed != seen:
        logger.warning(
            "spanline.otel: OpenTelemetry's runtime context is not spanline's, so "
            "get_current_span() will not see spanline spans; set OTEL_PYTHON_CONTEXT="
            "spanline in the environment (or call spanline.otel.install() before "
            "anything imports opentelemetry)"
        )
    return _PROVIDER
