from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import pytest
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

import spanline
from spanline.core.sampling import (
    AlwaysOff,
    AlwaysOn,
    ParentBased,
    TraceIdRatio,
    sampler_from_name,
)
from spanline.export import TailSamplingProcessor
from spanline.testing import Capture


def test_ratio_agrees_with_the_opentelemetry_sdk() -> None:
    import random

    rng = random.Random(3)
    for ratio in (0.0, 0.1, 0.5, 0.9, 1.0):
        ours = TraceIdRatio(ratio)
        theirs = TraceIdRatioBased(ratio)
        for _ in range(2000):
            trace_id = rng.getrandbits(128) or 1
            expected = theirs.should_sample(None, trace_id, "x").decision.is_sampled()
            assert ours.should_sample(trace_id, None) is expected


def test_ratio_keeps_about_the_ratio_and_is_deterministic(spanline_capture: Capture) -> None:
    spanline.configure(sampler=TraceIdRatio(0.25))
    kept_ids = []
    for _ in range(2000):
        with spanline.start_trace() as trace_id, spanline.span("s") as s:
            if s.is_recording():
                kept_ids.append(trace_id)
    assert 350 < len(kept_ids) < 650  # 500 expected; bounds are > 5 sigma wide
    assert len(spanline_capture.spans) == len(kept_ids)
    for trace_id in kept_ids[:50]:  # the same id is always decided the same way
        with spanline.start_trace(trace_id=trace_id), spanline.span("again") as s:
            assert s.is_recording()


def test_unsampled_traces_keep_the_audit_chain(spanline_capture: Capture) -> None:
    spanline.configure(sampler="always_off")

    class Place(spanline.Operation):
        def perform(self) -> tuple[str, str | None]:
            with spanline.span("inner") as inner:
                assert not inner.is_recording()
            return spanline.trace_string(), spanline.current_id()

    with spanline.start_trace(actor={"type": "user", "id": 3}) as trace_id:
        chain, current = Place().call()
        assert spanline.trace_id() == trace_id
    assert chain.startswith("user:3 > Place(op_")
    assert current is not None
    assert spanline_capture.spans == []
    # a root plain span outside any trace: its children share its (unsampled) trace
    with spanline.span("root"):
        outer = spanline.trace_id()
        assert outer is not None
        with spanline.span("child") as child:
            assert not child.is_recording()
            assert spanline.trace_id() == outer  # the child joined, no new trace
    assert spanline_capture.spans == []


def test_parent_based_follows_the_callers_flag(spanline_capture: Capture) -> None:
    spanline.configure(sampler="parentbased_always_on")

    def payload(flags: str) -> dict[str, object]:
        return {
            "v": 1,
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "traceparent": f"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}",
            "actor": None,
            "frames": [],
        }

    with spanline.restore(payload("00")), spanline.span("unsampled") as s:
        assert not s.is_recording()
    with spanline.restore(payload("01")), spanline.span("sampled") as s:
        assert s.is_recording()
    spanline.configure(sampler=ParentBased(AlwaysOff()))
    with spanline.restore(payload("01")), spanline.span("parent says yes") as s:
        assert s.is_recording()
    with spanline.span("new root") as s:
        assert not s.is_recording()
    assert spanline_capture.names() == ["sampled", "parent says yes"]


