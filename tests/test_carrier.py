from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import threading
from typing import Any

import pytest

import spanline
from spanline.testing import Capture


class Enqueue(spanline.Operation):
    def perform(self) -> dict[str, Any] | None:
        return spanline.dump()


class SendConfirmation(spanline.Operation):
    def perform(self) -> dict[str, object]:
        return {
            "trace_id": spanline.trace_id(),
            "actor": spanline.actor(),
            "frames": spanline.frames(),
            "chain": spanline.trace_string(),
        }


def _enqueue() -> tuple[str, dict[str, Any]]:
    with spanline.start_trace(actor={"type": "user", "id": 42}) as trace_id:
        payload = Enqueue().call()
    assert payload is not None
    return trace_id, payload


def test_dump_is_json_safe_and_carries_the_chain(spanline_capture: Capture) -> None:
    trace_id, payload = _enqueue()
    assert json.loads(json.dumps(payload)) == payload
    assert payload["v"] == 1
    assert payload["trace_id"] == trace_id
    assert payload["actor"] == {"type": "user", "id": "42"}
    enqueue = spanline_capture.find("Enqueue")
    assert payload["frames"] == [{"type": "operation", "id": enqueue.id, "name": "Enqueue"}]
    assert payload["traceparent"] == f"00-{enqueue.trace_hex}-{enqueue.span_hex}-03"
    assert spanline.dump() is None  # outside any trace


def test_restore_continues_the_trace_in_a_thread(spanline_capture: Capture) -> None:
    trace_id, payload = _enqueue()
    result: dict[str, Any] = {}

    def job() -> None:
        with spanline.restore(payload) as restored:
            result["restored"] = restored
            result.update(SendConfirmation().call())

    worker = threading.Thread(target=job)
    worker.start()
    worker.join()
    enqueue = spanline_capture.find("Enqueue")
    send = spanline_capture.find("SendConfirmation")
    assert result["restored"] == trace_id
    assert result["trace_id"] == trace_id
    assert result["actor"] == {"type": "user", "id": "42"}
    assert [f.get("name") for f in result["frames"]] == [None, "Enqueue", "SendConfirmation"]
    assert send.parent is None  # a new local root...
    assert send.parent_id == enqueue.id  # ...whose parent is the enqueuing operation
    assert send.parent_span_id == enqueue.span_id
    assert send.trace_hex == enqueue.trace_hex


