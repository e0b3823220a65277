"""Threads, thread pools and process pools continue the trace they were started in.

``spanline.instrument("threads")`` wraps three methods of the standard library (the
application's code is not touched); ``spanline.uninstrument("threads")`` puts the
originals back:

* ``threading.Thread.start`` -- the thread's ``run()`` runs in a copy of the context
  that was current when ``start()`` was called, so spans opened in the thread are
  children of the span that started it: same trace, same actor, same frames.  This
  covers subclasses that override ``run()`` and ``threading.Timer``.
* ``concurrent.futures.ThreadPoolExecutor.submit`` -- the callable runs in a copy of
  the submitter's context.  ``executor.map`` and ``loop.run_in_executor`` submit from
  the caller's context, so they are covered too.
* ``concurrent.futures.ProcessPoolExecutor.submit`` -- a context cannot be pickled, so
  the job payload form is used: :func:`spanline.dump` at submit, and in the worker
  process ``with spanline.restore(payload): fn(*args, **kwargs)``.  The worker has its
  own pipeline (its processors are the ones its environment configures): its spans
  carry the submitter's trace id, actor and frames, and their parent is the span that
  submitted the job.  With ``configure(payload_secret=...)`` the payload is signed; a
  worker that does not know the secret (``spawn``: settings come from its
  environment) runs the job in a fresh trace and logs why.

``asyncio.to_thread`` needs nothing: it already runs the function in a copy of the
caller's context (``contextvars.copy_context``), with or without this integration.

**Why the context is taken at** ``start()`` **and not at** ``Thread.__init__``: the
thread's work begins at ``start()``, and that is where its parent is running.  A thread
object is often built ahead of time (in a constructor, at import) and started later
inside a request; captured at ``__init__`` it would miss that request, or hang off a
span that had already ended.  Python 3.14's ``Thread(context=...)`` and
``-X thread_inherit_context`` take the context at ``start()`` for the same reason.
On 3.14, when the thread already runs in a context of its own (``context=`` was given,
or the interpreter copied the caller's), that context wins and only the variables it
lacks are added from the one taken at ``start()``.

Outside any trace every wrapper calls the original at once: nothing is copied, no
payload is built, the callable is submitted unchanged.  The worker threads and
processes a pool starts for itself never keep the trace of the job that made them
start: they serve later jobs too.  An exception raised by the work reaches the
``Future`` (or, in a thread, ``threading.excepthook``) unchanged; a failure inside
spanline's own wrapping is logged (rate-limited) and the work runs untraced.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import functools
import threading
from collections.abc import Callable
from typing import Any

from spanline._log import report
from spanline.core.carrier import dump, restore
from spanline.core.context import current

__all__ = ["install", "uninstall"]

_lock = threading.Lock()
_originals: dict[tuple[type, str], Any] = {}

_pool_starting: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "spanline_pool_starting", default=False
)
"""True while a pool's own ``submit`` runs, so worker threads it starts stay untraced."""

_MISSING = object()


# -- threading.Thread ----------------------------------------------------------------------


def _run_in(captured: contextvars.Context, run: Callable[[], object]) -> None:
    """Call ``run`` in ``captured``; when the running context is not empty (Python 3.14
    ``Thread(context=...)`` or ``thread_inherit_context``), keep it and add only the
    variables it does not have."""
    running = contextvars.copy_context()
    if not len(running):  # a new thread's context is empty (always, before Python 3.14)
        captured.run(run)
        return
    added: list[tuple[contextvars.ContextVar[Any], contextvars.Token[Any]]] = [
        (var, var.set(value)) for var, value in captured.items() if var not in running
    ]
    try:
        run()
    finally:
        for var, token in reversed(added):
            var.reset(token)


class _ContextRun:
    """Stands in for one started thread's ``run`` (an instance attribute, so subclasses
    that override ``run()`` are covered); removes itself when the thread finishes."""

    __slots__ = ("_captured", "_previous", "_run", "_thread")

    def __init__(self, thread: threading.Thread, captured: contextvars.Context) -> None:
        self._thread = thread
        self._captured = captured
        self._run: Callable[[], object] = thread.run
        self._previous = vars(thread).get("run", _MISSING)

    def __call__(self) -> None:
        try:
            _run_in(self._captured, self._run)
        finally:
            self.detach()

    def detach(self) -> None:
        """Put back what ``thread.run`` was (this also breaks the thread -> stand-in ->
        thread reference cycle)."""
        attributes = vars(self._thread)
        if attributes.get("run") is self:
            if self._previous is _MISSING:
                del attributes["run"]
            else:
                attributes["run"] = self._previous


