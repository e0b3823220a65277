"""Operations and job functions for the Celery and RQ tests.

The test process and the real worker processes both import this module.  In a
worker, :func:`setup_worker` (called by ``tests/celery_app.py`` and
``tests/rq_settings.py``) exports every finished span to the JSON-lines file named by
``SPANLINE_TEST_SPANS``, which the test reads back.
"""

from __future__ import annotations

import os
from typing import Any

import spanline
from spanline import Operation
from spanline.export import BatchSpanProcessor, JsonLinesExporter

SPANS_FILE = "SPANLINE_TEST_SPANS"


def setup_worker() -> bool:
    """In a test worker: export spans to the file the test reads; ``False`` elsewhere."""
    path = os.environ.get(SPANS_FILE)
    if not path:
        return False
    spanline.tracer.add_processor(
        BatchSpanProcessor(JsonLinesExporter(path), schedule_delay_millis=50)
    )
    return True


def seen() -> dict[str, Any]:
    """What the running code sees of its trace."""
    return {
        "trace_id": spanline.trace_id(),
        "actor": spanline.actor(),
        "frames": spanline.frames(),
        "trace_string": spanline.trace_string(),
    }


class SendConfirmation(Operation):
    """Runs in the worker; returns its params and what it sees of the trace."""

    order_id: int

    def perform(self) -> dict[str, Any]:
        spanline.record("order_id", self.order_id)
        return {"params": self.params, **seen()}


class AsyncConfirmation(Operation):
    """An ``async`` operation run by a job."""

    order_id: int

    async def perform(self) -> dict[str, Any]:
        return {"params": self.params, **seen()}


class PlaceOrder(Operation):
    """Enqueues ``SendConfirmation`` from inside its own frame; returns the handle."""

    order_id: int

    def perform(self) -> Any:
        return SendConfirmation(order_id=self.order_id).enqueue()


class Explode(Operation):
    """Fails in the worker."""

    def perform(self) -> None:
        raise ValueError("confirmation service is down")


def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """A plain job function: returns exactly the arguments it was given (and, under
    RQ, its job's ``meta`` as the function sees it)."""
    from rq import get_current_job

    job = get_current_job()
    meta = None if job is None else dict(job.meta)
    return {"args": list(args), "kwargs": kwargs, "meta": meta, **seen()}


def flaky(key: str) -> int:
    """An RQ job function that fails on its first attempt (counted in Redis)."""
    from rq import get_current_job

    job = get_current_job()
    assert job is not None
    attempt = int(job.connection.incr(key))
    if attempt == 1:
        raise RuntimeError("first attempt fails")
    return attempt


def fail(reason: str) -> None:
    """A plain job function that raises."""
    raise RuntimeError(reason)
