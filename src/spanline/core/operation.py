"""Operations: named units of business work, each with its own ``op_`` id.

Two spellings, one behaviour -- the body runs inside an operation span that is a
frame of the trace (it shows in ``frames()`` and ``trace_string()``):

* subclass :class:`Operation` and implement ``perform()`` (sync or ``async``);
* decorate a function, method or async function with :func:`operation`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, ParamSpec, TypeVar, overload

from spanline._log import report
from spanline.core import clock, config
from spanline.core.context import Frame, Trace, current
from spanline.core.decorate import callable_name, traced
from spanline.core.span import OPERATION, NoopSpan, Span, SpanKind

if TYPE_CHECKING:
    from spanline.jobs.backend import JobBackend

_INTERNAL = SpanKind.INTERNAL
_new = object.__new__

params_sink: Callable[[Span, dict[str, Any]], None] | None = None
"""Set by :class:`spanline.Recorder` when a recorder wants operation params: called
with an Operation's span and its params when the operation starts (recorded traces
only).  The params go to the recorder, never onto the span."""

__all__ = ["Operation", "operation", "run_operation"]

P = ParamSpec("P")
R = TypeVar("R")


class Operation:
    """Base class for operations: implement :meth:`perform`, run with :meth:`call`.

    Keyword arguments given to the constructor become attributes and are kept in
    :attr:`params` (they are *not* written into the span: parameters often hold
    secrets; record what you need with :func:`spanline.record`).  The span is named
    after the class (its ``__qualname__``) unless the class sets ``operation_name``.
    """

    operation_name: ClassVar[str | None] = None
    _spanline_name: ClassVar[str] = "Operation"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._spanline_name = cls.operation_name or callable_name(cls)
        # Decided once per class, so call() is a plain method lookup at run time.
        if "call" not in cls.__dict__:
            cls.call = (  # type: ignore[method-assign]
                Operation._call_async
                if inspect.iscoroutinefunction(cls.perform)
                else Operation._call_sync
            )

    def __init__(self, **params: Any) -> None:
        self.params = params
        if params:
            for key, value in params.items():
                setattr(self, key, value)

    def call(self) -> Any:
        """Run :meth:`perform` in a new operation frame and return its result (a
        coroutine to await when ``perform`` is ``async``)."""
        return self._call_sync()

    def perform(self) -> Any:
        """The operation's work; subclasses implement it (``def`` or ``async def``)."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement perform()")

    def enqueue(self, *, backend: JobBackend | None = None, **options: Any) -> Any:
        """Run this operation later, in a worker, as a continuation of the current trace.

        The job carries the class (``module:QualName``), the constructor params and
        the trace (:func:`spanline.dump`); the worker's :func:`spanline.jobs.run_job`
        runs it with the same trace id, the same actor and this trace's frames as
        parents.  It goes to ``backend``, else to the one set with
        :func:`spanline.jobs.use`; ``options`` pass to the backend (Celery's
        ``countdown=``, RQ's ``job_timeout=`` …) and its handle is returned.

        Raises ``TypeError`` naming a param that JSON cannot carry unchanged,
        ``ValueError`` for a class a worker could not import (``__main__``, local),
        ``RuntimeError`` when no backend is set.
        """
        from spanline.jobs.backend import enqueue

        return enqueue(self, backend, options)

    def _call_sync(self) -> Any:
        # The same steps as run_operation(), inlined: going through it would cost the
        # class path one more Python frame and an argument unpacking (~0.3 µs/call,
        # measured with bench/bench_core.py).  Keep the two in step.
        name = self._spanline_name
        parent = current.get()
        if parent is None:
            if config.settings.enabled:
                with Span(name, None, None, _INTERNAL, None, OPERATION) as span:
                    if params_sink is not None:
                        _hand_params(span, self.params)
                    return self.perform()
            start = clock.now_ns()
            trace = Trace(0, None, None, False, start)
        elif parent._trace.recorded:
            with Span(name, None, None, _INTERNAL, None, OPERATION) as span:
                if params_sink is not None:
                    _hand_params(span, self.params)
                return self.perform()
        else:
            start = clock.now_ns()
            trace = parent._trace
        frame = _new(Frame)
        frame.name = name
        frame._parent = parent
        frame._trace = trace
        frame.start_ns = start
        token = current.set(frame)
        try:
            return self.perform()
        finally:
            current.reset(token)

    async def _call_async(self) -> Any:
        with Span(self._spanline_name, None, None, _INTERNAL, None, OPERATION) as span:
            if params_sink is not None:
                _hand_params(span, self.params)
            return await self.perform()


def _hand_params(span: Span | NoopSpan, params: dict[str, Any]) -> None:
    sink = params_sink
    if sink is None or type(span) is not Span or not params:
        return
    try:
        sink(span, params)
    except Exception as error:  # noqa: BLE001 - a recorder's failure never breaks the app
        report("params-sink", "spanline: could not hand params to a recorder: %r", error)


_SPECIAL = (inspect.iscoroutinefunction, inspect.isgeneratorfunction, inspect.isasyncgenfunction)


def run_operation(
    name: str, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> R:
    """Call ``fn(*args, **kwargs)`` inside an operation frame named ``name``.

    In a recorded trace that frame is a full :class:`Span`; in an unrecorded one (or
    with recording off) it is a light :class:`Frame` -- id and chain only.
    """
    parent = current.get()
    if parent is None:
        if config.settings.enabled:
            with Span(name, None, None, _INTERNAL, None, OPERATION):
                return fn(*args, **kwargs)
        start = clock.now_ns()
        trace = Trace(0, None, None, False, start)
    elif parent._trace.recorded:
        with Span(name, None, None, _INTERNAL, None, OPERATION):
            return fn(*args, **kwargs)
    else:
        start = clock.now_ns()
        trace = parent._trace
    # Built without calling Frame.__init__ (same four fields): saves ~75 ns per call.
    frame = _new(Frame)
    frame.name = name
    frame._parent = parent
    frame._trace = trace
    frame.start_ns = start
    token = current.set(frame)
    try:
        return fn(*args, **kwargs)
    finally:
        current.reset(token)


@overload
def operation(fn: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def operation(*, name: str | None = None) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def operation(
    fn: Callable[P, R] | None = None, /, *, name: str | None = None
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Run every call of the decorated function as an operation with its own ``op_`` id.

    ``@spanline.operation`` or ``@spanline.operation(name="orders.validate")``; works
    on functions, methods, async functions and generators.
    """

    def decorate(target: Callable[P, R]) -> Callable[P, R]:
        if not callable(target):
            raise TypeError(f"@operation needs a callable, got {type(target).__name__}")
        label = name or callable_name(target)
        # async functions and generators need the generic wrappers in decorate.py
        if any(check(target) for check in _SPECIAL):
            return traced(target, lambda: Span(label, type_=OPERATION))

        @functools.wraps(target)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            return run_operation(label, target, args, kwargs)

        return run

    return decorate if fn is None else decorate(fn)
