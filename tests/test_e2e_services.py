"""End to end across two services and a worker: one trace, every span in its place.

Everything is real, on 127.0.0.1: service A is a Starlette app under uvicorn behind
``SpanlineASGIMiddleware``; its handler calls service B (a WSGI app under wsgiref
behind ``SpanlineMiddleware``) over an instrumented ``httpx`` client with an
``Authorization`` header; B's handler runs an operation that enqueues another one on
RQ (Redis database 9); a real ``rq worker --burst`` process runs it, and it writes to
PostgreSQL (database ``test``) and Redis.  A's and B's spans are captured in this
process, the worker's come back from its JSON-lines file.

The request arrives at A the way it would from a trusted gateway that authenticated
user 42: with a ``traceparent`` and the actor in ``baggage``, which A takes only
because it is built with ``trust_actor=True``.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import psycopg
import pytest
import redis
import uvicorn
from rq import Queue
from rq.serializers import JSONSerializer

import spanline
import spanline.jobs
from spanline import SpanKind
from spanline.export.record import span_record
from spanline.integrations.asgi import SpanlineASGIMiddleware
from spanline.integrations.wsgi import SpanlineMiddleware
from spanline.jobs.rq import RQBackend
from spanline.testing import Capture
from tests import e2e_services_app as services
from tests.job_workers import WorkerProcess, python_tool
from tests.receiver import free_port

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
ACTOR = {"type": "user", "id": "42"}
SECRETS = (services.TOKEN, services.EMAIL, services.REDIS_VALUE)
WORKER_TIMEOUT_S = 60


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


@dataclass
class Setup:
    a_url: str
    queue: Queue
    table: str
    key: str


@pytest.fixture
def table() -> Iterator[str]:
    name = f"spanline_e2e_visits_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(services.DSN, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {name} (id int, email text)")
        try:
            yield name
        finally:
            conn.execute(f"DROP TABLE {name}")


@pytest.fixture
def connection() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(services.REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def setup(table: str, connection: redis.Redis, spanline_capture: Capture) -> Iterator[Setup]:
    name = f"spanline-e2e-{uuid.uuid4().hex}"
    key = f"spanline-e2e:{uuid.uuid4().hex}"
    queue = Queue(name, connection=connection, serializer=JSONSerializer)
    previous = spanline.jobs.use(RQBackend(queue))
    spanline.instrument("httpx", "rq")

    b_server: WSGIServer = make_server(
        "127.0.0.1",
        0,
        SpanlineMiddleware(services.service_b(table, key), trust_actor=True),
        handler_class=QuietHandler,
    )
    b_thread = threading.Thread(target=b_server.serve_forever, daemon=True)
    b_thread.start()

    port = free_port()
    app = services.service_a(f"http://127.0.0.1:{b_server.server_port}")
    config = uvicorn.Config(
        SpanlineASGIMiddleware(app, trust_actor=True),
        host="127.0.0.1",
        port=port,
        log_level="critical",
        lifespan="off",
    )
    a_server = uvicorn.Server(config)
    a_thread = threading.Thread(target=a_server.run, daemon=True)
    a_thread.start()
    for _ in range(500):
        if a_server.started:
            break
        time.sleep(0.01)
    try:
        yield Setup(f"http://127.0.0.1:{port}", queue, table, key)
    finally:
        a_server.should_exit = True
        a_thread.join(10)
        b_server.shutdown()
        b_server.server_close()
        spanline.uninstrument("httpx", "rq")
        spanline.jobs.use(previous)
        queue.delete(delete_jobs=True)
        connection.delete(key)


def run_worker(queue: Queue, directory: Any) -> list[dict[str, Any]]:
    """A real ``rq worker --burst``: runs what is queued, then exits; its spans."""
    worker = WorkerProcess(
        python_tool(
            "rq.cli",
            "worker",
            "--burst",
            "-c",
            "tests.e2e_rq_settings",
            "--serializer",
            "rq.serializers.JSONSerializer",
            "--name",
            queue.name,
            queue.name,
        ),
        directory,
    )
    try:
        code = worker.process.wait(WORKER_TIMEOUT_S)
    finally:
        worker.stop()
    assert code == 0, worker.log()[-4000:]
    return worker.records()


def ended(capture: Capture, kind: SpanKind, count: int) -> list[spanline.Span]:
    """The captured spans of ``kind`` once ``count`` have ended (a server span ends
    just after its response has gone out)."""
    for _ in range(500):
        found = [s for s in capture.spans if s.kind == kind]
        if len(found) >= count:
            return found
        time.sleep(0.01)
    return [s for s in capture.spans if s.kind == kind]


def test_two_services_and_a_worker_are_one_trace(
    setup: Setup,
    connection: redis.Redis,
    spanline_capture: Capture,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    request = urllib.request.Request(  # urllib is not instrumented: the gateway's call
        f"{setup.a_url}/visits/7",
        method="POST",
        headers={
            "traceparent": f"00-{TRACE}-{PARENT}-01",
            "baggage": "spanline.actor.type=user,spanline.actor.id=42",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.loads(response.read())
    assert body["b_status"] == 202

    worker_records = run_worker(setup.queue, tmp_path_factory.mktemp("e2e-worker"))
    # the worker really wrote both stores
    with psycopg.connect(services.DSN, autocommit=True) as conn:
        rows = conn.execute(f"SELECT id, email FROM {setup.table}").fetchall()
    assert rows == [(7, services.EMAIL)]
    assert connection.get(setup.key) == services.REDIS_VALUE.encode()

    ended(spanline_capture, SpanKind.SERVER, 2)
    local = [span_record(s) for s in spanline_capture.spans]
    remote = [r for r in worker_records if r["w3c_trace_id"] == TRACE]
    records = local + remote

    # one trace: every span of this process belongs to it, and the worker continued it
    assert {r["w3c_trace_id"] for r in local} == {TRACE}
    assert {r["trace_id"] for r in records} == {local[0]["trace_id"]}

    by_name = {r["name"]: r for r in records}
    chain = [
        ("POST /visits/{id}", "server"),  # service A
        ("POST", "client"),  # httpx, in A
        ("POST /visits/{id}", "server"),  # service B
        ("AcceptVisit", "internal"),  # the enqueuing operation, in B
        ("process spanline.jobs.runner.run_job", "consumer"),  # the worker
        ("RecordVisit", "internal"),
    ]
    a_server, b_server = sorted(
        (r for r in local if r["kind"] == "server"), key=lambda r: r["start_ns"]
    )
    spans = [a_server, by_name["POST"], b_server, *(by_name[n] for n, _ in chain[3:])]
    assert [(r["name"], r["kind"]) for r in spans] == chain
    assert a_server["w3c_parent_span_id"] == PARENT
    for parent, child in itertools.pairwise(spans):
        assert child["w3c_parent_span_id"] == parent["w3c_span_id"], child["name"]
    # the database and Redis calls are the operation's children
    record_visit = by_name["RecordVisit"]
    below = {r["name"]: r for r in remote if r["parent_id"] == record_visit["id"]}
    assert set(below) >= {"INSERT", "redis.set"}, sorted(below)
    assert below["INSERT"]["attributes"]["db.system.name"] == "postgresql"
    assert below["redis.set"]["attributes"]["db.system.name"] == "redis"
    # and no span of the trace hangs loose
    assert len(records) == len(chain) + 2
    known = {r["w3c_span_id"] for r in records} | {PARENT}
    assert [r["name"] for r in records if r["w3c_parent_span_id"] not in known] == []

    # the actor, taken once at A's door, is on every span, operation frames included
    assert {json.dumps(r["actor"]) for r in records} == {json.dumps(ACTOR)}
    operations = [r for r in records if r["type"] == "operation"]
    assert sorted(r["name"] for r in operations) == ["AcceptVisit", "RecordVisit"]

    # no secret anywhere in the exported data
    exported = json.dumps(records)
    for secret in SECRETS:
        assert secret not in exported
    assert "Bearer" not in exported
