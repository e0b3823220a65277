"""Messages and actors: one trace from the sender, through the mailbox, into the handler.

Sending wraps a message in an :class:`Envelope` whose ``metadata`` carries the W3C
``traceparent``/``tracestate`` of a PRODUCER span ``send <Type>``; processing opens a
CONSUMER span ``process <Type>`` as that span's child, with ``messaging.system``,
``messaging.operation.type``, the destination, the actor path and the mailbox depth
at dequeue.  A handler's exception marks the span ERROR, is recorded, and passes
through unchanged::

    from spanline import messaging

    with messaging.sending(order, system="nexus", destination="orders") as envelope:
        mailbox.put(envelope)

    # in the actor, another thread or task, or another process
    with messaging.processing(envelope, system="nexus", actor_path="/app/orders"):
        handle(envelope.message)

:class:`TracedQueue` does both for asyncio; ``spanline.instrument("pykka")`` does both
for pykka actors.  See ``docs/messaging.md``; attribute names are listed in
:mod:`spanline.messaging.attributes`.
"""

from __future__ import annotations

from spanline.messaging.asyncio_queue import TracedQueue
from spanline.messaging.consumer import processing
from spanline.messaging.envelope import Envelope
from spanline.messaging.producer import send, sending

__all__ = ["Envelope", "TracedQueue", "processing", "send", "sending"]
