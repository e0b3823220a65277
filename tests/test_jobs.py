"""Jobs without a queue: ``Operation.enqueue()``, the job payload, ``run_job`` and its
checks.  The same operations run through real Celery and RQ workers in
tests/test_celery.py and tests/test_rq.py."""

from __future__ import annotations

import asyncio
import contextvars
import datetime
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import spanline
import spanline.jobs
from spanline import Operation, Span
from spanline.core.context import current
from spanline.jobs import InlineBackend, InvalidJobError, run_job
from spanline.jobs.job import MAX_JOB_BYTES
from spanline.jobs.message import continue_message, message_context
from spanline.testing import Capture
from tests.jobs_app import AsyncConfirmation, Explode, PlaceOrder, SendConfirmation

ACTOR = {"type": "user", "id": "42"}
ACTOR_FRAME = {"type": "actor", "actor_type": "user", "id": "42"}
SEND = "tests.jobs_app:SendConfirmation"


class Recorder:
    """A backend that keeps what it is given (the queue is the test)."""

    def __init__(self) -> None:
        self.jobs: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def submit(self, job: dict[str, Any], **options: Any) -> str:
        self.jobs.append((json.loads(json.dumps(job)), options))
        return f"job-{len(self.jobs)}"


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    backend = Recorder()
    previous = spanline.jobs.use(backend)
    yield backend
    spanline.jobs.use(previous)


@pytest.fixture
def inline() -> Iterator[None]:
    previous = spanline.jobs.use(InlineBackend())
    yield
    spanline.jobs.use(previous)


def _fresh(fn: Any, *args: Any) -> Any:
    """Run ``fn`` in a context with no trace, as a worker process would."""
    context = contextvars.copy_context()
    context.run(current.set, None)
    return context.run(fn, *args)


# -- enqueue ----------------------------------------------------------------------


def test_enqueue_builds_the_job_and_passes_options(
    recorder: Recorder, spanline_capture: Capture
) -> None:
    assert SendConfirmation(order_id=1).enqueue(countdown=5) == "job-1"
    with spanline.start_trace(actor=ACTOR):
        handle = PlaceOrder(order_id=2).call()
    assert handle == "job-2"

    (outside, options), (inside, _) = recorder.jobs
    assert options == {"countdown": 5}
    assert outside == {"v": 1, "operation": SEND, "params": {"order_id": 1}, "trace": None}
    place = spanline_capture.find("PlaceOrder")
    assert inside["operation"] == SEND
    assert inside["params"] == {"order_id": 2}
    trace = inside["trace"]
    assert trace["trace_id"] == place.trace_id
    assert trace["actor"] == ACTOR
    assert trace["frames"] == [{"type": "operation", "id": place.id, "name": "PlaceOrder"}]
    assert trace["traceparent"] == f"00-{place.trace_hex}-{place.span_hex}-03"


def test_enqueue_per_call_backend_wins(recorder: Recorder) -> None:
    other = Recorder()
    SendConfirmation(order_id=1).enqueue(backend=other)
    assert len(other.jobs) == 1
    assert recorder.jobs == []


def test_enqueue_without_a_backend_says_what_to_do() -> None:
    previous = spanline.jobs.use(None)
    try:
        with pytest.raises(RuntimeError, match=r"no job backend; call spanline\.jobs\.use"):
            SendConfirmation(order_id=1).enqueue()
    finally:
        spanline.jobs.use(previous)


def test_use_checks_the_backend_and_returns_the_previous_one() -> None:
    first, second = Recorder(), Recorder()
    before = spanline.jobs.use(first)
    try:
        assert spanline.jobs.active_backend() is first
        assert spanline.jobs.use(second) is first
        with pytest.raises(TypeError, match="needs a submit"):
            spanline.jobs.use(object())  # type: ignore[arg-type]
        assert spanline.jobs.active_backend() is second
    finally:
        spanline.jobs.use(before)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (datetime.date(2026, 1, 1), r"param 'order_id' is a date, which a job cannot carry"),
        ((1, 2), r"param 'order_id' is a tuple"),
        ({1, 2}, r"param 'order_id' is a set"),
        (b"bytes", r"param 'order_id' is a bytes"),
        (float("nan"), r"param 'order_id' is nan, which JSON cannot carry"),
        ({"ok": [1, {"deep": object()}]}, r"param 'order_id'\['ok'\]\[1\]\['deep'\] is a object"),
        ({1: "x"}, r"param 'order_id' has the key 1; JSON keys are strings"),
        (2**5000, r"param 'order_id' is an integer too large for JSON"),
    ],
)
def test_params_json_cannot_carry_are_refused_naming_the_param(
    recorder: Recorder, value: object, message: str
) -> None:
    with pytest.raises(TypeError, match=f"^SendConfirmation {message}"):
        SendConfirmation(order_id=value).enqueue()
    assert recorder.jobs == []


