"""The parts of the two-service end-to-end test (``tests/test_e2e_services.py``).

* service A: a Starlette app (run by uvicorn) whose handler calls service B over
  ``httpx`` with an ``Authorization`` header;
* service B: a WSGI app whose handler runs :class:`AcceptVisit`, which enqueues
  :class:`RecordVisit`;
* :class:`RecordVisit` runs in a real ``rq worker`` and writes to PostgreSQL and
  Redis.

The worker imports this module (to find :class:`RecordVisit`), so it holds no state.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import psycopg
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import spanline
from spanline import Operation
from spanline.integrations.wsgi import set_route

DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"
REDIS_URL = "redis://127.0.0.1:6379/9"

# The three secrets that must never reach a span.
TOKEN = "tok-e2e-7f3a9c1d-never-exported"
EMAIL = "visitor-e2e-51b2@example.com"
REDIS_VALUE = "session-e2e-c0ffee-never-exported"


class RecordVisit(Operation):
    """In the worker: one INSERT (the email is a SQL parameter) and one Redis SET (the
    value is secret)."""

    table: str
    key: str
    visit_id: int
    email: str
    session: str

    def perform(self) -> dict[str, Any]:
        spanline.record("visit_id", self.visit_id)
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(
                f"INSERT INTO {self.table} (id, email) VALUES (%s, %s)",
                (self.visit_id, self.email),
            )
        client = redis.Redis.from_url(REDIS_URL)
        try:
            client.set(self.key, self.session)
        finally:
            client.close()
        return {"trace_id": spanline.trace_id(), "actor": spanline.actor()}


class AcceptVisit(Operation):
    """In service B: hands the visit to the worker; returns the RQ job's id."""

    table: str
    key: str
    visit_id: int

    def perform(self) -> str:
        job = RecordVisit(
            table=self.table,
            key=self.key,
            visit_id=self.visit_id,
            email=EMAIL,
            session=REDIS_VALUE,
        ).enqueue()
        return str(job.id)


def service_b(table: str, key: str) -> Callable[..., Iterable[bytes]]:
    """The WSGI app of service B (wrap it in ``SpanlineMiddleware``)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("HTTP_AUTHORIZATION") != f"Bearer {TOKEN}":
            start_response("401 Unauthorized", [("Content-Type", "text/plain")])
            return [b"unauthorized"]
        path = str(environ.get("PATH_INFO", ""))
        set_route(environ, "/visits/{id}")
        job_id = AcceptVisit(table=table, key=key, visit_id=int(path.rsplit("/", 1)[1])).call()
        start_response("202 Accepted", [("Content-Type", "application/json")])
        return [json.dumps({"job": job_id}).encode()]

    return app


def service_a(b_url: str) -> Starlette:
    """The ASGI app of service A (wrap it in ``SpanlineASGIMiddleware``)."""

    async def visit(request: Request) -> JSONResponse:
        visit_id = int(request.path_params["id"])
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(
                f"{b_url}/visits/{visit_id}", headers={"Authorization": f"Bearer {TOKEN}"}
            )
        return JSONResponse({"b_status": response.status_code, **response.json()})

    return Starlette(routes=[Route("/visits/{id}", visit, methods=["POST"])])