def _startable(thread: threading.Thread) -> bool:
    """False when ``start()`` is bound to fail: the thread was started already, or
    ``Thread.__init__`` never ran (then even reading ``ident`` fails)."""
    try:
        return thread.ident is None
    except Exception:  # noqa: BLE001 - AssertionError, or AttributeError under -O
        return False


def _wrap_start(original: Callable[[threading.Thread], None]) -> Callable[..., None]:
    @functools.wraps(original)
    def start(self: threading.Thread) -> None:
        if current.get() is None or _pool_starting.get():
            return original(self)
        if not _startable(self):  # the original raises its usual error
            return original(self)
        runner: _ContextRun | None = None
        try:
            runner = _ContextRun(self, contextvars.copy_context())
            vars(self)["run"] = runner
        except Exception as error:  # noqa: BLE001 - tracing never breaks the app
            _failed("Thread.start", error)
        try:
            return original(self)
        except BaseException:
            if runner is not None:  # the thread never ran
                runner.detach()
            raise

    return start


# -- concurrent.futures --------------------------------------------------------------------


def _cross_interpreter() -> tuple[type, ...]:
    # Python 3.14's InterpreterPoolExecutor is a ThreadPoolExecutor whose callables
    # cross into another interpreter, where no context of ours can go.
    pool = getattr(concurrent.futures, "InterpreterPoolExecutor", None)
    return (pool,) if isinstance(pool, type) else ()


_SKIP: tuple[type, ...] = _cross_interpreter()


def _wrap_thread_submit(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def submit(self: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        if current.get() is None or isinstance(self, _SKIP):
            return original(self, fn, *args, **kwargs)
        try:
            # one copy per job: each job runs once, so it needs no copy of its own
            job: Callable[..., Any] = functools.partial(contextvars.copy_context().run, fn)
        except Exception as error:  # noqa: BLE001 - tracing never breaks the app
            _failed("ThreadPoolExecutor.submit", error)
            job = fn
        # The pool may start a worker thread now; it must not keep this job's trace.
        token = _pool_starting.set(True)
        try:
            return original(self, job, *args, **kwargs)
        finally:
            _pool_starting.reset(token)

    return submit


def _call_restored(payload: object, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """In the worker process: run ``fn`` in the trace ``payload`` carries (picklable:
    a module-level function)."""
    with restore(payload):
        return fn(*args, **kwargs)


def _wrap_process_submit(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def submit(self: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        if current.get() is None:
            return original(self, fn, *args, **kwargs)
        try:
            payload = dump()
        except Exception as error:  # noqa: BLE001 - tracing never breaks the app
            _failed("ProcessPoolExecutor.submit", error)
            payload = None
        # Submitting may start the pool's manager thread and fork its workers; run it
        # in an empty context so that they (and the jobs they serve later, outside any
        # trace) never inherit this job's trace.
        empty = contextvars.Context()
        if payload is None:
            return empty.run(original, self, fn, *args, **kwargs)
        return empty.run(original, self, _call_restored, payload, fn, *args, **kwargs)

    return submit


# -- install / uninstall -------------------------------------------------------------------

_TARGETS: list[tuple[type, str, Callable[[Any], Callable[..., Any]]]] = [
    (threading.Thread, "start", _wrap_start),
    (concurrent.futures.ThreadPoolExecutor, "submit", _wrap_thread_submit),
    (concurrent.futures.ProcessPoolExecutor, "submit", _wrap_process_submit),
]


def install() -> None:
    """Wrap ``Thread.start`` and the pools' ``submit`` (a second call does nothing)."""
    with _lock:
        if _originals:
            return
        for owner, name, wrapper in _TARGETS:
            original = owner.__dict__[name]
            _originals[(owner, name)] = original
            setattr(owner, name, wrapper(original))


def uninstall() -> None:
    """Put the original methods back (nothing happens if not installed).

    Threads and jobs already started keep the context they were given.
    """
    with _lock:
        for (owner, name), original in _originals.items():
            setattr(owner, name, original)
        _originals.clear()


def _failed(where: str, error: Exception) -> None:
    report(
        f"threads:{where}",
        "spanline: could not carry the trace into %s (the work runs untraced): %r",
        where,
        error,
        level=30,
    )