def test_self_referencing_params_are_refused(recorder: Recorder) -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(TypeError, match="nests deeper than 64 levels"):
        SendConfirmation(order_id=loop).enqueue()


def test_classes_a_worker_cannot_import_are_refused(recorder: Recorder) -> None:
    class Local(Operation):
        def perform(self) -> None:
            return None

    with pytest.raises(ValueError, match="inside a function"):
        Local().enqueue()
    main = type("Script", (Operation,), {"__module__": "__main__"})
    with pytest.raises(ValueError, match="__main__, which a worker cannot import"):
        main().enqueue()


# -- running ----------------------------------------------------------------------


def test_inline_backend_runs_the_job_below_the_enqueuer(
    inline: None, spanline_capture: Capture
) -> None:
    with spanline.start_trace(actor=ACTOR) as trace_id:
        result = PlaceOrder(order_id=3).call()
    place = spanline_capture.find("PlaceOrder")
    confirmation = spanline_capture.find("SendConfirmation")
    assert confirmation.parent is place
    assert result["params"] == {"order_id": 3}
    assert result["trace_id"] == trace_id
    assert result["frames"] == [
        ACTOR_FRAME,
        {"type": "operation", "id": place.id, "name": "PlaceOrder"},
        {"type": "operation", "id": confirmation.id, "name": "SendConfirmation"},
    ]
    spanline_capture.assert_outline(
        """
        PlaceOrder
          SendConfirmation
        """
    )


def test_run_job_elsewhere_continues_the_trace(
    recorder: Recorder, spanline_capture: Capture
) -> None:
    with spanline.start_trace(actor=ACTOR):
        PlaceOrder(order_id=4).call()
    [(job, _)] = recorder.jobs
    place = spanline_capture.find("PlaceOrder")

    result = _fresh(run_job, json.dumps(job))  # as JSON text, in a context with no trace

    confirmation = spanline_capture.find("SendConfirmation")
    assert confirmation.parent is None  # a local root in the "worker"...
    assert confirmation.parent_id == place.id  # ...whose parent ran elsewhere
    assert confirmation.parent_span_id == place.span_id
    assert confirmation.trace_id == place.trace_id
    assert confirmation.trace_hex == place.trace_hex
    assert confirmation.actor == ACTOR
    assert result["trace_id"] == place.trace_id
    assert result["actor"] == ACTOR
    assert result["frames"] == [
        ACTOR_FRAME,
        {"type": "operation", "id": place.id, "name": "PlaceOrder"},
        {"type": "operation", "id": confirmation.id, "name": "SendConfirmation"},
    ]
    assert current.get() is None


def test_run_job_of_a_job_enqueued_outside_any_trace(recorder: Recorder) -> None:
    SendConfirmation(order_id=5).enqueue()
    [(job, _)] = recorder.jobs
    result = _fresh(run_job, job)
    assert result["trace_id"].startswith("tr_")
    assert result["actor"] is None
    assert [f["name"] for f in result["frames"]] == ["SendConfirmation"]


def test_async_operations_run_to_completion(recorder: Recorder, spanline_capture: Capture) -> None:
    with spanline.start_trace(actor=ACTOR):
        with spanline.span("enqueue") as enqueuing:
            AsyncConfirmation(order_id=6).enqueue()
    [(job, _)] = recorder.jobs
    result = _fresh(run_job, job)
    assert result["params"] == {"order_id": 6}
    assert result["trace_id"] == enqueuing.trace_id
    confirmation = spanline_capture.find("AsyncConfirmation")
    assert confirmation.parent_span_id == enqueuing.span_id

    async def inside_a_loop() -> None:
        run_job(job)

    with pytest.raises(RuntimeError, match="not inside a running event loop"):
        asyncio.run(inside_a_loop())


def test_the_operations_exception_passes_through_unchanged(inline: None) -> None:
    with pytest.raises(ValueError, match="confirmation service is down"):
        Explode().enqueue()


def test_inline_backend_takes_no_options(inline: None) -> None:
    with pytest.raises(TypeError, match=r"InlineBackend takes no options, got \['countdown'\]"):
        SendConfirmation(order_id=1).enqueue(countdown=3)


def test_a_malformed_trace_never_stops_the_job(
    caplog: pytest.LogCaptureFixture, spanline_capture: Capture
) -> None:
    job = {"v": 1, "operation": SEND, "params": {"order_id": 9}, "trace": {"v": 1, "trace_id": 5}}
    with caplog.at_level(logging.WARNING, logger="spanline"):
        result = _fresh(run_job, job)
    assert result["params"] == {"order_id": 9}
    assert result["actor"] is None
    assert "trace_id must be a non-empty string" in caplog.text


