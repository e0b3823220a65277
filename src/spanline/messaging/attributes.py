"""Attribute names of message spans, and the message type that names them.

OpenTelemetry's messaging semantic conventions name most of what a message span
records; three things an actor system cares about have no name there, so spanline
puts them in its own namespace rather than inventing ``messaging.*`` names:

* ``messaging.system`` -- the messaging system (``asyncio``, ``pykka`` …);
* ``messaging.operation.type`` -- ``send`` on PRODUCER spans, ``process`` on CONSUMER
  spans; ``messaging.operation.name`` -- the same words;
* ``messaging.destination.name`` -- the queue, or the actor class, the message goes to;
* ``messaging.message.id`` / ``messaging.message.conversation_id`` -- the envelope's
  ``message_id`` / ``correlation_id``, when it has them;
* ``spanline.messaging.message.type`` -- the message type, the word after
  ``send``/``process`` in the span name;
* ``spanline.messaging.actor.path`` -- the actor that processes the message;
* ``spanline.messaging.mailbox.depth`` -- how many messages were still waiting in the
  mailbox (or queue) when this one was taken out: 0 means no backlog.

The ``spanline.actor.*`` names are not used on purpose: in spanline an *actor* is who
caused a trace (a user, a job), and those attributes already carry it.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ACTOR_PATH",
    "CONVERSATION_ID",
    "DESTINATION",
    "MAILBOX_DEPTH",
    "MAX_ID",
    "MESSAGE_ID",
    "MESSAGE_TYPE",
    "OPERATION_NAME",
    "OPERATION_TYPE",
    "SYSTEM",
    "message_attributes",
    "message_type",
]

SYSTEM = "messaging.system"
OPERATION_TYPE = "messaging.operation.type"
OPERATION_NAME = "messaging.operation.name"
DESTINATION = "messaging.destination.name"
MESSAGE_ID = "messaging.message.id"
CONVERSATION_ID = "messaging.message.conversation_id"
MESSAGE_TYPE = "spanline.messaging.message.type"
ACTOR_PATH = "spanline.messaging.actor.path"
MAILBOX_DEPTH = "spanline.messaging.mailbox.depth"


def message_type(message: object) -> str:
    """The short class name of ``message`` (``PlaceOrder``), as spans name it."""
    return type(message).__name__


MAX_ID = 256
"""Longer ``message_id``/``correlation_id`` values are cut to this many characters in
span attributes (the envelope keeps them whole)."""


def message_attributes(
    system: str,
    operation: str,
    label: str,
    destination: str | None,
    message_id: object,
    correlation_id: object,
) -> dict[str, Any]:
    """The attributes every message span has (``operation`` is ``send``/``process``)."""
    attributes: dict[str, Any] = {
        SYSTEM: system,
        OPERATION_TYPE: operation,
        OPERATION_NAME: operation,
        MESSAGE_TYPE: label,
    }
    if destination is not None:
        attributes[DESTINATION] = destination
    if isinstance(message_id, str) and message_id:
        attributes[MESSAGE_ID] = message_id[:MAX_ID]
    if isinstance(correlation_id, str) and correlation_id:
        attributes[CONVERSATION_ID] = correlation_id[:MAX_ID]
    return attributes
