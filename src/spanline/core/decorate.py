"""Running a function inside a fresh span per call: plain, async, generator and
async-generator functions alike.

Generators need care: a ``with`` around ``yield`` would leave the span current in the
*consumer's* code between items.  So each step of a decorated generator runs inside
a private copy of the caller's context in which the span is current; the consumer's
own context never sees it.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from typing import Any, ParamSpec, Protocol, TypeVar, cast

__all__ = ["callable_name", "traced"]

P = ParamSpec("P")
R = TypeVar("R")


class _SpanLike(Protocol):
    def __enter__(self) -> object: ...
    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None: ...


class _InContext:
    """Await ``awaitable`` with every step run inside ``ctx``."""

    __slots__ = ("awaitable", "ctx")

    def __init__(self, ctx: contextvars.Context, awaitable: Awaitable[Any]) -> None:
        self.ctx = ctx
        self.awaitable = awaitable

    def __await__(self) -> Generator[Any, Any, Any]:
        steps = self.awaitable.__await__()
        run = self.ctx.run
        message: Any = None
        error: BaseException | None = None
        while True:
            try:
                if error is None:
                    yielded = run(steps.send, message)
                else:
                    pending, error = error, None
                    yielded = run(steps.throw, pending)
            except StopIteration as stop:
                return stop.value
            try:
                message = yield yielded
            except BaseException as thrown:  # noqa: BLE001 - forwarded into the awaitable
                error = thrown


def _generator(
    fn: Callable[..., Generator[Any, Any, Any]], make: Callable[[], _SpanLike]
) -> Callable[..., Generator[Any, Any, Any]]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        ctx = contextvars.copy_context()
        span = make()
        ctx.run(span.__enter__)
        try:
            inner = ctx.run(fn, *args, **kwargs)
            item = ctx.run(next, inner)
            while True:
                try:
                    sent = yield item
                except GeneratorExit:
                    ctx.run(inner.close)
                    raise
                except BaseException as thrown:  # noqa: BLE001 - forwarded into the generator
                    item = ctx.run(inner.throw, thrown)
                else:
                    item = ctx.run(inner.send, sent)
        except StopIteration as stop:
            ctx.run(span.__exit__, None, None, None)
            return stop.value
        except BaseException as error:
            ctx.run(span.__exit__, type(error), error, error.__traceback__)
            raise

    return wrapper


def _async_generator(
    fn: Callable[..., AsyncGenerator[Any, Any]], make: Callable[[], _SpanLike]
) -> Callable[..., AsyncGenerator[Any, Any]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        ctx = contextvars.copy_context()
        span = make()
        ctx.run(span.__enter__)
        try:
            inner = ctx.run(fn, *args, **kwargs)
            item = await _InContext(ctx, inner.__anext__())
            while True:
                try:
                    sent = yield item
                except GeneratorExit:
                    await _InContext(ctx, inner.aclose())
                    raise
                except BaseException as thrown:  # noqa: BLE001 - forwarded into the generator
                    item = await _InContext(ctx, inner.athrow(thrown))
                else:
                    item = await _InContext(ctx, inner.asend(sent))
        except StopAsyncIteration:
            ctx.run(span.__exit__, None, None, None)
        except BaseException as error:
            ctx.run(span.__exit__, type(error), error, error.__traceback__)
            raise

    return wrapper


def callable_name(obj: object) -> str:
    """A readable default span name: the ``__qualname__`` without ``<locals>`` parts
    (``Checkout.place``, ``validate``)."""
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if not isinstance(qualname, str):
        return repr(obj)
    return qualname.rsplit("<locals>.", 1)[-1]


def traced(fn: Callable[P, R], make: Callable[[], _SpanLike]) -> Callable[P, R]:
    """Wrap ``fn`` so that every call runs inside ``make()`` (a span context manager)."""
    if inspect.iscoroutinefunction(fn):
        async_fn = cast(Callable[..., Awaitable[Any]], fn)

        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            with make():
                return await async_fn(*args, **kwargs)

        return cast(Callable[P, R], run_async)
    if inspect.isasyncgenfunction(fn):
        return cast(Callable[P, R], _async_generator(cast(Any, fn), make))
    if inspect.isgeneratorfunction(fn):
        return cast(Callable[P, R], _generator(cast(Any, fn), make))

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with make():
            return fn(*args, **kwargs)

    return run
