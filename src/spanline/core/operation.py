"""Operations: named units of business work, each with its own ``op_`` id.

Two spellings, one behaviour -- the body runs inside an operation span that is a
frame of the trace (it shows in ``frames()`` and ``trace_string()``):

* subclass :class:`Operation` and implement ``perform()`` (sync or ``async``);
* decorate a function, method or async function with :func:`operation`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, ClassVar, Generic, ParamSpec, TypeVar, overload

from spanline.core.decorate import traced
from spanline.core.span import OPERATION, Span

__all__ = ["Operation", "operation"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class _Call(Generic[T]):
    """``PlaceOrder(...).call()`` and ``PlaceOrder.call(...)`` both run the operation."""

    def __get__(self, instance: Operation | None, owner: type[Operation]) -> Callable[..., Any]:
        if instance is None:
            return lambda *args, **kwargs: owner(*args, **kwargs).call()
        if owner._spanline_async:
            return instance._call_async
        return instance._call_sync


class Operation:
    """Base class for operations: implement :meth:`perform`, run with :meth:`call`.

    Keyword arguments given to the constructor become attributes and are kept in
    :attr:`params` (they are *not* written into the span: parameters often hold
    secrets; record what you need with :func:`spanline.record`).  The span is named
    after the class's ``__qualname__`` unless the class sets ``operation_name``.
    """

    operation_name: ClassVar[str | None] = None
    _spanline_async: ClassVar[bool] = False
    _spanline_name: ClassVar[str] = "Operation"

    call = _Call[Any]()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._spanline_async = inspect.iscoroutinefunction(cls.perform)
        cls._spanline_name = cls.operation_name or cls.__qualname__

    def __init__(self, **params: Any) -> None:
        self.params = params
        for key, value in params.items():
            setattr(self, key, value)

    def perform(self) -> Any:
        """The operation's work; subclasses implement it (``def`` or ``async def``)."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement perform()")

    def _call_sync(self) -> Any:
        with Span(self._spanline_name, OPERATION):
            return self.perform()

    async def _call_async(self) -> Any:
        with Span(self._spanline_name, OPERATION):
            return await self.perform()


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
        label = name or getattr(target, "__qualname__", None) or repr(target)
        return traced(target, lambda: Span(label, OPERATION))

    return decorate if fn is None else decorate(fn)
