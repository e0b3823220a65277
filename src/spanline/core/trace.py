"""Trace boundaries and the questions about "now": trace id, actor, frames, chain.

``start_trace`` is for the outermost boundary (a request, a job, a CLI command).
Nested inside another trace it suspends the outer one and restores it afterwards,
exactly like Dex.  Code that runs outside any ``start_trace`` still gets a trace: the
first operation or span starts one with no actor.
"""

from __future__ import annotations

from collections.abc import Mapping

from spanline.core import clock, config, ids
from spanline.core.actor import Actor, actor_label, normalize_actor
from spanline.core.context import Boundary, Node, Trace, TraceRoot, current

__all__ = [
    "actor",
    "chain",
    "current_id",
    "frames",
    "frames_of",
    "start_trace",
    "trace_id",
    "trace_string",
]

_MAX_EXTERNAL_ID = 256


class start_trace(Boundary):  # noqa: N801 - used like a function: ``with spanline.start_trace(...)``
    """Start a trace at a boundary, optionally with the actor who caused it.

    ``with spanline.start_trace(actor={"type": "user", "id": 42}) as trace_id:``

    ``trace_id=None`` makes a fresh ``tr_…`` id; a string (a request id, a W3C trace
    id) is kept as given.  The context manager yields the trace id.  Raises
    ``ValueError`` when the actor has no ``type`` or the trace id is empty or longer
    than 256 characters.
    """

    __slots__ = ()

    def __init__(
        self, actor: Mapping[str, object] | None = None, trace_id: str | None = None
    ) -> None:
        normalized = normalize_actor(actor)
        if trace_id is None:
            trace_int = ids.new_trace_int(clock.now_ns())
            external = None
        else:
            if not isinstance(trace_id, str) or not trace_id.strip():
                raise ValueError(f"trace_id must be a non-empty string or None, got {trace_id!r}")
            if len(trace_id) > _MAX_EXTERNAL_ID:
                raise ValueError(f"trace_id is longer than {_MAX_EXTERNAL_ID} characters")
            trace_int = ids.trace_int_from_id(trace_id)
            external = trace_id
        trace = Trace(trace_int, external, normalized, config.settings.enabled)
        self._node = TraceRoot(trace)


def trace_id() -> str | None:
    """The current trace's id (``tr_…`` or the external id), or ``None`` outside a trace."""
    node = current.get()
    return None if node is None else node._trace.text


def actor() -> Actor | None:
    """The current actor with string values (a copy), or ``None``."""
    node = current.get()
    if node is None or node._trace.actor is None:
        return None
    return dict(node._trace.actor)


def current_id() -> str | None:
    """The id of the innermost operation or handler (``op_…``/``hd_…``), or ``None``."""
    node = current.get()
    while node is not None:
        frame = node.frame()
        if frame is not None:
            return frame["id"]
        node = node._parent
    return None


def frames_of(node: Node | None) -> list[dict[str, str]]:
    """The Dex frame stack seen from ``node``: the actor frame (if any), then the
    operation/handler frames from the trace's boundary down to ``node``."""
    if node is None:
        return []
    result: list[dict[str, str]] = []
    trace_actor = node._trace.actor
    if trace_actor:
        frame = {k: v for k, v in trace_actor.items() if k not in ("type", "actor_type")}
        result.append({"type": "actor", "actor_type": trace_actor["type"], **frame})
    steps: list[dict[str, str]] = []
    link: Node | None = node
    while link is not None:
        step = link.frame()
        if step is not None:
            steps.append(step)
        link = link._parent
    result.extend(reversed(steps))
    return result


def frames() -> list[dict[str, str]]:
    """The Dex frame stack: the actor frame (if any), then operation/handler frames,
    outermost first."""
    return frames_of(current.get())


def chain(frame_list: list[dict[str, str]]) -> str:
    """Render frames as ``user:42 > Validate(op_2nFg7K) > PlaceOrder(op_3kPm8N)``."""
    steps = [f for f in frame_list if f.get("type") != "actor"]
    shorts = ids.abbreviate([f.get("id", "") for f in steps])
    parts: list[str] = []
    for frame in frame_list:
        if frame.get("type") == "actor":
            who = {k: v for k, v in frame.items() if k not in ("type", "actor_type")}
            parts.append(actor_label({"type": frame.get("actor_type", "?"), **who}))
    parts.extend(f"{f.get('name', '?')}({short})" for f, short in zip(steps, shorts, strict=True))
    return " > ".join(parts)


def trace_string() -> str:
    """The current chain as one line (``""`` outside any trace)."""
    return chain(frames())
