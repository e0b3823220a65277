"""W3C Trace Context on spanline's context: inject into and extract from carriers.

A carrier is a mapping of header names to values (HTTP headers, message metadata,
job headers) or a list of ``(name, value)`` pairs; names are matched
case-insensitively.

The formats follow ``settings.propagators`` (``OTEL_PROPAGATORS``, default
``tracecontext,baggage``), read on every call: without ``tracecontext`` no
``traceparent``/``tracestate`` is written or read; without ``baggage`` the actor
neither leaves nor enters in ``baggage``; ``none`` turns both off.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from spanline.core import clock, config
from spanline.core.actor import Actor, normalize_actor
from spanline.core.context import Boundary, Frame, Node, RemoteFrame, TraceRoot, current
from spanline.core.span import Span, new_trace
from spanline.propagation.baggage import format_baggage, parse_baggage
from spanline.propagation.w3c import (
    FLAG_RANDOM,
    FLAG_SAMPLED,
    format_traceparent,
    format_tracestate,
    header_values,
    parse_traceparent,
    parse_tracestate,
)

__all__ = ["RemoteParent", "continue_trace", "extract", "incoming_node", "inject"]


class RemoteParent(RemoteFrame):
    """The caller's span, as a ``traceparent`` named it; keeps the received flags and
    ``tracestate`` so they are passed on unchanged."""

    __slots__ = ("flags", "tracestate")

    def __init__(
        self,
        trace_int: int,
        span_id: int,
        flags: int,
        tracestate: list[tuple[str, str]] | None,
        actor: Actor | None = None,
    ) -> None:
        trace = new_trace(
            clock.now_ns(), trace_int, actor=actor, parent_sampled=bool(flags & FLAG_SAMPLED)
        )
        super().__init__(trace, TraceRoot(trace), "span", f"{span_id:016x}", "", span_id)
        self.flags = flags
        self.tracestate = tracestate


_ACTOR_PREFIX = "spanline.actor."


def _actor_from_baggage(carrier: object) -> Actor | None:
    if "baggage" not in config.settings.propagators:
        return None
    baggage = parse_baggage(header_values(carrier, "baggage"))
    fields = {k[len(_ACTOR_PREFIX) :]: v for k, v in baggage.items() if k.startswith(_ACTOR_PREFIX)}
    try:
        return normalize_actor(fields) if fields else None
    except (TypeError, ValueError):
        return None  # an incomplete actor (no type) is not an actor


def extract(carrier: object, *, trust_actor: bool = False) -> RemoteParent | None:
    """The caller's context from ``carrier``, or ``None`` (no valid ``traceparent``:
    the ``tracestate`` is then ignored too, as the specification says; ``None`` too
    when the ``tracecontext`` propagator is off).

    The caller's actor (``spanline.actor.*`` baggage) is taken only with
    ``trust_actor=True``: a header from the public internet must not be able to act
    as one of your users, so each boundary that trusts its callers says so.
    """
    if "tracecontext" not in config.settings.propagators:
        return None
    parent = parse_traceparent(header_values(carrier, "traceparent"))
    if parent is None:
        return None
    state = parse_tracestate(header_values(carrier, "tracestate"))
    actor = _actor_from_baggage(carrier) if trust_actor else None
    return RemoteParent(parent.trace_id, parent.parent_id, parent.flags, state, actor)


def _remote_parent_of(node: Node | None) -> RemoteParent | None:
    while node is not None:
        if isinstance(node, RemoteParent):
            return node
        node = node._parent
    return None


def inject(carrier: MutableMapping[str, Any]) -> None:
    """Write ``traceparent`` (and a received ``tracestate``) for the current span, and
    the trace's actor as ``spanline.actor.*`` baggage -- each only when its
    propagator (``tracecontext``, ``baggage``) is on.

    Nothing is written outside a trace or at a bare boundary with no span yet.
    """
    selected = config.settings.propagators
    if not selected:
        return
    node = current.get()
    if isinstance(node, Span):
        span_id = node.span_id
    elif isinstance(node, Frame | RemoteFrame):
        span_id = node.sid
    else:
        return
    if not span_id:
        return
    trace = node._trace
    if "tracecontext" in selected:
        remote = _remote_parent_of(node)
        flags = (
            (remote.flags & ~FLAG_SAMPLED)
            if remote is not None
            else (FLAG_RANDOM if trace.external is None else 0)
        )
        if trace.recorded:
            flags |= FLAG_SAMPLED
        carrier["traceparent"] = format_traceparent(trace.id, span_id, flags)
        if remote is not None and remote.tracestate:
            carrier["tracestate"] = format_tracestate(remote.tracestate)
    if trace.actor and "baggage" in selected:
        carrier["baggage"] = format_baggage(
            {f"{_ACTOR_PREFIX}{k}": v for k, v in trace.actor.items()}
        )


class continue_trace(Boundary):  # noqa: N801 - used like a function, as start_trace
    """``with spanline.propagation.continue_trace(request.headers):`` -- continue the
    caller's trace; with no valid ``traceparent`` (or the ``tracecontext`` propagator
    off), start a new one.  Yields the trace id.  The caller's actor (carried in
    baggage by :func:`inject`) is used only with ``trust_actor=True`` -- for calls
    between your own services, never for a boundary the public internet can reach --
    and only while the ``baggage`` propagator is on; it is kept for the new trace too
    when the caller's trace context is not continued."""

    __slots__ = ()

    def __init__(self, carrier: object, *, trust_actor: bool = False) -> None:
        self._node = incoming_node(carrier, trust_actor=trust_actor)


def incoming_node(carrier: object, *, trust_actor: bool = False) -> Node:
    """The node a request from ``carrier`` runs under: the caller's span when the
    carrier continues a trace, else the root of a new trace (see
    :class:`continue_trace`, which enters it; middleware that sets the context
    variable itself uses this directly)."""
    remote = extract(carrier, trust_actor=trust_actor)
    if remote is not None:
        return remote
    actor = _actor_from_baggage(carrier) if trust_actor else None
    return TraceRoot(new_trace(clock.now_ns(), actor=actor))
