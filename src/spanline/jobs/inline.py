"""A backend without a queue: runs each job at once, for tests and scripts."""

from __future__ import annotations

import json
from typing import Any

from spanline.jobs.runner import run_job

__all__ = ["InlineBackend"]


class InlineBackend:
    """Runs each job immediately in the calling thread, after a JSON round trip (so
    what would not survive a real queue fails here too), and returns its result.

    The operation then runs inside the enqueuer's trace, under the span that
    enqueued it -- as the worker would, minus the wait.
    """

    def submit(self, job: dict[str, Any], **options: Any) -> Any:
        """Run ``job`` now; no options are accepted (there is no queue to tune)."""
        if options:
            raise TypeError(f"InlineBackend takes no options, got {sorted(options)}")
        return run_job(json.loads(json.dumps(job)))
