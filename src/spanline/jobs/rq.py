"""RQ as a job backend: each job is an RQ job calling :func:`spanline.jobs.run_job`.

Producer::

    from redis import Redis
    from rq import Queue
    import spanline.jobs
    from spanline.jobs.rq import RQBackend

    spanline.jobs.use(RQBackend(Queue("orders", connection=Redis())))

Worker: a plain ``rq worker orders`` with the application importable.  RQ stores
jobs with its queue's serializer -- pickle by default, which runs code on load: only
let trusted processes write to that Redis, or give the queue
``serializer=rq.serializers.JSONSerializer`` (jobs are JSON-safe).
"""

from __future__ import annotations

from typing import Any

from rq import Queue

from spanline.jobs.runner import run_job

__all__ = ["RQBackend"]


class RQBackend:
    """Enqueue jobs on an RQ :class:`~rq.Queue` (thread-safe as the queue is)."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    def submit(self, job: dict[str, Any], **options: Any) -> Any:
        """``queue.enqueue_call(run_job, args=(job,), **options)``; the RQ job's
        description names the operation (RQ's default would print the params)."""
        options.setdefault("description", f"spanline job {job.get('operation')}")
        return self.queue.enqueue_call(run_job, args=(job,), **options)
