from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest

import spanline
from spanline.testing import Capture


class Recorder:
    """A real processor that records the calls it receives."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def on_start(self, span: spanline.Span) -> None:
        self.calls.append(("start", span.name))

    def on_end(self, span: spanline.Span) -> None:
        assert span.ended
        self.calls.append(("end", span.name))

    def shutdown(self) -> None:
        self.calls.append(("shutdown", ""))

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.calls.append(("flush", ""))
        return True


class Exploding:
    def on_start(self, span: spanline.Span) -> None:
        raise RuntimeError("start boom")

    def on_end(self, span: spanline.Span) -> None:
        raise RuntimeError("end boom")

    def shutdown(self) -> None:
        raise RuntimeError("shutdown boom")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        raise RuntimeError("flush boom")


def test_processors_see_start_and_end_in_order(spanline_capture: Capture) -> None:
    recorder = Recorder()
    spanline.tracer.add_processor(recorder)
    with spanline.span("outer"), spanline.span("inner"):
        pass
    assert recorder.calls == [
        ("start", "outer"),
        ("start", "inner"),
        ("end", "inner"),
        ("end", "outer"),
    ]
    assert spanline.tracer.force_flush()
    spanline.shutdown()
    assert recorder.calls[-2:] == [("flush", ""), ("shutdown", "")]
    spanline.tracer.remove_processor(recorder)
    with spanline.span("after"):
        pass
    assert ("start", "after") not in recorder.calls


def test_processor_that_raises_never_reaches_user_code(
    spanline_capture: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    spanline.tracer.add_processor(Exploding())
    with caplog.at_level(logging.ERROR, logger="spanline"):
        for _ in range(5):
            with spanline.span("work") as s:
                s.set_attribute("ok", True)
        assert not spanline.tracer.force_flush()
        spanline.shutdown()
    # 5 on_start + 5 on_end + force_flush + shutdown (which flushes first, then shuts down)
    assert spanline.tracer.stats()["processor_errors"] == 13
    assert len(spanline_capture.spans) == 5  # the other processor still got everything
    on_end_logs = [r for r in caplog.records if "on_end failed" in r.getMessage()]
    assert len(on_end_logs) == 1  # logged once, then rate-limited


def test_processor_registration_is_checked() -> None:
    with pytest.raises(TypeError, match="on_start"):
        spanline.tracer.add_processor(object())  # type: ignore[arg-type]


def test_completed_ring_is_bounded_and_ordered(spanline_capture: Capture) -> None:
    spanline.configure(ring_size=3)
    for i in range(5):
        with spanline.span(f"root{i}"), spanline.span("child"):
            pass
    assert [s.name for s in spanline.tracer.completed] == ["root2", "root3", "root4"]
    last = spanline.tracer.last_completed
    assert last is not None
    assert last.name == "root4"
    assert spanline.tracer.stats()["completed_retained"] == 3
    spanline.tracer.reset()
    assert spanline.tracer.completed == []
    assert spanline.tracer.last_completed is None


def test_ring_is_thread_safe(spanline_capture: Capture) -> None:
    spanline.configure(ring_size=10_000)

    def work(n: int) -> None:
        for i in range(100):
            with (
                spanline.start_trace(actor={"type": "worker", "id": n}),
                spanline.span(f"t{n}-{i}"),
            ):
                pass

    threads = [threading.Thread(target=work, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    completed = spanline.tracer.completed
    assert len(completed) == 2000
    assert len({s.name for s in completed}) == 2000


def test_active_and_current_address(spanline_capture: Capture) -> None:
    assert not spanline.tracer.active
    assert spanline.tracer.current_address == ""
    with spanline.span("parent"), spanline.span("child"), spanline.span("grandchild"):
        assert spanline.tracer.active
        assert spanline.tracer.current_address == "parent/child/grandchild"
        current = spanline.tracer.current_span
        assert current is not None
        assert current.name == "grandchild"
    assert not spanline.tracer.active


def test_write_last_completed_tree_as_json(spanline_capture: Capture, tmp_path: Path) -> None:
    assert spanline.tracer.write(tmp_path) is None
    with spanline.start_trace(trace_id="req/7 ../x"):
        with spanline.span("root"):
            spanline.record("k", "v")
            with spanline.span("child"):
                pass
    path = spanline.tracer.write(tmp_path / "out")
    assert path is not None
    assert path.parent == tmp_path / "out"
    assert path.name == "req_7_.._x.json"
    data = json.loads(path.read_text())
    assert data["name"] == "root"
    assert data["records"] == {"k": "v"}
    assert data["children"][0]["name"] == "child"
    assert path.read_text().startswith("{\n  ")  # pretty
