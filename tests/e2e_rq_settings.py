"""Settings for the two-service end-to-end test's worker, ``rq worker -c
tests.e2e_rq_settings``: Redis database 9, and spanline (RQ, psycopg and Redis)
instrumented before the worker starts, spans exported to the test's JSON-lines file."""

from __future__ import annotations

import spanline
from tests import jobs_app

REDIS_URL = "redis://127.0.0.1:6379/9"

if jobs_app.setup_worker():
    spanline.instrument("rq", "psycopg", "redis")
