"""Processing: a CONSUMER span ``process <Type>`` that continues the sender's trace.

::

    with messaging.processing(envelope, system="nexus", actor_path="/app/orders") as span:
        handle(envelope.message)

The span's parent is, in this order: the node the envelope was sent from, when that
happened in this process (one tree, the trace's actor and frames kept); else the
``traceparent`` in the envelope's metadata; else nothing -- the message starts a new
trace.  The caller's actor (``baggage``) is taken from metadata only with
``trust_actor=True``, as for HTTP.

Metadata that cannot be used -- not a mapping of strings to strings, more than
:data:`MAX_ENTRIES` entries, a propagation value over :data:`MAX_VALUE` characters, a
``traceparent`` that is not valid W3C -- is ignored: the message is still processed,
in a new trace, a warning names what was wrong (rate-limited) and
``message_context_rejected`` is counted in ``spanline.tracer.stats()``.

A handler's exception sets the span's status to ERROR, is recorded as an
``exception`` event and passes through unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from spanline._log import report
from spanline.core import clock
from spanline.core.context import Boundary, Node, TraceRoot
from spanline.core.pipeline import PIPELINE
from spanline.core.span import NoopSpan, Span, SpanKind, new_trace
from spanline.messaging import attributes as attr
from spanline.messaging.envelope import Envelope, origin_of
from spanline.propagation.carrier import extract
from spanline.propagation.w3c import header_values, parse_traceparent

__all__ = ["MAX_ENTRIES", "MAX_VALUE", "processing"]

MAX_ENTRIES = 64
"""Metadata with more entries than this is not read."""

MAX_VALUE = 8192
"""The longest ``traceparent``/``tracestate``/``baggage`` value read (the W3C limit
for baggage; a valid ``traceparent`` is 55 characters)."""

_PROPAGATION = frozenset({"traceparent", "tracestate", "baggage"})
_SHOWN = 60


class _RejectedError(ValueError):
    """Why a message's metadata was not used."""


def _shown(value: object) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a hostile __repr__ still gets a name
        text = f"<{type(value).__name__}>"
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}…"


def _checked(metadata: object) -> Mapping[str, str]:
    if not isinstance(metadata, Mapping):
        kind = type(metadata).__name__
        raise _RejectedError(f"metadata must be a dict of str to str, got {kind}")
    if len(metadata) > MAX_ENTRIES:
        count = len(metadata)
        raise _RejectedError(f"metadata has {count} entries; at most {MAX_ENTRIES} are read")
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise _RejectedError(f"metadata key {_shown(key)} is {type(key).__name__}, not str")
        if not isinstance(value, str):
            raise _RejectedError(f"metadata[{_shown(key)}] is {type(value).__name__}, not str")
        if len(value) > MAX_VALUE and key.lower() in _PROPAGATION:
            raise _RejectedError(f"metadata[{_shown(key)}] is longer than {MAX_VALUE} characters")
    return metadata


def _remote_parent(metadata: object, trust_actor: bool) -> Node | None:
    carrier = _checked(metadata)
    if not carrier:
        return None
    remote = extract(carrier, trust_actor=trust_actor)
    if remote is None:
        sent = header_values(carrier, "traceparent")
        if sent and parse_traceparent(sent) is None:  # (valid ones: the propagator is off)
            shown = _shown(sent[0]) if len(sent) == 1 else f"{len(sent)} values"
            raise _RejectedError(f"metadata['traceparent'] {shown} is not a valid W3C traceparent")
    return remote


class _Continue(Boundary):
    __slots__ = ()

    def __init__(self, node: Node) -> None:
        self._node = node


class processing:  # noqa: N801 - used like a function: ``with processing(envelope):``
    """Open a CONSUMER span ``process <Type>`` for ``envelope``; yields the span.

    ``system`` is ``messaging.system``, ``destination`` the queue or actor class,
    ``actor_path`` the processing actor, ``mailbox_depth`` the messages still waiting
    when this one was taken out; ``message_type`` replaces the class name of the
    message in the span name.  Anything that is not an :class:`Envelope` is processed
    as a message without context (and a warning says so).
    """

    __slots__ = ("_boundary", "_envelope", "_span", "_trust_actor")

    _boundary: Boundary | None

    def __init__(
        self,
        envelope: Envelope[Any],
        *,
        system: str,
        destination: str | None = None,
        actor_path: str | None = None,
        mailbox_depth: int | None = None,
        message_type: str | None = None,
        trust_actor: bool = False,
    ) -> None:
        is_envelope = isinstance(envelope, Envelope)
        message = envelope.message if is_envelope else envelope
        label = attr.message_type(message) if message_type is None else str(message_type)
        attributes = attr.message_attributes(
            system,
            "process",
            label,
            destination,
            envelope.message_id if is_envelope else None,
            envelope.correlation_id if is_envelope else None,
        )
        if actor_path is not None:
            attributes[attr.ACTOR_PATH] = actor_path
        if mailbox_depth is not None:
            attributes[attr.MAILBOX_DEPTH] = mailbox_depth
        self._span = Span(f"process {label}", kind=SpanKind.CONSUMER, attributes=attributes)
        self._envelope = envelope
        self._trust_actor = trust_actor
        self._boundary = None

    def _parent(self) -> Node | None:
        envelope = self._envelope
        try:
            if not isinstance(envelope, Envelope):
                raise _RejectedError(f"expected an Envelope, got {type(envelope).__name__}")
            origin = origin_of(envelope)
            if origin is not None:
                return origin
            return _remote_parent(envelope.metadata, self._trust_actor)
        except Exception as error:  # noqa: BLE001 - the message is processed whatever it carries
            reason = str(error) if isinstance(error, _RejectedError) else f"unreadable ({error!r})"
            PIPELINE.count("message_context_rejected")
            report(
                "messaging-metadata",
                "spanline.messaging: ignoring the trace context of %r, "
                "processing it in a new trace: %s",
                self._span.name,
                reason,
                level=logging.WARNING,
            )
            return None

    def __enter__(self) -> Span | NoopSpan:
        parent = self._parent()
        boundary = _Continue(parent if parent is not None else TraceRoot(new_trace(clock.now_ns())))
        boundary.__enter__()
        self._boundary = boundary
        try:
            return self._span.__enter__()
        except BaseException:
            boundary.__exit__(None, None, None)
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._span.__exit__(exc_type, exc, tb)
        finally:
            boundary, self._boundary = self._boundary, None
            if boundary is not None:
                boundary.__exit__(exc_type, exc, tb)