def test_restore_in_another_process(tmp_path: Any) -> None:
    trace_id, payload = _enqueue()
    script = textwrap.dedent("""
        import json, sys
        import spanline

        class SendConfirmation(spanline.Operation):
            def perform(self):
                return {"trace_id": spanline.trace_id(), "actor": spanline.actor(),
                        "chain": spanline.trace_string()}

        with spanline.restore(sys.stdin.read()):
            print(json.dumps(SendConfirmation().call()))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result = json.loads(done.stdout)
    assert result["trace_id"] == trace_id
    assert result["actor"] == {"type": "user", "id": "42"}
    assert result["chain"].startswith("user:42 > Enqueue(op_")
    assert result["chain"].split(" > ")[2].startswith("SendConfirmation(op_")


def test_job_enqueued_from_a_plain_span_parents_to_that_span(spanline_capture: Capture) -> None:
    with spanline.start_trace(), spanline.span("enqueue-step") as step:
        payload = spanline.dump()
    with spanline.restore(payload):
        with spanline.span("job") as job:
            pass
    assert isinstance(step, spanline.Span)
    assert isinstance(job, spanline.Span)
    assert job.parent_span_id == step.span_id


def _tampered() -> list[tuple[str, Any]]:
    _, good = _enqueue()
    cases: list[tuple[str, Any]] = [
        ("not valid JSON", "{nope"),
        ("must be a mapping", [1, 2]),
        ("unsupported version", {**good, "v": 99}),
        ("unknown keys", {**good, "evil": 1}),
        ("trace_id must be a non-empty string", {**good, "trace_id": 5}),
        ("actor", {**good, "actor": {"id": 1}}),
        ("traceparent", {**good, "traceparent": "00-zz-yy-01"}),
        ("does not match trace_id", {**good, "trace_id": "tr_" + "2" * 20}),
        ("frames must be a list", {**good, "frames": "op_x"}),
        ("frames[0].id", {**good, "frames": [{"type": "operation", "id": "op_bad", "name": "x"}]}),
        ("frames[0].type", {**good, "frames": [{"type": "root", "id": "x", "name": "x"}]}),
        ("frames[0].name", {**good, "frames": [{**good["frames"][0], "name": ""}]}),
        ("at most 64", {**good, "frames": good["frames"] * 65}),
        ("larger than", "x" * 70_000),
    ]
    return cases


def test_malformed_or_tampered_payload_starts_fresh_trace_with_warning(
    spanline_capture: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    for problem, bad in _tampered():
        caplog.clear()
        spanline.tracer.reset()  # also resets the log limiter
        ran = False
        with caplog.at_level(logging.WARNING, logger="spanline"):
            with spanline.restore(bad) as trace_id:
                assert trace_id.startswith("tr_")
                assert spanline.actor() is None
                assert spanline.frames() == []
                ran = True
        assert ran
        messages = " ".join(r.getMessage() for r in caplog.records)
        assert problem in messages, (problem, messages)
        assert spanline.tracer.stats()["restore_rejected"] == 1


def test_restore_none_starts_a_fresh_trace_quietly(
    caplog: pytest.LogCaptureFixture, spanline_capture: Capture
) -> None:
    with caplog.at_level(logging.WARNING, logger="spanline"), spanline.restore(None) as t:
        assert spanline.trace_id() == t
    assert caplog.records == []


def test_signed_payloads(spanline_capture: Capture, caplog: pytest.LogCaptureFixture) -> None:
    spanline.configure(payload_secret="s3cret")
    trace_id, payload = _enqueue()
    assert "sig" in payload
    with spanline.restore(payload):
        assert spanline.trace_id() == trace_id
    forged = {**payload, "actor": {"type": "admin", "id": "1"}}
    with caplog.at_level(logging.WARNING, logger="spanline"), spanline.restore(forged):
        assert spanline.trace_id() != trace_id
        assert spanline.actor() is None
    assert "signature" in caplog.text
    unsigned = {k: v for k, v in payload.items() if k != "sig"}
    spanline.tracer.reset()
    with spanline.restore(unsigned):
        assert spanline.trace_id() != trace_id


def test_hostile_payloads_never_raise_into_the_job(
    spanline_capture: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    _, good = _enqueue()
    frame = good["frames"][0]
    hostile: list[Any] = [
        {**good, "trace_id": good["trace_id"] + "\n"},
        {**good, "frames": [{**frame, "id": frame["id"] + "\n"}]},
        {**good, "frames": [{**frame, "type": []}]},
        {**good, "frames": [{**frame, "type": {"a": 1}}]},
        '{"v": 1, "trace_id": "x", "actor": ' + "[" * 30_000 + "]" * 30_000 + "}",
        {**good, "v": [1]},
        b"\xff\xfe",
        None,
        42,
    ]
    for bad in hostile:
        with spanline.restore(bad) as trace_id:
            assert trace_id.startswith("tr_")  # a fresh trace: the job runs
            assert spanline.actor() is None


def test_hostile_signed_payloads_never_raise(spanline_capture: Capture) -> None:
    spanline.configure(payload_secret="k")
    _, good = _enqueue()
    for bad in (
        {**good, "sig": "x", "actor": {"type": "u", "id": object()}},
        {**good, "sig": "x", "actor": {1: "a", "b": "c"}},
    ):
        with spanline.restore(bad):
            assert spanline.actor() is None


def test_many_distinct_bad_payloads_log_once(
    spanline_capture: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="spanline"):
        for i in range(300):
            with spanline.restore(f"not json {i}"):
                pass
    assert spanline.tracer.stats()["restore_rejected"] == 300
    assert len(caplog.records) == 1  # one warning, not one per payload


def test_long_operation_names_survive_a_round_trip(spanline_capture: Capture) -> None:
    @spanline.operation(name="x" * 1000)
    def enqueue() -> dict[str, Any] | None:
        return spanline.dump()

    with spanline.start_trace(actor={"type": "user", "id": 1}) as trace_id:
        payload = enqueue()
    with spanline.restore(payload):
        assert spanline.trace_id() == trace_id
        assert spanline.actor() == {"type": "user", "id": "1"}
