"""Event-fed tracing: a backend that turns lifecycle events into spans, and a router."""

from __future__ import annotations

from spanline.backend.router import EventBackend, EventRouter, Route
from spanline.backend.trace_backend import TraceBackend

__all__ = ["EventBackend", "EventRouter", "Route", "TraceBackend"]