def test_sampled_flag_travels_in_dump(spanline_capture: Capture) -> None:
    spanline.configure(sampler="always_off")

    @spanline.operation
    def enqueue() -> dict[str, object] | None:
        return spanline.dump()

    payload = enqueue()
    assert payload is not None
    assert str(payload["traceparent"]).endswith("-02")  # not sampled
    spanline.configure(sampler="parentbased_always_on")
    with spanline.restore(payload), spanline.span("job") as job:
        assert not job.is_recording()  # the caller decided


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"OTEL_TRACES_SAMPLER": "always_off"}, "AlwaysOff()"),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"},
            "TraceIdRatio(0.5)",
        ),
        (
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
            "ParentBased(TraceIdRatio(0.1))",
        ),
        ({"OTEL_TRACING_SAMPLE_RATE": "0.3"}, "ParentBased(TraceIdRatio(0.3))"),
        ({}, "ParentBased(AlwaysOn())"),
    ],
)
def test_samplers_from_the_environment(
    spanline_capture: Capture,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    expected: str,
) -> None:
    for name in ("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_TRACING_SAMPLE_RATE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert repr(spanline.configure().sampler) == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER='sometimes' is invalid"),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
            "OTEL_TRACES_SAMPLER_ARG='2' is out of range",
        ),
        ({"OTEL_TRACING_SAMPLE_RATE": "half"}, "OTEL_TRACING_SAMPLE_RATE='half' is not a number"),
    ],
)
def test_bad_sampler_settings_are_clear_errors(
    spanline_capture: Capture,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(spanline.ConfigError, match=message):
        spanline.configure()


def test_enabled_aliases(monkeypatch: pytest.MonkeyPatch, spanline_capture: Capture) -> None:
    monkeypatch.delenv("SPANLINE_ENABLED", raising=False)
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert spanline.configure().enabled is False
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    monkeypatch.setenv("OTEL_TRACING_ENABLED", "false")
    assert spanline.configure().enabled is False
    monkeypatch.setenv("SPANLINE_ENABLED", "true")  # spanline's own name wins
    assert spanline.configure().enabled is True


def test_sampler_names_and_argument_checks() -> None:
    assert isinstance(sampler_from_name("always_on"), AlwaysOn)
    with pytest.raises(ValueError, match="unknown sampler"):
        sampler_from_name("nope")
    with pytest.raises(ValueError, match="from 0 to 1"):
        TraceIdRatio(1.5)
    with pytest.raises(spanline.ConfigError, match="unknown sampler"):
        spanline.configure(sampler="nope")


def test_sampler_from_the_environment_in_a_fresh_process() -> None:
    env = {**os.environ, "OTEL_TRACES_SAMPLER": "always_off"}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import spanline\nwith spanline.span('x') as s: print(s.is_recording())",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert out.strip() == "False"


def _trace(name: str, *, fail: bool = False, children: int = 2) -> None:
    with contextlib.suppress(RuntimeError), spanline.span(name) as root:
        for i in range(children):
            with spanline.span(f"{name}.child{i}"):
                pass
        if fail:
            raise RuntimeError("boom")
    assert isinstance(root, spanline.Span)


def test_tail_sampling_keeps_errors_and_slow_traces(spanline_capture: Capture) -> None:
    kept = Capture()
    clock = spanline_capture.deterministic(step_ns=1_000_000)
    spanline.tracer.add_processor(TailSamplingProcessor(kept, slow_ms=20, ratio=0.0))
    _trace("fast")
    _trace("failed", fail=True)
    with spanline.span("slow"):
        clock.advance(50_000_000)
    assert [s.name for s in kept.roots] == ["failed", "slow"]
    assert sorted(kept.names()) == ["failed", "failed.child0", "failed.child1", "slow"]
    stats = spanline.tracer.stats()
    assert stats["processors"] == 2


def test_tail_sampling_memory_is_bounded_and_drops_are_counted(
    spanline_capture: Capture,
) -> None:
    kept = Capture()
    tail = TailSamplingProcessor(kept, ratio=1.0, max_buffered_spans=5)
    spanline.tracer.add_processor(tail)
    with spanline.span("big"):
        for i in range(12):
            with spanline.span(f"c{i}"):
                pass
    stats = tail.stats()
    assert stats["buffered_spans"] == 0
    assert stats["evicted_traces"] == 1
    assert stats["dropped_spans"] == 13  # 12 children evicted, then the late root
    assert kept.spans == []
    _trace("small", children=1)
    assert sorted(kept.names()) == ["small", "small.child0"]
    assert tail.stats()["kept_traces"] == 1