def _job(**changes: Any) -> dict[str, Any]:
    job: dict[str, Any] = {"v": 1, "operation": SEND, "params": {"order_id": 1}, "trace": None}
    job.update(changes)
    return {k: v for k, v in job.items() if v is not ...}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{not json", "job is not valid JSON"),
        ("x" * (MAX_JOB_BYTES + 1), "job is larger than"),
        ([1, 2], "job must be a mapping, got list"),
        (_job(v=2), "unsupported job version 2"),
        (_job(extra=1), r"job has unknown keys \['extra'\]"),
        (_job(params=...), "job must have 'operation' and 'params'"),
        (_job(operation=42), "operation must be 'module:QualName'"),
        (_job(operation="os; rm -rf /:X"), "operation must be 'module:QualName'"),
        (_job(operation="os"), "operation must be 'module:QualName'"),
        (_job(operation="tests.jobs_app:__class__"), "names a dunder attribute"),
        (_job(operation="os:system"), "'system' is not a class"),
        (_job(operation="tests.jobs_app:echo"), "'echo' is not a class"),
        (_job(operation="subprocess:Popen"), "is not a spanline.Operation subclass"),
        (_job(operation="spanline:Operation"), "is not a spanline.Operation subclass"),
        (_job(operation="no_such_module_for_spanline:Op"), "cannot import module"),
        (_job(operation="tests.jobs_app:Missing"), "'Missing' is not a class"),
        (_job(params=[1]), "params must be a dict, got list"),
        (_job(params={"_private": 1}), "param name '_private' is not a public identifier"),
        (_job(params={"not valid": 1}), "param name 'not valid' is not a public identifier"),
        (_job(params={"perform": 1}), r"would replace SendConfirmation\.perform"),
        (_job(params={"call": 1}), r"would replace SendConfirmation\.call"),
        (_job(params={"order_id": float("inf")}), "param 'order_id' is inf"),
    ],
)
def test_bad_jobs_are_refused_with_a_clear_error(
    payload: object, message: str, spanline_capture: Capture
) -> None:
    with pytest.raises(InvalidJobError, match=message):
        _fresh(run_job, payload)
    assert spanline_capture.spans == []  # nothing ran
    assert "no_such_module_for_spanline" not in sys.modules


def test_signed_jobs_with_payload_secret(
    recorder: Recorder, spanline_capture: Capture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spanline.configure(payload_secret="k3y")
    with spanline.start_trace(actor=ACTOR):
        PlaceOrder(order_id=10).call()
    [(job, _)] = recorder.jobs
    assert isinstance(job["sig"], str)
    assert _fresh(run_job, job)["actor"] == ACTOR

    tampered = {**job, "params": {"order_id": 11}}
    with pytest.raises(InvalidJobError, match="signature is missing or does not match"):
        _fresh(run_job, tampered)

    # an unsigned job naming a module: refused before that module is imported
    (tmp_path / "spanline_side_effect.py").write_text("raise SystemExit('imported!')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    forged = _job(operation="spanline_side_effect:Op")
    with pytest.raises(InvalidJobError, match="signature is missing"):
        _fresh(run_job, forged)
    assert "spanline_side_effect" not in sys.modules

    # the same key never validates a trace payload as a job, or the reverse
    trace_only = {**job, "sig": job["trace"]["sig"]}
    with pytest.raises(InvalidJobError, match="signature"):
        _fresh(run_job, trace_only)


# -- the message context the queue integrations use -------------------------------------


def test_message_context_round_trip(spanline_capture: Capture) -> None:
    assert message_context() == {}
    assert continue_message({}) is None
    with spanline.start_trace(actor=ACTOR):
        with spanline.span("enqueue") as enqueuing:
            entries = message_context()
    assert isinstance(enqueuing, Span)
    assert entries["traceparent"] == f"00-{enqueuing.trace_hex}-{enqueuing.span_hex}-03"
    assert entries["spanline"]["actor"] == ACTOR

    def consume(entries: dict[str, Any]) -> tuple[str | None, int, Any]:
        boundary = continue_message(entries)
        assert boundary is not None
        with boundary, spanline.span("process") as processing:
            return processing.trace_id, processing.parent_span_id, spanline.actor()

    assert _fresh(consume, entries) == (enqueuing.trace_id, enqueuing.span_id, ACTOR)
    # W3C headers alone (another producer): the trace continues, the actor is not taken
    w3c_only = {k: v for k, v in entries.items() if k != "spanline"}
    _, parent, actor = _fresh(consume, w3c_only)
    assert (parent, actor) == (enqueuing.span_id, None)
