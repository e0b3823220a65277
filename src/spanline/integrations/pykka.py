"""pykka: messages to actors carry the trace, and every message an actor handles is a
CONSUMER span ``process <Type>``.

``spanline.instrument("pykka")`` wraps three methods of pykka 4:

* ``ActorRef.tell`` and ``ActorRef.ask`` -- public API, and the way every message
  reaches an inbox (``ActorProxy`` method calls and attribute access, and
  ``ActorRegistry.broadcast``, go through them).  The enqueue runs in a PRODUCER span
  ``send <Type>`` and the message travels with a :class:`~spanline.messaging.Envelope`
  whose metadata holds the ``traceparent``.  For a blocking ``ask`` the span covers
  the enqueue, not the wait for the reply.
* ``Actor._handle_receive`` -- **private**.  It is the one place where an actor, in
  its own thread, handles each message taken from its inbox, whatever its kind
  (``on_receive`` messages, proxy calls, attribute reads and writes).  pykka has no
  public hook around handling (``on_receive`` never sees proxy calls, and
  ``on_start``/``on_stop`` are not per message), so the handler cannot be timed
  otherwise.  ``tests/test_pykka.py`` fails loudly when pykka renames it or changes
  its signature; should that happen in production, ``install()`` logs a warning and
  hooks nothing, and pykka runs untraced.

How a message travels: only with pykka's public message types.  A plain message
``m`` is put in the inbox as ``ProxyCall(attr_path=("on_receive",), args=(m,),
kwargs={})`` -- which pykka handles exactly like ``m``: it calls ``on_receive(m)`` --
and ``ProxyCall``/``ProxyGetAttr``/``ProxySetAttr`` messages as their own type; the
carriers are subclasses of those types with the envelope attached.  So a message sent
while instrumented and handled after ``uninstrument("pykka")`` still reaches the actor
unchanged (just without a span).  pykka's internal stop message is never wrapped.

Spans: ``messaging.system=pykka``; ``messaging.destination.name`` is the actor class;
``spanline.messaging.actor.path`` is ``"<ActorClass> (<actor urn>)"`` as pykka prints
actors; ``spanline.messaging.mailbox.depth`` is the inbox's ``qsize()`` once the
message was taken out.  ``<Type>`` is the message's class name, or for proxy messages
the attribute path (``process load_order``).  A message that arrives without
context (sent before instrumenting) is processed in a new trace.  A handler's
exception marks the span ERROR and reaches pykka unchanged (``ask`` callers get it).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

import pykka
from pykka import messages

from spanline._log import report
from spanline.messaging.consumer import processing
from spanline.messaging.envelope import Envelope
from spanline.messaging.producer import sending

__all__ = ["SYSTEM", "install", "uninstall"]

SYSTEM = "pykka"
_HOOK = "_handle_receive"
_PROXY_TYPES = (messages.ProxyCall, messages.ProxyGetAttr, messages.ProxySetAttr)

_lock = threading.Lock()
_originals: dict[tuple[type, str], Any] = {}


class _CarriedCall(messages.ProxyCall):
    """A ``ProxyCall`` (or a plain message, as a call of ``on_receive``) with its
    envelope."""

    spanline_envelope: Envelope[Any]


class _CarriedGetAttr(messages.ProxyGetAttr):
    """A ``ProxyGetAttr`` with its envelope."""

    spanline_envelope: Envelope[Any]


class _CarriedSetAttr(messages.ProxySetAttr):
    """A ``ProxySetAttr`` with its envelope."""

    spanline_envelope: Envelope[Any]


_CARRIERS = (_CarriedCall, _CarriedGetAttr, _CarriedSetAttr)
_Carrier = _CarriedCall | _CarriedGetAttr | _CarriedSetAttr


def _internal(message: object) -> bool:
    """pykka's own control messages (the stop message) pass through untouched."""
    return not isinstance(message, _PROXY_TYPES) and type(message).__module__.startswith("pykka")


