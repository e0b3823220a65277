"""Context propagation across process boundaries: W3C Trace Context.

``inject(headers)`` writes ``traceparent``/``tracestate`` for the current span;
``continue_trace(headers)`` continues the caller's trace (or starts a fresh one when
the headers carry none, or an invalid one).  Issue 4's integrations build on these.
Which formats are written and read follows ``OTEL_PROPAGATORS`` /
``spanline.configure(propagators=...)`` (``tracecontext``, ``baggage``, ``none``).
"""

from __future__ import annotations

from spanline.propagation.carrier import RemoteParent, continue_trace, extract, inject

__all__ = ["RemoteParent", "continue_trace", "extract", "inject"]
