"""Real worker processes for the Celery and RQ tests, and the spans they export.

A worker is started as a subprocess with ``SPANLINE_TEST_SPANS`` pointing at a
JSON-lines file (see ``tests/jobs_app.py``); :meth:`WorkerProcess.spans` waits until
the worker has written the expected spans of one trace, then returns them.  The wait
has a deadline only so a broken worker fails the test instead of hanging it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tests.jobs_app import SPANS_FILE

ROOT = Path(__file__).resolve().parent.parent
DEADLINE_S = 60.0


class WorkerProcess:
    """A worker subprocess whose spans go to ``spans_path`` and output to ``log_path``."""

    def __init__(self, command: Sequence[str], directory: Path) -> None:
        self.spans_path = directory / "worker-spans.jsonl"
        self.log_path = directory / "worker.log"
        env = {
            **os.environ,
            SPANS_FILE: str(self.spans_path),
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "PYTHONWARNINGS": "ignore",
        }
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            list(command), cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def log(self) -> str:
        """What the worker printed so far."""
        return self.log_path.read_text(errors="replace")

    def records(self) -> list[dict[str, Any]]:
        """Every span the worker exported so far."""
        if not self.spans_path.exists():
            return []
        lines = self.spans_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def _wait(self, what: str, found: Callable[[], bool]) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while not found():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(
                    f"worker did not export {what}\n--- worker log\n{self.log()[-4000:]}"
                )
            time.sleep(0.05)

    def spans(self, w3c_trace_id: str | None, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The worker's spans of one trace, by name, once all of ``names`` are there."""
        found: dict[str, dict[str, Any]] = {}

        def complete() -> bool:
            found.clear()
            found.update(
                (r["name"], r) for r in self.records() if r["w3c_trace_id"] == w3c_trace_id
            )
            return all(name in found for name in names)

        self._wait(f"{list(names)} for trace {w3c_trace_id}", complete)
        return found

    def all_named(self, w3c_trace_id: str | None, name: str, count: int) -> list[dict[str, Any]]:
        """The worker's ``count`` spans called ``name`` in one trace, in end order."""
        found: list[dict[str, Any]] = []

        def complete() -> bool:
            found[:] = [
                r for r in self.records() if r["w3c_trace_id"] == w3c_trace_id and r["name"] == name
            ]
            return len(found) >= count

        self._wait(f"{count} x {name!r} for trace {w3c_trace_id}", complete)
        return found

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL if it does not exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()


def python_tool(module: str, *args: str) -> list[str]:
    """``python -m <module> <args>`` with the test interpreter."""
    return [sys.executable, "-m", module, *args]
