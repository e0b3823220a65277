"""An asyncio queue whose messages carry the trace from producer task to consumer task.

::

    orders: TracedQueue[PlaceOrder] = TracedQueue(name="orders")

    await orders.put(PlaceOrder("book"))        # PRODUCER span "send PlaceOrder"

    async with orders.process() as order:       # waits for a message, then a
        await handle(order)                     # CONSUMER span "process PlaceOrder"

It wraps an :class:`asyncio.Queue` of :class:`~spanline.messaging.Envelope` rather than
subclassing it, so nothing depends on how ``asyncio.Queue`` calls its own methods.
Like ``asyncio.Queue`` it is not thread-safe: use it from one event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

from spanline.messaging.consumer import processing
from spanline.messaging.envelope import Envelope
from spanline.messaging.producer import sending

__all__ = ["TracedQueue"]

T = TypeVar("T")


class TracedQueue(Generic[T]):
    """A FIFO asyncio queue: ``put`` sends in a ``send <Type>`` span, ``process()``
    takes the next message and handles it in a ``process <Type>`` span that is a child
    of the send span, with the queue depth at dequeue
    (``spanline.messaging.mailbox.depth``).

    ``name`` is ``messaging.destination.name``; ``system`` is ``messaging.system``.
    """

    def __init__(self, maxsize: int = 0, *, name: str = "queue", system: str = "asyncio") -> None:
        self._queue: asyncio.Queue[Envelope[T]] = asyncio.Queue(maxsize)
        self.name = name
        self.system = system

    @property
    def maxsize(self) -> int:
        """The capacity (0: unbounded)."""
        return self._queue.maxsize

    def qsize(self) -> int:
        """Messages waiting."""
        return self._queue.qsize()

    def empty(self) -> bool:
        """True when no message is waiting."""
        return self._queue.empty()

    def full(self) -> bool:
        """True when ``maxsize`` messages are waiting."""
        return self._queue.full()

    async def put(self, message: T) -> None:
        """Send ``message``, waiting for a free slot if the queue is full (the send span
        includes that wait)."""
        with sending(message, system=self.system, destination=self.name) as envelope:
            await self._queue.put(envelope)

    def put_nowait(self, message: T) -> None:
        """Send ``message`` now; :class:`asyncio.QueueFull` (the span marked ERROR) if
        there is no free slot."""
        with sending(message, system=self.system, destination=self.name) as envelope:
            self._queue.put_nowait(envelope)

    @asynccontextmanager
    async def process(self) -> AsyncIterator[T]:
        """Wait for the next message and yield it inside its ``process`` span.

        An exception from the block marks the span ERROR and passes through.  The
        message counts as done (``task_done``) when the block ends, either way.
        """
        envelope = await self._queue.get()
        try:
            with processing(
                envelope,
                system=self.system,
                destination=self.name,
                mailbox_depth=self._queue.qsize(),
            ):
                yield envelope.message
        finally:
            self._queue.task_done()

    async def join(self) -> None:
        """Wait until every message put so far has been processed."""
        await self._queue.join()
