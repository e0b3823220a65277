"""Celery: the trace travels in each task message's headers.

``spanline.instrument("celery")`` -- in the module that creates the Celery app, so
producers and workers both run it -- does four things:

* ``Celery.send_task`` (what ``delay``/``apply_async`` call) runs in a PRODUCER span
  ``send <task>`` (``messaging.system=celery``, ``messaging.operation.type=send``,
  ``messaging.destination.name`` = the routing key, ``messaging.message.id`` = the
  task id);
* ``before_task_publish`` adds ``traceparent``/``tracestate``/``baggage`` and
  ``spanline`` (the :func:`spanline.dump` payload: actor and frames) to the message
  *headers* -- never to the task's args or kwargs;
* ``task_prerun`` continues that trace and opens a CONSUMER span ``process <task>``,
  child of the ``send`` span, with the same ``messaging.*`` attributes; the
  ``spanline`` header is then removed from ``task.request`` (the W3C headers stay,
  for other tracers to read);
* ``task_failure`` marks the span ERROR with the exception; ``task_postrun`` ends it.

A task published without these headers (another producer, or ``task_always_eager``)
gets its ``process`` span in the worker's current context.  ``uninstall()`` restores
``send_task`` and disconnects the signals.  Failures here are logged (rate-limited)
and never reach the task.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable
from typing import Any

from celery import signals  # type: ignore[import-untyped]
from celery.app.base import Celery  # type: ignore[import-untyped]

from spanline._log import report
from spanline.core.context import Boundary, current
from spanline.core.span import Span, SpanKind
from spanline.jobs.message import KEY, W3C_KEYS, continue_message, message_context

__all__ = ["install", "uninstall"]

_UID = "spanline.integrations.celery"
_lock = threading.Lock()
_original_send: Callable[..., Any] | None = None
_sending: contextvars.ContextVar[Span | None] = contextvars.ContextVar(
    "spanline_celery_send", default=None
)


class _Running:
    """A task's ``process`` span, its boundary, and the failure to record on it."""

    __slots__ = ("boundary", "error", "span")

    def __init__(self, boundary: Boundary | None, span: Span) -> None:
        self.boundary = boundary
        self.span = span
        self.error: BaseException | None = None


_running: dict[str, _Running] = {}


def _attributes(operation: str, destination: object, message_id: object) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "messaging.system": "celery",
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
    }
    if isinstance(destination, str) and destination:
        attributes["messaging.destination.name"] = destination
    if isinstance(message_id, str) and message_id:
        attributes["messaging.message.id"] = message_id
    return attributes


# -- producer ----------------------------------------------------------------------


def _wrap_send(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def send_task(self: Any, name: Any, *args: Any, **kwargs: Any) -> Any:
        span = Span(
            f"send {name}", kind=SpanKind.PRODUCER, attributes=_attributes("send", None, None)
        )
        with span:
            token = _sending.set(span)
            try:
                return original(self, name, *args, **kwargs)
            finally:
                _sending.reset(token)

    return send_task


def _before_publish(
    sender: Any = None, headers: Any = None, routing_key: Any = None, **_: Any
) -> None:
    try:
        if not isinstance(headers, dict):
            return
        headers.update(message_context())
        span = _sending.get()
        if span is not None and current.get() is span:
            span.set_attributes(_attributes("send", routing_key, headers.get("id")))
    except Exception as error:  # noqa: BLE001 - tracing never breaks the app
        report("celery-publish", "spanline: celery before_task_publish failed: %r", error)


# -- worker ------------------------------------------------------------------------


def _take_context(request: Any) -> dict[str, Any]:
    """The trace entries of a task's request; the ``spanline`` one is removed."""
    headers = getattr(request, "headers", None)
    entries: dict[str, Any] = {}
    for key in (*W3C_KEYS, KEY):
        value = getattr(request, key, None)
        if value is None and isinstance(headers, dict):
            value = headers.get(key)
        if value is not None:
            entries[key] = value
    if KEY in getattr(request, "__dict__", ()):
        delattr(request, KEY)
    if isinstance(headers, dict):
        headers.pop(KEY, None)
    return entries


def _prerun(sender: Any = None, task_id: Any = None, task: Any = None, **_: Any) -> None:
    try:
        if task is None or not isinstance(task_id, str):
            return
        request = task.request
        boundary = continue_message(_take_context(request))
        delivery = getattr(request, "delivery_info", None) or {}
        span = Span(
            f"process {task.name}",
            kind=SpanKind.CONSUMER,
            attributes=_attributes("process", delivery.get("routing_key"), task_id),
        )
        if boundary is not None:
            boundary.__enter__()
        try:
            span.__enter__()
        except BaseException:
            if boundary is not None:
                boundary.__exit__(None, None, None)
            raise
        with _lock:
            _running[task_id] = _Running(boundary, span)
    except Exception as error:  # noqa: BLE001 - tracing never breaks the app
        report("celery-prerun", "spanline: celery task_prerun failed: %r", error)


def _failure(task_id: Any = None, exception: Any = None, **_: Any) -> None:
    with _lock:
        running = _running.get(task_id) if isinstance(task_id, str) else None
    if running is not None and isinstance(exception, BaseException):
        running.error = exception


def _postrun(task_id: Any = None, **_: Any) -> None:
    with _lock:
        running = _running.pop(task_id, None) if isinstance(task_id, str) else None
    if running is None:
        return
    try:
        error = running.error
        if error is None:
            running.span.__exit__(None, None, None)
        else:
            running.span.__exit__(type(error), error, error.__traceback__)
    except Exception as failure:  # noqa: BLE001 - tracing never breaks the app
        report("celery-postrun", "spanline: celery task_postrun failed: %r", failure)
    finally:
        if running.boundary is not None:
            running.boundary.__exit__(None, None, None)


_SIGNALS: list[tuple[Any, Callable[..., None]]] = [
    (signals.before_task_publish, _before_publish),
    (signals.task_prerun, _prerun),
    (signals.task_failure, _failure),
    (signals.task_postrun, _postrun),
]


def install() -> None:
    """Wrap ``Celery.send_task`` and connect the signal receivers (twice: no change)."""
    global _original_send
    with _lock:
        if _original_send is not None:
            return
        _original_send = Celery.__dict__["send_task"]
        Celery.send_task = _wrap_send(_original_send)
    for signal, receiver in _SIGNALS:
        signal.connect(receiver, weak=False, dispatch_uid=f"{_UID}.{receiver.__name__}")


def uninstall() -> None:
    """Restore ``Celery.send_task`` and disconnect the receivers."""
    global _original_send
    for signal, receiver in _SIGNALS:
        signal.disconnect(receiver, dispatch_uid=f"{_UID}.{receiver.__name__}")
    with _lock:
        if _original_send is not None:
            Celery.send_task = _original_send
            _original_send = None
