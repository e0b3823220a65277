"""The Celery app of the Celery tests: Redis database 7 is broker and result backend.

Imported by the test process (to send tasks) and by the real worker started with
``celery -A tests.celery_app worker``; only the worker (``setup_worker()`` is true
there) instruments Celery at import, as an application would.
"""

from __future__ import annotations

from typing import Any

from celery import Celery  # type: ignore[import-untyped]

import spanline
from spanline.jobs.celery import register
from tests import jobs_app

BROKER = "redis://127.0.0.1:6379/7"

app = Celery("spanline_tests", broker=BROKER, backend=BROKER, set_as_current=False)
app.conf.update(
    broker_connection_retry_on_startup=True,
    accept_content=["json"],
    task_serializer="json",
    result_serializer="json",
    result_expires=600,
    worker_hijack_root_logger=False,
)
register(app)


@app.task(name="tests.echo", bind=True)  # type: ignore[untyped-decorator]
def echo(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Returns its arguments, whether the request still holds spanline's header, and
    what it sees of the trace."""
    request = self.request
    return {
        **jobs_app.echo(*args, **kwargs),
        "request_has_payload": hasattr(request, "spanline")
        or "spanline" in (request.headers or {}),
    }


@app.task(name="tests.fail")  # type: ignore[untyped-decorator]
def fail(reason: str) -> None:
    """Raises."""
    jobs_app.fail(reason)


if jobs_app.setup_worker():
    spanline.instrument("celery")
