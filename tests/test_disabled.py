from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import spanline
from spanline.testing import Capture


class Validate(spanline.Operation):
    def perform(self) -> tuple[str, list[dict[str, str]], str | None]:
        with spanline.span("inner") as inner:
            inner.set_attribute("a", 1)
            spanline.record("b", 2)
            assert isinstance(inner, spanline.NoopSpan)
        assert isinstance(spanline.current_span(), spanline.NoopSpan)
        return spanline.trace_string(), spanline.frames(), spanline.current_id()


class PlaceOrder(spanline.Operation):
    def perform(self) -> tuple[str, list[dict[str, str]], str | None]:
        return Validate().call()


class Enqueue(spanline.Operation):
    def perform(self) -> dict[str, object] | None:
        return spanline.dump()


def test_disabled_keeps_the_audit_chain_but_no_spans(spanline_capture: Capture) -> None:
    spanline.configure(enabled=False)
    with spanline.start_trace(actor={"type": "user", "id": 42}) as trace_id:
        chain, frames, current = PlaceOrder().call()
        assert spanline.trace_id() == trace_id
        payload = Enqueue().call()
    assert re.fullmatch(r"user:42 > PlaceOrder\(op_\w{6}\) > Validate\(op_\w{6}\)", chain)
    assert [f["type"] for f in frames] == ["actor", "operation", "operation"]
    assert current == frames[-1]["id"]
    assert current is not None
    assert len(current) == 23
    assert payload is not None
    assert isinstance(payload["traceparent"], str)
    assert payload["traceparent"].endswith("-02")  # not sampled, random trace id
    assert payload["frames"][-1]["name"] == "Enqueue"  # type: ignore[index]
    assert spanline_capture.spans == []
    assert spanline_capture.started == 0
    assert spanline.tracer.completed == []
    # operations outside any trace, spans, handlers and async work all stay silent
    PlaceOrder().call()
    with spanline.span("s") as s:
        assert isinstance(s, spanline.NoopSpan)
    assert spanline_capture.spans == []


def test_disabled_through_environment_variable() -> None:
    script = textwrap.dedent("""
        import json, spanline
        class Op(spanline.Operation):
            def perform(self):
                return spanline.trace_string()
        with spanline.start_trace(actor={"type": "user", "id": 1}):
            chain = Op().call()
        print(json.dumps({"enabled": spanline.settings.enabled, "chain": chain,
                          "completed": len(spanline.tracer.completed)}))
    """)
    env = {**os.environ, "SPANLINE_ENABLED": "false"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result = json.loads(done.stdout)
    assert result["enabled"] is False
    assert result["chain"].startswith("user:1 > Op(op_")
    assert result["completed"] == 0


def test_enabling_again_applies_to_new_traces(spanline_capture: Capture) -> None:
    spanline.configure(enabled=False)
    with spanline.start_trace():
        spanline.configure(enabled=True)
        with spanline.span("inside-disabled-trace"):
            pass
    with spanline.span("new-trace"):
        pass
    assert spanline_capture.names() == ["new-trace"]


def test_disabled_decorated_operations_push_frames_not_spans(spanline_capture: Capture) -> None:
    spanline.configure(enabled=False)

    @spanline.operation(name="orders.place")
    def place() -> str:
        assert isinstance(spanline.current_span(), spanline.NoopSpan)
        return spanline.trace_string()

    with spanline.start_trace(actor={"type": "user", "id": 5}):
        chain = place()
    assert chain.startswith("user:5 > orders.place(op_")
    assert spanline_capture.spans == []
