"""The Celery integration and Celery job backend, with a real Redis broker (database 7)
and a real worker process (``celery worker --pool=solo``) that exports its spans to a
JSON-lines file read back here."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery  # type: ignore[import-untyped]

import spanline
import spanline.jobs
from spanline import SpanKind
from spanline.integrations import celery as integration
from spanline.jobs.celery import TASK_NAME, CeleryBackend
from spanline.testing import Capture
from tests.celery_app import BROKER, app, echo, fail
from tests.job_workers import WorkerProcess, python_tool
from tests.jobs_app import PlaceOrder

ACTOR = {"type": "user", "id": "42"}
WAIT_S = 60


@pytest.fixture(scope="module", autouse=True)
def _broker() -> Iterator[None]:
    """Database 7 is this module's: emptied when it is done."""
    yield
    client = redis.Redis.from_url(BROKER)
    client.flushdb()
    client.close()


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WorkerProcess, str]]:
    queue = f"spanline-test-{uuid.uuid4().hex}"
    process = WorkerProcess(
        python_tool(
            "celery",
            "-A",
            "tests.celery_app",
            "worker",
            "--pool=solo",
            "-c",
            "1",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-Q",
            queue,
            "-n",
            f"{queue}@%h",
            "-l",
            "warning",
        ),
        tmp_path_factory.mktemp("celery-worker"),
    )
    try:
        # the first task answers once the worker is consuming
        echo.apply_async(("ready",), queue=queue).get(timeout=WAIT_S)
        yield process, queue
    finally:
        process.stop()


@pytest.fixture
def instrumented() -> Iterator[None]:
    spanline.instrument("celery")
    yield
    spanline.uninstrument("celery")


@pytest.fixture
def celery_backend(worker: tuple[WorkerProcess, str]) -> Iterator[CeleryBackend]:
    backend = CeleryBackend(app, queue=worker[1])
    previous = spanline.jobs.use(backend)
    yield backend
    spanline.jobs.use(previous)


def test_task_continues_the_enqueuing_trace_in_the_worker(
    worker: tuple[WorkerProcess, str], instrumented: None, spanline_capture: Capture
) -> None:
    process, queue = worker

    @spanline.operation
    def checkout() -> Any:
        return echo.apply_async((1, "two"), {"three": 3}, queue=queue)

    with spanline.start_trace(actor=ACTOR):
        handle = checkout()
    result = handle.get(timeout=WAIT_S)

    send = spanline_capture.find("send tests.echo")
    enqueuer = spanline_capture.find("checkout")
    assert send.kind == SpanKind.PRODUCER
    assert send.parent is enqueuer
    assert send.attributes == {
        "messaging.system": "celery",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": queue,
        "messaging.message.id": handle.id,
    }

    spans = process.spans(send.trace_hex, ["process tests.echo"])
    consumed = spans["process tests.echo"]
    assert consumed["kind"] == "consumer"
    assert consumed["w3c_trace_id"] == send.trace_hex
    assert consumed["trace_id"] == send.trace_id
    assert consumed["trace_id"].startswith("tr_")
    assert consumed["w3c_parent_span_id"] == send.span_hex
    assert consumed["actor"] == ACTOR
    assert consumed["status"] == "unset"
    assert consumed["attributes"] == {
        "messaging.system": "celery",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": queue,
        "messaging.message.id": handle.id,
    }

    # the task saw its own arguments only; the spanline header was removed
    assert result["args"] == [1, "two"]
    assert result["kwargs"] == {"three": 3}
    assert result["request_has_payload"] is False
    # and ran in the same trace, by the same actor, below the enqueuing operation
    assert result["trace_id"] == send.trace_id
    assert result["actor"] == ACTOR
    assert result["frames"] == [
        {"type": "actor", "actor_type": "user", "id": "42"},
        {"type": "operation", "id": enqueuer.id, "name": "checkout"},
    ]


def test_failing_task_marks_the_process_span_error(
    worker: tuple[WorkerProcess, str], instrumented: None, spanline_capture: Capture
) -> None:
    process, queue = worker
    with spanline.start_trace(actor=ACTOR):
        handle = fail.apply_async(("the printer is on fire",), queue=queue)
    with pytest.raises(RuntimeError, match="the printer is on fire"):
        handle.get(timeout=WAIT_S)

    send = spanline_capture.find("send tests.fail")
    consumed = process.spans(send.trace_hex, ["process tests.fail"])["process tests.fail"]
    assert consumed["status"] == "error"
    assert consumed["status_message"] == "RuntimeError: the printer is on fire"
    [event] = consumed["events"]
    assert event["name"] == "exception"
    assert event["attributes"]["exception.type"] == "RuntimeError"
    assert event["attributes"]["exception.message"] == "the printer is on fire"


