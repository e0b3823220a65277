"""A long-lived thread that runs one call at a time for a caller who waits on it
with a deadline, and can walk away from a call that overruns.

The batch processor hands each ``export`` to one of these instead of starting a
thread per batch: starting, handshaking with and joining a thread per batch cost its
worker about 0.2 ms of CPU per batch on a busy server (``bench/bench_asgi.py``,
64-span batches).  A call that never returns keeps its runner busy; the caller sees
:meth:`busy` and starts no other call there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from spanline._log import report

__all__ = ["CallRunner"]


class CallRunner:
    """Runs ``submit``-ted calls one at a time on its own daemon thread."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._idle = threading.Event()
        self._idle.set()
        self._call: Callable[[], None] | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None

    def busy(self) -> bool:
        """Whether a call is still running (or waiting to run)."""
        return not self._idle.is_set()

    def submit(self, call: Callable[[], None]) -> None:
        """Run ``call`` on the runner's thread (an exception it raises is logged).

        The runner must be idle: a second call while one runs is a programming error.
        """
        with self._lock:
            if not self._idle.is_set():
                raise RuntimeError(f"{self._name}: a call is still running")
            self._idle.clear()
            self._call = call
            if self._thread is None:  # the first call, or the first since stop()
                self._stopping = False
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._work.notify()

    def wait(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the current call; ``True`` once it returned."""
        return self._idle.wait(max(0.0, timeout_s))

    def stop(self) -> None:
        """Let the thread end once it is idle (a call still running finishes first);
        a later :meth:`submit` starts a new one."""
        with self._lock:
            self._stopping = True
            self._work.notify()

    def _loop(self) -> None:
        while True:
            with self._lock:
                while self._call is None and not self._stopping:
                    self._work.wait()
                call, self._call = self._call, None
                if call is None:  # stopping, nothing left to run
                    self._thread = None
                    return
            try:
                call()
            except Exception as error:  # noqa: BLE001 - callers wrap theirs; never die
                report(
                    f"runner:{self._name}",
                    "spanline: a call on %s raised %r (the runner carries on)",
                    self._name,
                    error,
                    exc_info=error,
                )
            finally:
                self._idle.set()
