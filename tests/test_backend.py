from __future__ import annotations

import json
import threading

import pytest

import spanline
from spanline import StatusCode
from spanline.testing import Capture


@pytest.fixture
def backend() -> spanline.TraceBackend:
    backend = spanline.TraceBackend.instance()
    backend.reset()
    return backend


def test_lifecycle_events_become_a_span_tree(
    backend: spanline.TraceBackend, spanline_capture: Capture
) -> None:
    assert backend is spanline.TraceBackend.instance()
    assert backend.handle_event("task.started", {"task_id": 7, "name": "import", "rows": 10})
    assert backend.handle_event("step.started", {"task_id": 7, "step_id": 1, "name": "fetch"})
    assert backend.handle_event("step.before_fetch", {"task_id": 7, "step_id": 1, "url": "x"})
    assert backend.handle_event("step.after_fetch", {"task_id": 7, "step_id": 1})
    assert backend.handle_event("step.completed", {"task_id": 7, "step_id": 1})
    assert backend.handle_event("step.started", {"task_id": 7, "step_id": 2, "name": "store"})
    assert backend.handle_event("step.failed", {"task_id": 7, "step_id": 2, "error": "disk full"})
    assert backend.handle_event("task.completed", {"task_id": 7})
    # the spans went through the normal pipeline
    spanline_capture.assert_outline("""
        import
          fetch
          store
    """)
    task = spanline_capture.find("import")
    fetch = spanline_capture.find("fetch")
    store = spanline_capture.find("store")
    assert task.attributes["task_id"] == "7"
    assert task.attributes["payload.rows"] == 10
    assert [e.name for e in fetch.events] == ["step.before_fetch", "step.after_fetch"]
    assert fetch.events[0].attributes == {"url": "x"}
    assert store.status == StatusCode.ERROR
    assert store.status_message == "disk full"
    assert fetch.trace_id == task.trace_id
    assert spanline.tracer.last_completed is task
    # and are kept for export() until handed over
    exported = backend.export()
    json.dumps(exported)
    assert exported["metadata"]["backend"] == "trace"
    assert exported["metadata"]["trace_count"] == 1
    assert exported["metadata"]["instance_id"]
    (trees,) = exported["traces"].values()
    assert trees[0]["name"] == "import"
    assert [c["name"] for c in trees[0]["children"]] == ["fetch", "store"]
    assert backend.export()["traces"] == {}  # exported traces left memory
    stats = backend.stats()
    assert stats["events_handled"] == 8
    assert stats["traces_exported"] == 1
    assert stats["active_spans"] == 0


def test_standalone_events_and_bad_input_never_raise(
    backend: spanline.TraceBackend, spanline_capture: Capture
) -> None:
    assert backend.handle_event("cache.flushed", {"size": 3})
    assert spanline_capture.find("cache.flushed").events[0].attributes == {"size": 3}
    assert not backend.handle_event("task.completed", {"task_id": 404})  # never started
    assert not backend.handle_event("task.started", {})  # no id
    assert not backend.handle_event("task.started", ["not", "a", "mapping"])  # type: ignore[arg-type]
    assert not backend.handle_event("", {})
    assert not backend.handle_event("step.before_x", {"step_id": 9})  # no open span
    backend.handle_event("task.started", {"task_id": 1})
    assert not backend.handle_event("task.started", {"task_id": 1})  # twice
    assert backend.stats()["events_rejected"] == 6


def test_finished_traces_are_bounded(spanline_capture: Capture) -> None:
    backend = spanline.TraceBackend(max_traces=3)
    for i in range(5):
        backend.handle_event("task.started", {"task_id": i})
        backend.handle_event("task.completed", {"task_id": i})
    assert backend.stats()["finished_traces"] == 3
    assert backend.stats()["traces_dropped"] == 2
    with pytest.raises(ValueError, match="max_traces"):
        spanline.TraceBackend(max_traces=0)


def test_thread_safety(backend: spanline.TraceBackend, spanline_capture: Capture) -> None:
    spanline.configure(ring_size=5000)

    def worker(n: int) -> None:
        for i in range(50):
            task = f"{n}-{i}"
            backend.handle_event("task.started", {"task_id": task})
            backend.handle_event("step.started", {"task_id": task, "step_id": 1})
            backend.handle_event("step.completed", {"task_id": task, "step_id": 1})
            backend.handle_event("task.completed", {"task_id": task})

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = backend.stats()
    assert stats["events_handled"] == 8 * 50 * 4
    assert stats["events_rejected"] == 0
    assert stats["finished_traces"] == 400
    assert all(len(r.children) == 1 for r in spanline_capture.roots)


def test_router_routes_enables_and_samples_per_subject(spanline_capture: Capture) -> None:
    tasks = spanline.TraceBackend()
    everything = spanline.TraceBackend()
    router = spanline.EventRouter()
    router.route("task.*", tasks, sampling_rate=0.5)
    off = router.route("*", everything, enabled=False)
    for i in range(200):
        router.publish("task.started", {"task_id": i})
        router.publish("task.step.started", {"task_id": i, "step_id": 1})
        router.publish("task.step.completed", {"task_id": i, "step_id": 1})
        router.publish("task.completed", {"task_id": i})
    stats = tasks.stats()
    assert stats["events_rejected"] == 0  # tasks, their steps and their ends kept together
    assert 60 < stats["finished_traces"] < 140
    assert everything.stats()["events_handled"] == 0
    off.enabled = True
    assert router.publish("cache.flushed", {}) == 1
    with pytest.raises(ValueError, match="sampling_rate"):
        router.route("x", tasks, sampling_rate=2)
    with pytest.raises(TypeError, match="handle_event"):
        router.route("x", object())  # type: ignore[arg-type]


def test_export_keeps_every_trace_whole(spanline_capture: Capture) -> None:
    spanline.configure(ring_size=0)
    backend = spanline.TraceBackend()
    for i in range(300):
        backend.handle_event("task.started", {"task_id": i, "name": f"t{i}"})
        for step in range(3):
            backend.handle_event("step.started", {"task_id": i, "step_id": step})
            backend.handle_event("step.completed", {"task_id": i, "step_id": step})
        backend.handle_event("task.completed", {"task_id": i})
    traces = backend.export()["traces"]
    assert len(traces) == 300
    names = sorted(tree[0]["name"] for tree in traces.values())
    assert names == sorted(f"t{i}" for i in range(300))
    assert all(len(tree[0]["children"]) == 3 for tree in traces.values())
