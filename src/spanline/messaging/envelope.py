"""The envelope: a message plus the metadata that travels with it.

Like Nexus's ``Envelope``, it carries the message and a ``metadata`` dict of strings
-- where the trace context rides as W3C ``traceparent``/``tracestate`` (and the
trace's actor as ``baggage``) -- plus the ids a messaging system keeps per message:
``message_id`` and ``correlation_id``.

An envelope made by :func:`~spanline.messaging.sending` also remembers, in this
process only, the node it was sent from.  A consumer in the same process (another
thread, another asyncio task) then continues that very trace: the ``process`` span is
a child of the ``send`` span in one tree, with the trace's actor and frames, exactly
as :func:`spanline.wrap` does for threads.  Pickling or copying an envelope keeps the
message, the metadata and the ids, never that reference: in another process the
metadata is what continues the trace.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from spanline.core.context import Node

__all__ = ["Envelope", "origin_of", "set_origin"]

T = TypeVar("T")


class Envelope(Generic[T]):
    """A message and its metadata (``dict[str, str]``; ``traceparent`` lives there)."""

    __slots__ = ("_origin", "correlation_id", "message", "message_id", "metadata")

    def __init__(
        self,
        message: T,
        metadata: dict[str, str] | None = None,
        message_id: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        self.message = message
        self.metadata: dict[str, str] = {} if metadata is None else metadata
        self.message_id = message_id
        self.correlation_id = correlation_id
        self._origin: Node | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # the in-process origin is deliberately not part of the copy
        return (type(self), (self.message, self.metadata, self.message_id, self.correlation_id))

    def __repr__(self) -> str:
        return f"Envelope(message={self.message!r}, metadata={self.metadata!r})"


def origin_of(envelope: Envelope[Any]) -> Node | None:
    """The node the envelope was sent from, if that happened in this process."""
    return envelope._origin


def set_origin(envelope: Envelope[Any], node: Node | None) -> None:
    """Remember where the envelope was sent from (done by ``sending``)."""
    envelope._origin = node