def _label(message: object) -> str:
    if isinstance(message, _PROXY_TYPES):
        try:
            return ".".join(str(part) for part in message.attr_path) or type(message).__name__
        except Exception:  # noqa: BLE001 - a hand-made message with an odd path
            return type(message).__name__
    return type(message).__name__


def _carrier(message: object, envelope: Envelope[Any]) -> _Carrier:
    carrier: _Carrier
    if isinstance(message, messages.ProxyCall):
        carrier = _CarriedCall(message.attr_path, message.args, message.kwargs)
    elif isinstance(message, messages.ProxyGetAttr):
        carrier = _CarriedGetAttr(message.attr_path)
    elif isinstance(message, messages.ProxySetAttr):
        carrier = _CarriedSetAttr(message.attr_path, message.value)
    else:
        carrier = _CarriedCall(("on_receive",), (message,), {})
    carrier.spanline_envelope = envelope
    return carrier


def _sending(ref: Any, message: object) -> sending[object]:
    return sending(
        message,
        system=SYSTEM,
        destination=ref.actor_class.__name__,
        message_type=_label(message),
    )


def _wrap_tell(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def tell(self: Any, message: Any) -> Any:
        if _internal(message):
            return original(self, message)
        with _sending(self, message) as envelope:
            return original(self, _carrier(message, envelope))

    return tell


def _wrap_ask(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def ask(self: Any, message: Any, *, block: bool = True, timeout: float | None = None) -> Any:
        if _internal(message):
            return original(self, message, block=block, timeout=timeout)
        with _sending(self, message) as envelope:
            future = original(self, _carrier(message, envelope), block=False)
        if block:
            return future.get(timeout=timeout)
        return future

    return ask


def _depth(actor: Any) -> int | None:
    qsize = getattr(actor.actor_inbox, "qsize", None)
    return int(qsize()) if callable(qsize) else None


def _processing(actor: Any, message: object) -> processing | None:
    if isinstance(message, _CARRIERS):
        envelope = message.spanline_envelope
    elif _internal(message):
        return None
    else:  # sent before instrumenting, or put into the inbox directly
        envelope = Envelope(message)
    cls = type(actor).__name__
    return processing(
        envelope,
        system=SYSTEM,
        destination=cls,
        actor_path=f"{cls} ({actor.actor_urn})",
        mailbox_depth=_depth(actor),
        message_type=_label(envelope.message),
    )


def _wrap_handle_receive(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def handle_receive(self: Any, message: Any) -> Any:
        try:
            span = _processing(self, message)
        except Exception as error:  # noqa: BLE001 - the actor handles its message regardless
            report(
                "pykka-processing",
                "spanline: could not trace a message to %r: %r",
                type(self).__name__,
                error,
                level=logging.WARNING,
            )
            span = None
        if span is None:
            return original(self, message)
        with span:
            return original(self, message)

    return handle_receive


_TARGETS: tuple[tuple[type, str, Callable[[Callable[..., Any]], Callable[..., Any]]], ...] = (
    (pykka.ActorRef, "tell", _wrap_tell),
    (pykka.ActorRef, "ask", _wrap_ask),
    (pykka.Actor, _HOOK, _wrap_handle_receive),
)


def install() -> None:
    """Trace pykka's messages (a second call does nothing)."""
    with _lock:
        if _originals:
            return
        if not callable(pykka.Actor.__dict__.get(_HOOK)):
            report(
                "pykka-hook",
                "spanline: pykka %s has no Actor.%s; pykka messages are not traced",
                getattr(pykka, "__version__", "?"),
                _HOOK,
                level=logging.WARNING,
            )
            return
        for owner, name, wrap in _TARGETS:
            original = owner.__dict__[name]
            _originals[(owner, name)] = original
            setattr(owner, name, wrap(original))


def uninstall() -> None:
    """Restore pykka's methods."""
    with _lock:
        for (owner, name), original in _originals.items():
            setattr(owner, name, original)
        _originals.clear()
