"""Background jobs: run an operation later, in a worker, inside the same trace.

``SendConfirmation(order_id=1).enqueue()`` turns the operation into a job -- its
``module:QualName``, its constructor params (JSON-safe, checked now) and the current
trace (:func:`spanline.dump`) -- and hands it to the backend chosen with
:func:`use`.  The worker calls :func:`run_job`, which restores the trace and runs the
operation: same trace id, same actor, the enqueuing operation's frame as its parent,
minutes later and in another process.

Backends (``submit(job, **options)``, see :class:`JobBackend`):

* :class:`spanline.jobs.rq.RQBackend` -- an RQ queue;
* :class:`spanline.jobs.celery.CeleryBackend` -- a Celery app (registers the
  ``spanline.run_job`` task);
* :class:`InlineBackend` -- no queue: runs the job at once (tests, scripts).

Only :class:`~spanline.Operation` subclasses run as jobs; see :func:`run_job` for
what a hostile payload can and cannot do, and sign jobs with
``configure(payload_secret=...)`` when anything but your own code can write to the
queue.  The RQ and Celery modules import their library; this package does not.
"""

from __future__ import annotations

from spanline.jobs.backend import JobBackend, active_backend, use
from spanline.jobs.inline import InlineBackend
from spanline.jobs.job import InvalidJobError
from spanline.jobs.runner import run_job

__all__ = ["InlineBackend", "InvalidJobError", "JobBackend", "active_backend", "run_job", "use"]
