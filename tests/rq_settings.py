"""Settings for the RQ tests' worker, ``rq worker -c tests.rq_settings``: Redis
database 8, and spanline instrumented before the worker starts (the way an
application's worker settings module would do it)."""

from __future__ import annotations

import spanline
from tests import jobs_app

REDIS_URL = "redis://127.0.0.1:6379/8"

if jobs_app.setup_worker():
    spanline.instrument("rq")
