"""The worker's side: :func:`run_job` runs a job as a continuation of its trace."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Mapping
from typing import Any

from spanline.core.carrier import restore
from spanline.core.context import current
from spanline.core.operation import Operation
from spanline.jobs.job import parse

__all__ = ["run_job"]


def _call(cls: type[Operation], params: dict[str, Any]) -> Any:
    if inspect.iscoroutinefunction(cls.perform):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(cls(**params).call())
        raise RuntimeError(
            f"run_job runs async {cls.__qualname__} with asyncio.run(); call it from "
            "a worker thread, not inside a running event loop"
        )
    return cls(**params).call()


def _continues_here(trace: object) -> bool:
    """The current context already continues ``trace`` (a queue integration restored
    it from the message and opened its ``process`` span), or there is nothing to
    restore while a trace is running."""
    node = current.get()
    if node is None:
        return False
    if trace is None:
        return True
    return isinstance(trace, Mapping) and trace.get("trace_id") == node._trace.text


def run_job(job: object) -> Any:
    """Run a job made by ``Operation.enqueue()`` and return the operation's result.

    ``job`` is the payload dict (or its JSON text).  The operation runs in the
    enqueuer's trace: same trace id, same actor, the enqueuing operation's frame as
    its parent (from ``job["trace"]``, see :func:`spanline.restore`).  When a queue
    integration (``spanline.instrument("celery")`` / ``("rq")``) has already
    continued that trace, the operation runs inside its ``process`` span instead.

    Safety: a malformed, oversized or (with ``payload_secret``) unsigned or altered
    job raises :class:`~spanline.jobs.InvalidJobError` before anything is imported.
    Otherwise only the module the job names is imported, and only an
    :class:`~spanline.Operation` subclass found there is run, with JSON params that
    may not replace its methods.  A malformed trace never stops the job (it runs in
    a fresh trace; a warning says why).  The operation's own exceptions pass through.
    """
    cls, params, trace = parse(job)
    if _continues_here(trace):
        return _call(cls, params)
    with restore(trace):
        return _call(cls, params)
