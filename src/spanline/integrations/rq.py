"""RQ: the trace travels in each job's ``meta``.

``spanline.instrument("rq")`` -- in the producer, and in the worker *before* it
starts (a module given to ``rq worker -c``, or your own worker script) -- wraps:

* ``Queue.create_job`` (every way of enqueueing goes through it): the job's
  ``meta["spanline"]`` gets ``traceparent``/``tracestate``/``baggage`` and the
  :func:`spanline.dump` payload (actor and frames) of the span that enqueues;
* ``Job.perform`` (the worker's call of the job function): that entry is taken out
  of ``job.meta`` while the function runs -- neither the function nor
  ``get_current_job().meta`` sees it; it is put back afterwards so a retry or a
  requeue continues the same trace -- the trace is continued, and a CONSUMER span
  ``process <function>`` (child of the enqueuing span; ``messaging.system=rq``,
  ``messaging.destination.name`` = the queue, ``messaging.message.id`` = the job
  id, ERROR with the exception when the function raises) runs the function.

RQ's default worker forks a work horse per job and ends it with ``os._exit``, which
skips exit handlers: in a forked horse the ``process`` span's processors are flushed
(at most ``FLUSH_TIMEOUT_MS``) before the job returns.  ``uninstall()`` restores
both methods.  Tracing failures are logged (rate-limited) and never reach the job.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from rq.job import Job
from rq.queue import Queue

from spanline._log import report
from spanline.core.pipeline import PIPELINE
from spanline.core.span import Span, SpanKind
from spanline.jobs.message import continue_message, message_context

__all__ = ["FLUSH_TIMEOUT_MS", "META_KEY", "install", "uninstall"]

META_KEY = "spanline"
FLUSH_TIMEOUT_MS = 5000

_lock = threading.Lock()
_originals: dict[str, Callable[..., Any]] = {}
_installed_pid = 0


def _wrap_create(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def create_job(self: Any, *args: Any, **kwargs: Any) -> Any:
        job = original(self, *args, **kwargs)
        try:
            entries = message_context()
            if entries:
                # a new dict: the caller's own meta= mapping is left untouched
                job.meta = {**(job.meta or {}), META_KEY: entries}
        except Exception as error:  # noqa: BLE001 - tracing never breaks the app
            report("rq-enqueue", "spanline: rq create_job: could not inject: %r", error)
        return job

    return create_job


def _take(job: Any) -> Any:
    """Remove spanline's entry from ``job.meta`` (the function must not see it)."""
    meta = job.meta
    return meta.pop(META_KEY, None) if isinstance(meta, dict) else None


def _put_back(job: Any, entries: Any) -> None:
    """Return the entry once the function is done: what RQ saves of the job keeps it,
    so a retry or a requeue continues the same trace."""
    if entries is not None and isinstance(job.meta, dict):
        job.meta.setdefault(META_KEY, entries)


def _process_span(job: Any, entries: Any) -> tuple[Any, Span]:
    boundary = continue_message(entries) if isinstance(entries, Mapping) else None
    attributes: dict[str, Any] = {
        "messaging.system": "rq",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.message.id": str(job.id),
    }
    if job.origin:
        attributes["messaging.destination.name"] = str(job.origin)
    span = Span(f"process {job.func_name}", kind=SpanKind.CONSUMER, attributes=attributes)
    return boundary if boundary is not None else contextlib.nullcontext(), span


def _flush_if_forked() -> None:
    if os.getpid() == _installed_pid:
        return
    try:
        PIPELINE.force_flush(FLUSH_TIMEOUT_MS)
    except Exception as error:  # noqa: BLE001 - tracing never breaks the app
        report("rq-flush", "spanline: rq work horse: flushing spans failed: %r", error)


def _wrap_perform(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def perform(self: Any) -> Any:
        entries = None
        try:
            entries = _take(self)
            boundary, span = _process_span(self, entries)
        except Exception as error:  # noqa: BLE001 - tracing never breaks the app
            report("rq-perform", "spanline: rq perform: could not continue the trace: %r", error)
            _put_back(self, entries)
            return original(self)
        try:
            with boundary, span:
                return original(self)
        finally:
            try:
                _put_back(self, entries)
            finally:
                _flush_if_forked()

    return perform


_TARGETS: list[tuple[type[Any], str, Callable[[Callable[..., Any]], Callable[..., Any]]]] = [
    (Queue, "create_job", _wrap_create),
    (Job, "perform", _wrap_perform),
]


def install() -> None:
    """Wrap ``Queue.create_job`` and ``Job.perform`` (twice: no change)."""
    global _installed_pid
    with _lock:
        if _originals:
            return
        _installed_pid = os.getpid()
        for owner, name, wrap in _TARGETS:
            original = owner.__dict__[name]
            _originals[name] = original
            setattr(owner, name, wrap(original))


def uninstall() -> None:
    """Restore ``Queue.create_job`` and ``Job.perform``."""
    with _lock:
        for owner, name, _ in _TARGETS:
            original = _originals.pop(name, None)
            if original is not None:
                setattr(owner, name, original)
