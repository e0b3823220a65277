"""Celery as a job backend: one task, ``spanline.run_job``, runs every job.

In the module that creates the Celery app (imported by producers and workers)::

    import spanline.jobs
    from spanline.jobs.celery import CeleryBackend

    app = Celery("shop", broker="redis://localhost:6379/0")
    spanline.jobs.use(CeleryBackend(app, queue="orders"))

Creating the backend registers the task on ``app``, so a worker started with
``celery -A shop worker -Q orders`` knows it.  Jobs are JSON-safe, so Celery's
default JSON serializer carries them.
"""

from __future__ import annotations

from typing import Any

from spanline.jobs.runner import run_job

__all__ = ["TASK_NAME", "CeleryBackend", "register"]

TASK_NAME = "spanline.run_job"


def register(app: Any) -> Any:
    """Register the ``spanline.run_job`` task on ``app`` (again: no change); returns it."""
    return app.task(name=TASK_NAME, shared=False)(run_job)


class CeleryBackend:
    """Send jobs as ``spanline.run_job`` tasks of ``app``, to ``queue`` (default: the
    app's routing) unless ``enqueue(queue=...)`` says otherwise."""

    def __init__(self, app: Any, *, queue: str | None = None) -> None:
        self.app = app
        self.queue = queue
        register(app)

    def submit(self, job: dict[str, Any], **options: Any) -> Any:
        """``app.send_task("spanline.run_job", args=(job,), **options)``.  The task's
        ``argsrepr`` (what logs and monitors show) names the operation, not the params."""
        if self.queue is not None:
            options.setdefault("queue", self.queue)
        options.setdefault("argsrepr", f"(<job {job.get('operation')}>,)")
        return self.app.send_task(TASK_NAME, args=(job,), **options)