def test_operation_enqueue_runs_in_the_worker_below_the_enqueuer(
    worker: tuple[WorkerProcess, str],
    instrumented: None,
    celery_backend: CeleryBackend,
    spanline_capture: Capture,
) -> None:
    process, _ = worker
    with spanline.start_trace(actor=ACTOR):
        handle = PlaceOrder(order_id=7).call()
    result = handle.get(timeout=WAIT_S)

    place = spanline_capture.find("PlaceOrder")
    send = spanline_capture.find(f"send {TASK_NAME}")
    assert send.parent is place
    spans = process.spans(place.trace_hex, [f"process {TASK_NAME}", "SendConfirmation"])
    consumed, confirmation = spans[f"process {TASK_NAME}"], spans["SendConfirmation"]
    assert consumed["w3c_parent_span_id"] == send.span_hex
    assert confirmation["parent_id"] == consumed["id"]
    assert confirmation["type"] == "operation"
    assert confirmation["records"] == {"order_id": 7}
    for record in (consumed, confirmation):
        assert record["w3c_trace_id"] == place.trace_hex
        assert record["trace_id"] == place.trace_id
        assert record["actor"] == ACTOR

    assert result["params"] == {"order_id": 7}
    assert result["trace_id"] == place.trace_id
    assert result["actor"] == ACTOR
    assert result["frames"] == [
        {"type": "actor", "actor_type": "user", "id": "42"},
        {"type": "operation", "id": place.id, "name": "PlaceOrder"},
        {"type": "operation", "id": confirmation["id"], "name": "SendConfirmation"},
    ]
    assert result["trace_string"].startswith("user:42 > PlaceOrder(")


def test_operation_enqueue_without_the_integration_in_the_producer(
    worker: tuple[WorkerProcess, str], celery_backend: CeleryBackend, spanline_capture: Capture
) -> None:
    """The job's own payload carries the trace: the operation continues it even when
    the message has no trace headers (its ``process`` span then starts a new trace)."""
    process, _ = worker
    with spanline.start_trace(actor=ACTOR):
        handle = PlaceOrder(order_id=8).call()
    result = handle.get(timeout=WAIT_S)

    place = spanline_capture.find("PlaceOrder")
    assert spanline_capture.names() == ["PlaceOrder"]  # no send span: not instrumented
    confirmation = process.spans(place.trace_hex, ["SendConfirmation"])["SendConfirmation"]
    assert confirmation["parent_id"] == place.id
    assert confirmation["w3c_parent_span_id"] == place.span_hex
    assert confirmation["actor"] == ACTOR
    assert result["frames"][1] == {"type": "operation", "id": place.id, "name": "PlaceOrder"}


def _published(queue: str) -> dict[str, Any]:
    """The one message waiting in ``queue`` (nobody consumes it), as kombu stored it."""
    client = redis.Redis.from_url(BROKER)
    try:
        [raw] = client.lrange(queue, 0, -1)
        client.delete(queue)
    finally:
        client.close()
    message: dict[str, Any] = json.loads(raw)
    return message


def test_install_twice_is_harmless_and_uninstall_restores(spanline_capture: Capture) -> None:
    queue = f"spanline-unconsumed-{uuid.uuid4().hex}"
    original = type(app).send_task
    spanline.instrument("celery")
    try:
        spanline.instrument("celery")
        integration.install()  # a second install behind the registry's back: no change
        with spanline.span("enqueue"):
            echo.apply_async((1,), queue=queue)
        headers = _published(queue)["headers"]
        [send] = [s for s in spanline_capture.spans if s.kind == SpanKind.PRODUCER]
        assert headers["traceparent"] == f"00-{send.trace_hex}-{send.span_hex}-03"
        assert headers["spanline"]["trace_id"] == send.trace_id
    finally:
        spanline.uninstrument("celery")
    assert type(app).send_task is original

    spanline_capture.clear()
    with spanline.span("enqueue"):
        echo.apply_async((1,), queue=queue)
    headers = _published(queue)["headers"]
    assert "traceparent" not in headers
    assert "spanline" not in headers
    assert spanline_capture.names() == ["enqueue"]


def test_a_broken_trace_header_never_stops_the_task(
    worker: tuple[WorkerProcess, str], spanline_capture: Capture, tmp_path: Path
) -> None:
    """A hostile ``spanline`` header: the worker logs it, starts a fresh trace, and
    the task runs with its arguments."""
    process, queue = worker
    forged = {"v": 1, "trace_id": "tr_x", "frames": "not a list", "actor": {"type": 1}}
    handle = echo.apply_async(("still runs",), queue=queue, headers={"spanline": forged})
    result = handle.get(timeout=WAIT_S)
    assert result["args"] == ["still runs"]
    assert result["request_has_payload"] is False
    assert result["trace_id"] != "tr_x"
    assert result["actor"] is None
    assert "ignoring the job's trace context" in process.log()


def test_eager_tasks_get_a_process_span_in_the_callers_trace(
    instrumented: None, spanline_capture: Capture
) -> None:
    """``task_always_eager`` runs the task in the caller (no message, no worker): its
    ``process`` span is a child of the caller's span."""
    eager = Celery("spanline_eager", set_as_current=False)
    eager.conf.task_always_eager = True

    @eager.task(name="tests.double")  # type: ignore[untyped-decorator]
    def double(x: int) -> int:
        return 2 * x

    with spanline.span("caller"):
        assert double.delay(21).get() == 42
    spanline_capture.assert_outline(
        """
        caller
          process tests.double
        """
    )
    assert spanline_capture.find("process tests.double").kind == SpanKind.CONSUMER
