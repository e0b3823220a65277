"""Where ``Operation.enqueue()`` sends jobs: a pluggable :class:`JobBackend`.

A backend is any object with ``submit(job, **options)``: it puts the job (a JSON-safe
dict, see :mod:`spanline.jobs.job`) on a queue, returns whatever its queue library
returns (an RQ ``Job``, a Celery ``AsyncResult``), and raises when the queue refuses
it.  spanline ships :class:`~spanline.jobs.rq.RQBackend`,
:class:`~spanline.jobs.celery.CeleryBackend` and
:class:`~spanline.jobs.inline.InlineBackend`.

The application chooses one once, at start-up, with :func:`use`; a single call can
pick another with ``enqueue(backend=...)``.  Options given to ``enqueue(**options)``
go to ``submit`` unchanged (``queue=``/``countdown=`` for Celery, ``job_timeout=``,
``at_front=`` … for RQ).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from spanline.jobs.job import build

if TYPE_CHECKING:
    from spanline.core.operation import Operation

__all__ = ["JobBackend", "active_backend", "enqueue", "use"]


class JobBackend(Protocol):
    """Puts jobs on a queue.  ``submit`` may be called from any thread at once;
    it must not keep a reference to ``job`` after returning (the caller may not
    either: the dict is the backend's to serialize)."""

    def submit(self, job: dict[str, Any], **options: Any) -> Any:
        """Queue ``job`` for a worker that will call :func:`spanline.jobs.run_job`
        on it; return the queue library's handle for it."""
        ...


_backend: JobBackend | None = None


def use(backend: JobBackend | None) -> JobBackend | None:
    """Make ``backend`` the one ``Operation.enqueue()`` uses; ``None`` unsets it.
    Returns the previous backend (so a test can put it back)."""
    global _backend
    if backend is not None and not callable(getattr(backend, "submit", None)):
        raise TypeError(f"a job backend needs a submit() method; {backend!r} has none")
    previous, _backend = _backend, backend
    return previous


def active_backend() -> JobBackend | None:
    """The backend set with :func:`use`, or ``None``."""
    return _backend


def enqueue(
    operation: Operation, backend: JobBackend | None = None, options: dict[str, Any] | None = None
) -> Any:
    """Build ``operation``'s job and hand it to ``backend`` (default: the one set with
    :func:`use`).  Raises ``RuntimeError`` when there is no backend, ``TypeError``
    naming a param JSON cannot carry; the backend's own errors pass through."""
    target = backend if backend is not None else _backend
    if target is None:
        raise RuntimeError(
            f"cannot enqueue {type(operation).__qualname__}: no job backend; call "
            "spanline.jobs.use(...) at start-up (e.g. with RQBackend(queue) or "
            "CeleryBackend(app)) or pass enqueue(backend=...)"
        )
    return target.submit(build(operation), **(options or {}))
