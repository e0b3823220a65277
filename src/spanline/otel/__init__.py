"""OpenTelemetry API interop (``pip install 'spanline[otel]'``).

``spanline.otel.install()`` makes spanline the OpenTelemetry ``TracerProvider``:
spans started through ``opentelemetry.trace.get_tracer(...)`` -- including by any
``opentelemetry-instrumentation-*`` package -- become spanline spans in the same tree,
and inside a spanline span ``opentelemetry.trace.get_current_span()`` returns it, so
OpenTelemetry propagators and instrumentations see spanline's context.

The second half relies on OpenTelemetry's documented extension point for the runtime
context (the ``opentelemetry_context`` entry point, chosen by ``OTEL_PYTHON_CONTEXT``).
spanline registers one named ``spanline``; importing ``spanline.otel`` selects it
when ``opentelemetry.context`` has not been imported yet, and ``install()`` otherwise
warns you to set ``OTEL_PYTHON_CONTEXT=spanline`` before the first import.
"""

from __future__ import annotations

import os as _os
import sys as _sys

# Importing spanline.otel is the intent to interoperate: select spanline's runtime
# context before this package imports opentelemetry (which chooses it on first use).
if "opentelemetry.context" not in _sys.modules:
    _os.environ.setdefault("OTEL_PYTHON_CONTEXT", "spanline")

from spanline.otel.install import install
from spanline.otel.provider import SpanlineTracer, SpanlineTracerProvider

__all__ = ["SpanlineTracer", "SpanlineTracerProvider", "install"]
