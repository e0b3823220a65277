"""The RQ integration and RQ job backend, with a real Redis (database 8) and a real
``rq worker`` process -- RQ's default worker, which forks a work horse per job and
ends it with ``os._exit`` -- exporting its spans to a JSON-lines file read back here."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from rq import Queue, Retry
from rq.job import Job
from rq.results import Result
from rq.serializers import JSONSerializer

import spanline
import spanline.jobs
from spanline import Span
from spanline.integrations import rq as integration
from spanline.jobs.rq import RQBackend
from spanline.testing import Capture
from tests import jobs_app
from tests.job_workers import WorkerProcess, python_tool
from tests.jobs_app import PlaceOrder
from tests.rq_settings import REDIS_URL

ACTOR = {"type": "user", "id": "42"}
WAIT_S = 60
RUN_JOB = "spanline.jobs.runner.run_job"


def _result(job: Job) -> Result:
    result = job.latest_result(timeout=WAIT_S)
    assert result is not None, f"job {job.id} did not finish"
    return result


@pytest.fixture(scope="module")
def connection() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="module")
def queue(
    connection: redis.Redis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Queue, WorkerProcess]]:
    name = f"spanline-test-{uuid.uuid4().hex}"
    process = WorkerProcess(
        python_tool(
            "rq.cli",
            "worker",
            "-c",
            "tests.rq_settings",
            "--serializer",
            "rq.serializers.JSONSerializer",
            "--name",
            name,
            name,
        ),
        tmp_path_factory.mktemp("rq-worker"),
    )
    rq_queue = Queue(name, connection=connection, serializer=JSONSerializer)
    try:
        _result(rq_queue.enqueue(jobs_app.echo, "ready"))  # answers once the worker runs
        yield rq_queue, process
    finally:
        process.stop()


@pytest.fixture
def instrumented() -> Iterator[None]:
    spanline.instrument("rq")
    yield
    spanline.uninstrument("rq")


@pytest.fixture
def rq_backend(queue: tuple[Queue, WorkerProcess]) -> Iterator[RQBackend]:
    backend = RQBackend(queue[0])
    previous = spanline.jobs.use(backend)
    yield backend
    spanline.jobs.use(previous)


def test_job_continues_the_enqueuing_trace_in_the_worker(
    queue: tuple[Queue, WorkerProcess], instrumented: None, spanline_capture: Capture
) -> None:
    rq_queue, process = queue

    @spanline.operation
    def checkout() -> Job:
        return rq_queue.enqueue(jobs_app.echo, 1, "two", three=3, meta={"mine": True})

    with spanline.start_trace(actor=ACTOR):
        job = checkout()
    result = _result(job)
    assert result.type == Result.Type.SUCCESSFUL, result.exc_string

    enqueuer = spanline_capture.find("checkout")
    name = "process tests.jobs_app.echo"
    consumed = process.spans(enqueuer.trace_hex, [name])[name]
    assert consumed["kind"] == "consumer"
    assert consumed["w3c_trace_id"] == enqueuer.trace_hex
    assert consumed["trace_id"] == enqueuer.trace_id
    assert consumed["trace_id"].startswith("tr_")
    assert consumed["w3c_parent_span_id"] == enqueuer.span_hex
    assert consumed["parent_id"] == enqueuer.id
    assert consumed["actor"] == ACTOR
    assert consumed["status"] == "unset"
    assert consumed["attributes"] == {
        "messaging.system": "rq",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": rq_queue.name,
        "messaging.message.id": job.id,
    }

    seen = result.return_value
    assert isinstance(seen, dict)
    # the function got its own arguments only, in the enqueuer's trace
    assert seen["args"] == [1, "two"]
    assert seen["kwargs"] == {"three": 3}
    assert seen["trace_id"] == enqueuer.trace_id
    assert seen["actor"] == ACTOR
    assert seen["frames"] == [
        {"type": "actor", "actor_type": "user", "id": "42"},
        {"type": "operation", "id": enqueuer.id, "name": "checkout"},
    ]
    # the caller's meta is kept; spanline's entry was removed before the function ran
    assert seen["meta"] == {"mine": True}


def test_failing_job_marks_the_process_span_error(
    queue: tuple[Queue, WorkerProcess], instrumented: None, spanline_capture: Capture
) -> None:
    rq_queue, process = queue
    with spanline.start_trace(actor=ACTOR):
        with spanline.span("enqueue") as enqueuing:
            job = rq_queue.enqueue(jobs_app.fail, "the printer is on fire")
    assert isinstance(enqueuing, Span)
    result = _result(job)
    assert result.type == Result.Type.FAILED

    name = "process tests.jobs_app.fail"
    consumed = process.spans(enqueuing.trace_hex, [name])[name]
    assert consumed["w3c_parent_span_id"] == enqueuing.span_hex
    assert consumed["status"] == "error"
    assert consumed["status_message"] == "RuntimeError: the printer is on fire"
    [event] = consumed["events"]
    assert event["attributes"]["exception.type"] == "RuntimeError"


def test_a_retry_continues_the_same_trace(
    queue: tuple[Queue, WorkerProcess], instrumented: None, spanline_capture: Capture
) -> None:
    rq_queue, process = queue
    with spanline.start_trace(actor=ACTOR):
        with spanline.span("enqueue") as enqueuing:
            rq_queue.enqueue(
                jobs_app.flaky, f"spanline-test-attempts-{uuid.uuid4().hex}", retry=Retry(max=1)
            )
    assert isinstance(enqueuing, Span)
    first, second = process.all_named(enqueuing.trace_hex, "process tests.jobs_app.flaky", 2)
    assert [first["status"], second["status"]] == ["error", "unset"]
    for attempt in (first, second):
        assert attempt["w3c_parent_span_id"] == enqueuing.span_hex
        assert attempt["actor"] == ACTOR


def test_operation_enqueue_runs_in_the_worker_below_the_enqueuer(
    queue: tuple[Queue, WorkerProcess],
    instrumented: None,
    rq_backend: RQBackend,
    spanline_capture: Capture,
) -> None:
    _, process = queue
    with spanline.start_trace(actor=ACTOR):
        job = PlaceOrder(order_id=7).call()
    assert isinstance(job, Job)
    assert job.description == "spanline job tests.jobs_app:SendConfirmation"
    result = _result(job)
    assert result.type == Result.Type.SUCCESSFUL, result.exc_string

    place = spanline_capture.find("PlaceOrder")
    spans = process.spans(place.trace_hex, [f"process {RUN_JOB}", "SendConfirmation"])
    consumed, confirmation = spans[f"process {RUN_JOB}"], spans["SendConfirmation"]
    assert consumed["parent_id"] == place.id
    assert consumed["w3c_parent_span_id"] == place.span_hex
    assert confirmation["parent_id"] == consumed["id"]
    assert confirmation["records"] == {"order_id": 7}
    for record in (consumed, confirmation):
        assert record["trace_id"] == place.trace_id
        assert record["actor"] == ACTOR

    seen: Any = result.return_value
    assert seen["params"] == {"order_id": 7}
    assert seen["frames"] == [
        {"type": "actor", "actor_type": "user", "id": "42"},
        {"type": "operation", "id": place.id, "name": "PlaceOrder"},
        {"type": "operation", "id": confirmation["id"], "name": "SendConfirmation"},
    ]


def test_operation_enqueue_without_the_integration_in_the_producer(
    queue: tuple[Queue, WorkerProcess], rq_backend: RQBackend, spanline_capture: Capture
) -> None:
    _, process = queue
    with spanline.start_trace(actor=ACTOR):
        job = PlaceOrder(order_id=8).call()
    assert "spanline" not in job.meta
    result = _result(job)
    assert result.type == Result.Type.SUCCESSFUL, result.exc_string

    place = spanline_capture.find("PlaceOrder")
    confirmation = process.spans(place.trace_hex, ["SendConfirmation"])["SendConfirmation"]
    assert confirmation["parent_id"] == place.id
    assert confirmation["actor"] == ACTOR


def test_install_twice_is_harmless_and_uninstall_restores(
    connection: redis.Redis, spanline_capture: Capture
) -> None:
    rq_queue = Queue(f"spanline-unconsumed-{uuid.uuid4().hex}", connection=connection)
    perform, create_job = Job.__dict__["perform"], Queue.__dict__["create_job"]
    spanline.instrument("rq")
    try:
        integration.install()  # a second install behind the registry's back: no change
        with spanline.span("enqueue") as enqueuing:
            job = rq_queue.enqueue(jobs_app.echo, 1)
        assert isinstance(enqueuing, Span)
        stored = Job.fetch(job.id, connection=connection)
        entries = stored.meta["spanline"]
        assert entries["traceparent"] == f"00-{enqueuing.trace_hex}-{enqueuing.span_hex}-03"
        assert entries["spanline"]["trace_id"] == enqueuing.trace_id
    finally:
        spanline.uninstrument("rq")
    assert Job.__dict__["perform"] is perform
    assert Queue.__dict__["create_job"] is create_job

    with spanline.span("enqueue"):
        job = rq_queue.enqueue(jobs_app.echo, 1)
    assert Job.fetch(job.id, connection=connection).meta == {}
    rq_queue.delete(delete_jobs=True)


@pytest.mark.parametrize("entry", ["garbage", {"spanline": {"v": 99}, "traceparent": "00-zz"}])
def test_a_broken_trace_entry_never_stops_the_job(
    queue: tuple[Queue, WorkerProcess], entry: object
) -> None:
    """A hostile ``meta["spanline"]``: the job runs, with its arguments, in a fresh
    trace; the entry is still hidden from the function."""
    rq_queue, _ = queue
    job = rq_queue.enqueue(jobs_app.echo, "still runs", meta={"spanline": entry})
    result = _result(job)
    assert result.type == Result.Type.SUCCESSFUL, result.exc_string
    seen: Any = result.return_value
    assert seen["args"] == ["still runs"]
    assert seen["meta"] == {}
    assert seen["actor"] is None
    assert seen["trace_id"].startswith("tr_")
