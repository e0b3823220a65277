"""Sending: a PRODUCER span ``send <Type>`` around handing an envelope over.

::

    with messaging.sending(order, system="nexus", destination="orders") as envelope:
        mailbox.put(envelope)

    messaging.send(mailbox.put, order, system="nexus", destination="orders")

While the span is open the envelope's metadata receives ``traceparent`` naming the
send span (plus a received ``tracestate``, and the trace's actor as ``baggage``), so
the consumer's ``process`` span becomes its child.  An exception raised while sending
-- a full queue, a dead actor -- marks the span ERROR and passes through unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Generic, TypeVar

from spanline._log import report
from spanline.core.context import current
from spanline.core.span import Span, SpanKind
from spanline.messaging import attributes as attr
from spanline.messaging.envelope import Envelope, set_origin
from spanline.propagation.carrier import inject

__all__ = ["send", "sending"]

T = TypeVar("T")
R = TypeVar("R")


class sending(Generic[T]):  # noqa: N801 - used like a function: ``with sending(message):``
    """Open a PRODUCER span ``send <Type>`` and yield the envelope to hand over.

    ``system`` is ``messaging.system``; ``destination`` the queue or actor the message
    goes to; ``message_type`` replaces the class name in the span name; ``metadata``
    is copied into the envelope before the trace context is written.
    """

    __slots__ = ("_envelope", "_span")

    def __init__(
        self,
        message: T,
        *,
        system: str,
        destination: str | None = None,
        message_id: str | None = None,
        correlation_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
        message_type: str | None = None,
    ) -> None:
        label = attr.message_type(message) if message_type is None else str(message_type)
        self._span = Span(
            f"send {label}",
            kind=SpanKind.PRODUCER,
            attributes=attr.message_attributes(
                system, "send", label, destination, message_id, correlation_id
            ),
        )
        self._envelope = Envelope(
            message, dict(metadata) if metadata else {}, message_id, correlation_id
        )

    def __enter__(self) -> Envelope[T]:
        self._span.__enter__()
        envelope = self._envelope
        try:
            inject(envelope.metadata)
            set_origin(envelope, current.get())
        except Exception as error:  # noqa: BLE001 - tracing never breaks the send
            report(
                "messaging-inject",
                "spanline.messaging: could not write the trace context of %r: %r",
                self._span.name,
                error,
                level=logging.WARNING,
            )
        return envelope

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._span.__exit__(exc_type, exc, tb)


def send(
    put: Callable[[Envelope[T]], R],
    message: T,
    *,
    system: str,
    destination: str | None = None,
    message_id: str | None = None,
    correlation_id: str | None = None,
    metadata: Mapping[str, str] | None = None,
    message_type: str | None = None,
) -> R:
    """Wrap ``message`` in an envelope and call ``put(envelope)`` inside a ``send``
    span (see :class:`sending` for the arguments); returns what ``put`` returns."""
    with sending(
        message,
        system=system,
        destination=destination,
        message_id=message_id,
        correlation_id=correlation_id,
        metadata=metadata,
        message_type=message_type,
    ) as envelope:
        return put(envelope)
