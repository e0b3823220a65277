"""Where the current trace lives: one ``ContextVar`` holding the innermost node.

The chain of nodes, innermost first, is what every question about "now" walks:

* :class:`~spanline.core.span.Span` -- a span, operation or handler that is running;
* :class:`RemoteFrame` -- a frame that ran elsewhere (restored from a job payload);
* :class:`TraceRoot` -- the boundary where a trace started (``start_trace``, an
  automatic trace, or a restored one).

Pushing and popping is one ``ContextVar.set`` / ``reset``, so asyncio tasks each see
their own chain, and threads see the chain that was current when their callable was
wrapped with :func:`wrap`.
"""

from __future__ import annotations

import contextvars
import functools
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from spanline._fork import renew_after_fork
from spanline.core import ids
from spanline.core.actor import Actor

__all__ = ["Boundary", "Frame", "Node", "RemoteFrame", "Trace", "TraceRoot", "current", "wrap"]

P = ParamSpec("P")
R = TypeVar("R")


class Trace:
    """One trace: its 128-bit W3C id, the id as users see it, the actor, and whether
    its spans are recorded (decided once, when the trace starts).

    A generated trace (``trace_int=0``) draws its random bits on first read of
    :attr:`id`, never on the hot path; the lock makes concurrent first reads agree.
    """

    __slots__ = ("_id", "_start", "_text", "actor", "external", "recorded")

    _text: str

    def __init__(
        self,
        trace_int: int,
        external: str | None,
        actor: Actor | None,
        recorded: bool,
        start_ns: int = 0,
    ) -> None:
        self._id = trace_int
        self._start = start_ns
        self.external = external
        self.actor = actor
        self.recorded = recorded

    @property
    def id(self) -> int:
        """The 128-bit W3C trace id."""
        value = self._id
        if value:
            return value
        with _LAZY:
            if not self._id:
                self._id = ids.new_trace_int(self._start)
            return self._id

    @property
    def text(self) -> str:
        """``tr_…``, or the external id given to ``start_trace`` / received on the wire."""
        if self.external is not None:
            return self.external
        try:
            return self._text
        except AttributeError:  # rendered once, on first use (never on the hot path)
            text = self._text = ids.trace_id_from_int(self.id)
            return text

    @property
    def hex(self) -> str:
        """The W3C trace id as 32 lowercase hex digits."""
        return ids.trace_hex(self.id)


class Node:
    """A link in the context chain: every node knows its trace and its parent."""

    __slots__ = ("_parent", "_trace")

    _parent: Node | None
    _trace: Trace

    def frame(self) -> dict[str, str] | None:
        """This node as a Dex frame, or ``None`` when it is not an operation/handler."""
        return None


class TraceRoot(Node):
    """The start of a trace in this process (``start_trace`` or an automatic trace)."""

    __slots__ = ()

    def __init__(self, trace: Trace) -> None:
        self._trace = trace
        self._parent = None


class RemoteFrame(Node):
    """A frame that ran in another process or job, restored from its payload."""

    __slots__ = ("id", "name", "sid", "type")

    def __init__(
        self, trace: Trace, parent: Node, type_: str, ident: str, name: str, sid: int
    ) -> None:
        self._trace = trace
        self._parent = parent
        self.type = type_
        self.id = ident
        self.name = name
        self.sid = sid

    def frame(self) -> dict[str, str] | None:
        if self.type == "span":
            return None
        return {"type": self.type, "id": self.id, "name": self.name}


class Frame(Node):
    """An operation running in a trace that is not recorded.

    The audit chain never turns off: the frame has its ``op_`` id and shows in
    ``frames()`` and ``trace_string()``, but nothing is timed, linked or retained.
    It is lighter than a :class:`~spanline.core.span.Span` on purpose: four slot
    writes, and the random half of its id is drawn only if someone reads it.
    """

    __slots__ = ("_sid", "name", "start_ns")

    _sid: int

    def __init__(self, name: str, parent: Node | None, trace: Trace, start_ns: int) -> None:
        self.name = name
        self._parent = parent
        self._trace = trace
        self.start_ns = start_ns

    @property
    def sid(self) -> int:
        """The frame's 64-bit W3C span id."""
        try:
            return self._sid
        except AttributeError:
            with _LAZY:
                try:
                    return self._sid
                except AttributeError:
                    value = self._sid = ids.new_random64() or 1
                    return value

    def frame(self) -> dict[str, str] | None:
        return {
            "type": "operation",
            "id": ids.format_id("op_", self.start_ns, self.sid),
            "name": self.name,
        }


_LAZY = threading.Lock()
"""Serializes the first read of lazily drawn ids (off the hot path)."""
renew_after_fork(sys.modules[__name__], "_LAZY")


current: contextvars.ContextVar[Node | None] = contextvars.ContextVar(
    "spanline_current", default=None
)
"""The innermost node of the running trace, or ``None`` outside any trace."""


class Boundary:
    """A context manager that makes ``_node`` current (a new or restored trace) and
    restores the previous chain on exit; entering yields the trace id.

    One object may be entered more than once, even by concurrent tasks or threads:
    each entry keeps its own token, and an exit resets the one that belongs to the
    exiting context (boundaries are per request, so this is not a hot path).
    """

    __slots__ = ("_lock", "_node", "_tokens")

    _node: Node
    _lock: threading.Lock
    _tokens: list[Any]

    def __enter__(self) -> str:
        self.enter()
        return self._node._trace.text

    @property
    def quietly(self) -> _Quiet:
        """The same boundary as a context manager that yields nothing, so the trace id
        is not rendered (middleware entering a boundary per request uses this)."""
        return _Quiet(self)

    def enter(self) -> None:
        """Make the boundary's trace current (leave with ``__exit__``)."""
        token = current.set(self._node)
        lock = getattr(self, "_lock", None)
        if lock is None:
            lock = self._lock = threading.Lock()
        with lock:
            tokens = getattr(self, "_tokens", None)
            if tokens is None:
                tokens = self._tokens = []
            tokens.append(token)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._lock:
            tokens: list[Any] = self._tokens
            for i in range(len(tokens) - 1, -1, -1):
                try:
                    current.reset(tokens[i])
                except (ValueError, RuntimeError):
                    continue  # another context's entry (or already used)
                del tokens[i]
                return


class _Quiet:
    """:attr:`Boundary.quietly`: enter and exit without rendering the trace id."""

    __slots__ = ("_boundary",)

    def __init__(self, boundary: Boundary) -> None:
        self._boundary = boundary

    def __enter__(self) -> None:
        self._boundary.enter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._boundary.__exit__(exc_type, exc, tb)


def wrap(fn: Callable[P, R]) -> Callable[P, R]:
    """Bind ``fn`` to the current trace so it continues it when run in another thread.

    ``threading.Thread(target=spanline.wrap(work)).start()`` or
    ``pool.submit(spanline.wrap(work), arg)``: spans started in ``work`` become children
    of the span that was current when ``wrap`` was called.  Each call runs in a fresh
    copy of that context, so concurrent calls do not see each other's spans.
    """
    captured = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return captured.copy().run(fn, *args, **kwargs)

    return run
