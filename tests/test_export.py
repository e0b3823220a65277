from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import spanline
from spanline.export import (
    BatchSpanProcessor,
    ConsoleExporter,
    ExportResult,
    InMemorySpanExporter,
    JsonLinesExporter,
)
from spanline.testing import Capture


class GatedExporter(InMemorySpanExporter):
    """A real exporter that blocks inside export() until the gate opens (a stand-in
    for an endpoint that hangs), and can be told to fail."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail = False
        self.calls = 0

    def export(self, batch: Sequence[spanline.Span], timeout_millis: int = 30000) -> ExportResult:
        self.calls += 1
        self.entered.set()
        self.gate.wait()
        if self.fail:
            raise ConnectionError("endpoint down")
        return super().export(batch, timeout_millis)


@pytest.fixture
def processors(spanline_capture: Capture) -> Iterator[list[BatchSpanProcessor]]:
    made: list[BatchSpanProcessor] = []
    yield made
    for processor in made:
        processor.shutdown(timeout_millis=2000)


def _make(made: list[BatchSpanProcessor], exporter: object, **options: int) -> BatchSpanProcessor:
    processor = BatchSpanProcessor(exporter, **options)  # type: ignore[arg-type]
    made.append(processor)
    spanline.tracer.add_processor(processor)
    return processor


def _spans(n: int, prefix: str = "s") -> None:
    for i in range(n):
        with spanline.span(f"{prefix}{i}"):
            pass


def test_exports_in_batches_at_the_threshold_and_on_flush(
    processors: list[BatchSpanProcessor],
) -> None:
    exporter = InMemorySpanExporter()
    sizes: list[int] = []
    original = exporter.export

    def recording(batch: Sequence[spanline.Span], timeout_millis: int = 30000) -> ExportResult:
        sizes.append(len(batch))
        return original(batch, timeout_millis)

    exporter.export = recording  # type: ignore[method-assign]
    processor = _make(
        processors,
        exporter,
        max_queue_size=64,
        max_export_batch_size=8,
        schedule_delay_millis=60_000,
    )
    _spans(20)
    assert processor.force_flush(5000)
    names = [s.name for s in exporter.get_finished_spans()]
    assert sorted(names) == sorted(f"s{i}" for i in range(20))
    assert max(sizes) <= 8
    stats = processor.stats()
    assert stats["exported"] == 20
    assert stats["queue_depth"] == 0


def test_schedule_delay_exports_without_a_flush(processors: list[BatchSpanProcessor]) -> None:
    exporter = GatedExporter()
    _make(processors, exporter, max_export_batch_size=512, schedule_delay_millis=50)
    _spans(3)
    assert exporter.entered.wait(10), "the timer never fired"
    for _ in range(200):
        if len(exporter.get_finished_spans()) == 3:
            break
        threading.Event().wait(0.01)
    assert len(exporter.get_finished_spans()) == 3


def test_overload_drops_newest_counts_exactly_and_never_blocks(
    processors: list[BatchSpanProcessor],
) -> None:
    exporter = GatedExporter()
    exporter.gate.clear()  # the exporter hangs until we open the gate
    processor = _make(
        processors,
        exporter,
        max_queue_size=100,
        max_export_batch_size=10,
        schedule_delay_millis=60_000,
        export_timeout_millis=60_000,
    )
    produced = 1000  # 10x the queue
    _spans(produced)  # returns while the exporter is still blocked: never blocks
    assert not exporter.gate.is_set()
    stats = processor.stats()
    assert stats["queue_depth"] <= 100  # memory stays bounded
    dropped = stats["dropped_queue_full"]
    assert dropped >= produced - 100 - 10
    exporter.gate.set()
    assert processor.force_flush(10_000)
    stats = processor.stats()
    exported = len(exporter.get_finished_spans())
    assert exported == stats["exported"]
    assert exported + stats["dropped_queue_full"] == produced  # every span accounted for
    assert stats["dropped_queue_full"] == dropped


def test_raising_exporter_is_counted_and_the_app_carries_on(
    processors: list[BatchSpanProcessor], caplog: pytest.LogCaptureFixture
) -> None:
    exporter = GatedExporter()
    exporter.fail = True
    processor = _make(processors, exporter, max_export_batch_size=5)
    _spans(12)
    assert processor.force_flush(5000)
    stats = processor.stats()
    assert stats["export_failed"] == 12
    assert stats["exported"] == 0
    assert "endpoint down" in caplog.text
    exporter.fail = False  # the endpoint comes back
    _spans(3, "after")
    assert processor.force_flush(5000)
    assert [s.name for s in exporter.get_finished_spans()] == ["after0", "after1", "after2"]


def test_hung_exporter_is_abandoned_after_its_timeout_then_recovers(
    processors: list[BatchSpanProcessor],
) -> None:
    exporter = GatedExporter()
    exporter.gate.clear()
    processor = _make(
        processors,
        exporter,
        max_export_batch_size=5,
        schedule_delay_millis=60_000,
        export_timeout_millis=100,
    )
    _spans(5, "first")  # a full batch: the worker starts an export that hangs
    assert exporter.entered.wait(5)
    _spans(4, "queued")  # these wait in the queue while the call is stuck
    assert not processor.force_flush(300)  # the deadline passes, nothing raises
    stats = processor.stats()
    assert stats["export_timeouts"] >= 1
    assert stats["timed_out_spans"] == 5
    assert exporter.calls == 1  # no second call piled onto the hung one
    exporter.gate.set()  # the endpoint answers again
    assert processor.force_flush(5000)
    names = {s.name for s in exporter.get_finished_spans()}
    assert {f"queued{i}" for i in range(4)} <= names


def _overrunning_export(
    processors: list[BatchSpanProcessor], spans: int
) -> tuple[GatedExporter, BatchSpanProcessor]:
    """A processor whose first export (of ``spans`` spans) hangs past its 50 ms timeout."""
    exporter = GatedExporter()
    exporter.gate.clear()
    processor = _make(
        processors,
        exporter,
        max_export_batch_size=spans,
        schedule_delay_millis=60_000,
        export_timeout_millis=50,
    )
    _spans(spans, "hung")
    assert exporter.entered.wait(5)
    threading.Event().wait(0.2)  # past the call's timeout
    return exporter, processor


def test_an_export_that_returns_late_counts_as_timed_out_and_its_result_is_ignored(
    processors: list[BatchSpanProcessor],
) -> None:
    # The worker calls export itself; nobody looks while the call overruns, so the
    # overrun is counted when it returns.
    exporter, processor = _overrunning_export(processors, 3)
    exporter.gate.set()  # it returns SUCCESS, too late
    assert processor.force_flush(5000)
    stats = processor.stats()
    assert (stats["export_timeouts"], stats["timed_out_spans"], stats["exported"]) == (1, 3, 0)
    assert stats["batches"] == 1


def test_an_overrun_is_counted_once_whoever_sees_it_first(
    processors: list[BatchSpanProcessor], caplog: pytest.LogCaptureFixture
) -> None:
    exporter, processor = _overrunning_export(processors, 4)
    first = processor.stats()  # stats() sees the overrun...
    assert not processor.force_flush(100)  # ...and force_flush does not count it again
    exporter.gate.set()  # nor does the late return
    assert processor.force_flush(5000)
    last = processor.stats()
    for stats in (first, last):
        assert (stats["export_timeouts"], stats["timed_out_spans"]) == (1, 4)
    assert caplog.text.count("did not finish within 50 ms") == 1


def test_shutdown_does_not_wait_out_its_deadline_behind_a_hung_export(
    processors: list[BatchSpanProcessor],
) -> None:
    exporter = GatedExporter()
    exporter.gate.clear()
    processor = _make(
        processors,
        exporter,
        max_export_batch_size=2,
        schedule_delay_millis=60_000,
        export_timeout_millis=100,
    )
    _spans(2, "hung")
    assert exporter.entered.wait(5)
    _spans(3, "queued")
    # the export's own timeout passes long before this deadline: shutdown stops
    # waiting then, abandons what is queued, and does not count a deadline miss
    processor.shutdown(timeout_millis=60_000)
    exporter.gate.set()
    stats = processor.stats()
    assert "shutdown_timeouts" not in stats  # counted only when the deadline passes
    assert (stats["export_timeouts"], stats["timed_out_spans"]) == (1, 2)
    assert stats["abandoned_at_shutdown"] == 3


def test_an_exporter_raising_a_base_exception_does_not_stop_the_worker(
    processors: list[BatchSpanProcessor], caplog: pytest.LogCaptureFixture
) -> None:
    # The worker thread calls export itself: SystemExit (or an asyncio
    # CancelledError) from an exporter must not end it with spans still queued.
    class Exits(InMemorySpanExporter):
        def export(self, batch: Sequence[spanline.Span], timeout_millis: int = 0) -> ExportResult:
            if not self.get_finished_spans() and batch[0].name == "first0":
                raise SystemExit(3)
            return super().export(batch, timeout_millis)

    exporter = Exits()
    processor = _make(processors, exporter, max_export_batch_size=2)
    _spans(2, "first")
    _spans(3, "later")
    assert processor.force_flush(5000)
    stats = processor.stats()
    assert (stats["export_failed"], stats["exported"]) == (2, 3)
    assert [s.name for s in exporter.get_finished_spans()] == ["later0", "later1", "later2"]
    assert "SystemExit" in caplog.text


def test_shutdown_waits_for_an_export_that_is_only_a_little_late(
    processors: list[BatchSpanProcessor],
) -> None:
    # Past its timeout but well short of twice it: shutdown waits for it and exports
    # the rest instead of abandoning the queue.
    class Slow(InMemorySpanExporter):
        def export(self, batch: Sequence[spanline.Span], timeout_millis: int = 0) -> ExportResult:
            if batch[0].name == "slow0":
                threading.Event().wait(0.3)
            return super().export(batch, timeout_millis)

    processor = _make(
        processors,
        Slow(),
        max_export_batch_size=2,
        schedule_delay_millis=60_000,
        export_timeout_millis=250,
    )
    _spans(2, "slow")
    _spans(3, "queued")
    processor.shutdown(timeout_millis=30_000)
    stats = processor.stats()
    assert (stats["export_timeouts"], stats["timed_out_spans"], stats["exported"]) == (1, 2, 3)
    assert "abandoned_at_shutdown" not in stats


def test_shutdown_honours_its_deadline_and_later_spans_are_counted(
    processors: list[BatchSpanProcessor],
) -> None:
    exporter = GatedExporter()
    exporter.gate.clear()
    processor = _make(
        processors,
        exporter,
        max_export_batch_size=2,
        schedule_delay_millis=60_000,
        export_timeout_millis=60_000,
    )
    _spans(2)
    assert exporter.entered.wait(5)
    processor.shutdown(timeout_millis=200)  # returns although the export still hangs
    assert not exporter.gate.is_set()
    assert processor.stats()["shutdown_timeouts"] == 1
    _spans(3, "late")
    assert processor.stats()["dropped_after_shutdown"] == 3
    processor.shutdown()  # a second call does nothing
    exporter.gate.set()


def test_constructor_validates_its_options() -> None:
    exporter = InMemorySpanExporter()
    with pytest.raises(spanline.ConfigError, match="max_queue_size=0 is invalid"):
        BatchSpanProcessor(exporter, max_queue_size=0)
    with pytest.raises(spanline.ConfigError, match="must not exceed the queue size"):
        BatchSpanProcessor(exporter, max_queue_size=10, max_export_batch_size=20)
    with pytest.raises(TypeError, match="no export"):
        BatchSpanProcessor(object())  # type: ignore[arg-type]


def _in_forked_child(work: Callable[[], Any]) -> Any:
    """Run ``work`` in a real forked child; return its JSON-able result (the child's
    exit status must be 0)."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.write(write_end, json.dumps(work()).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    reply = b""
    while chunk := os.read(read_end, 4096):
        reply += chunk
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    return json.loads(reply)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_starts_with_an_empty_queue_and_its_own_worker(
    processors: list[BatchSpanProcessor], tmp_path: Path
) -> None:
    path = tmp_path / "spans.jsonl"
    processor = _make(
        processors, JsonLinesExporter(path), max_export_batch_size=512, schedule_delay_millis=60_000
    )
    _spans(5, "parent-before-fork")  # queued, not yet exported

    def child() -> dict[str, object]:
        depth = processor.stats()["queue_depth"]
        _spans(3, "child")
        return {"depth": depth, "flushed": processor.force_flush(10_000)}

    assert _in_forked_child(child) == {"depth": 0, "flushed": True}
    assert processor.force_flush(10_000)
    names = [json.loads(line)["name"] for line in path.read_text().splitlines()]
    assert sorted(names) == sorted(
        [f"parent-before-fork{i}" for i in range(5)] + [f"child{i}" for i in range(3)]
    )


def test_spans_are_flushed_at_interpreter_exit(tmp_path: Path) -> None:
    path = tmp_path / "exit.jsonl"
    script = textwrap.dedent(f"""
        import spanline
        from spanline.export import BatchSpanProcessor, JsonLinesExporter
        spanline.tracer.add_processor(BatchSpanProcessor(
            JsonLinesExporter({str(path)!r}), schedule_delay_millis=60000))
        for i in range(7):
            with spanline.span(f"exit{{i}}"):
                pass
        # no shutdown() call: atexit must flush
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    names = [json.loads(line)["name"] for line in path.read_text().splitlines()]
    assert names == [f"exit{i}" for i in range(7)]


def test_jsonl_lines_are_flat_records(processors: list[BatchSpanProcessor], tmp_path: Path) -> None:
    path = tmp_path / "deep" / "spans.jsonl"
    processor = _make(processors, JsonLinesExporter(path))
    with spanline.start_trace(actor={"type": "user", "id": 3}), spanline.span("root") as root:
        with spanline.span("child") as child:
            child.set_attribute("k", [1, 2])
            spanline.record("note", {"a": 1})
    assert processor.force_flush(5000)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["name"] for line in lines] == ["child", "root"]
    child_line = lines[0]
    assert isinstance(root, spanline.Span)
    assert child_line["parent_id"] == root.id
    assert child_line["w3c_parent_span_id"] == root.span_hex
    assert child_line["trace_id"] == root.trace_id
    assert child_line["attributes"] == {"k": [1, 2]}
    assert child_line["records"] == {"note": {"a": 1}}
    assert child_line["actor"] == {"type": "user", "id": "3"}
    assert "children" not in child_line


def test_console_exporter_prints_each_finished_trace_as_a_tree(
    processors: list[BatchSpanProcessor],
) -> None:
    out = io.StringIO()
    processor = _make(processors, ConsoleExporter(out))
    with spanline.start_trace(actor={"type": "user", "id": 9}), spanline.span("checkout"):
        with spanline.span("charge"):
            pass
    assert processor.force_flush(5000)
    text = out.getvalue()
    assert text.startswith("trace tr_")
    assert "checkout" in text
    assert "[user:9]" in text
    assert "└── charge" in text
    assert text.count("checkout") == 1  # printed once, with its root


def test_options_come_from_the_environment(
    processors: list[BatchSpanProcessor], monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = InMemorySpanExporter()
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "64")
    monkeypatch.setenv("OTEL_SPAN_BATCH_SIZE", "4")  # Keryx's name
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "60000")
    processor = _make(processors, exporter)
    # the limits are read (how many spans overflow depends on how fast the worker
    # drains, so the exact drop count is not asserted here; test_overload does)
    assert (processor._max_queue, processor._batch_size, processor._delay_s) == (64, 4, 60.0)
    _spans(100)
    assert processor.force_flush(5000)
    stats = processor.stats()
    assert stats["exported"] + stats["dropped_queue_full"] == 100
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "128")
    with pytest.raises(spanline.ConfigError, match="OTEL_BSP_MAX_EXPORT_BATCH_SIZE"):
        BatchSpanProcessor(exporter)
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "lots")
    with pytest.raises(spanline.ConfigError, match="OTEL_BSP_MAX_EXPORT_BATCH_SIZE='lots'"):
        BatchSpanProcessor(exporter)


def test_exporter_setting_installs_and_replaces_the_pipeline(
    spanline_capture: Capture, capsys: pytest.CaptureFixture[str]
) -> None:
    from spanline.export.setup import installed

    spanline.configure(exporter="console")
    (console,) = installed()
    from spanline.core.pipeline import PIPELINE

    assert console in PIPELINE.processors
    with spanline.span("printed"):
        pass
    assert console.force_flush(5000)
    assert "printed" in capsys.readouterr().out
    spanline.configure(exporter="none")
    assert installed() == []
    assert console.stats()["dropped_after_shutdown"] == 0
    with pytest.raises(spanline.ConfigError, match="exporter 'zipkin' is not supported"):
        spanline.configure(exporter="zipkin")
    with pytest.raises(spanline.ConfigError, match="propagator 'b3' is not supported"):
        spanline.configure(propagators="tracecontext,b3")
    assert spanline.configure(propagators=["baggage"]).propagators == ("baggage",)


def test_otel_traces_exporter_at_import_sends_spans(tmp_path: Path) -> None:
    from tests.receiver import Receiver

    server = Receiver(0).start()
    try:
        script = textwrap.dedent("""
            import spanline
            with spanline.start_trace(actor={"type": "user", "id": 9}):
                with spanline.span("from-env"):
                    pass
        """)
        env = {
            **os.environ,
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.port}",
            "OTEL_SERVICE_NAME": "env-service",
            "OTEL_BSP_SCHEDULE_DELAY": "60000",
        }
        subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
        (span,) = server.spans()  # flushed at exit
        assert span.name == "from-env"
        resource = server.received[0].request().resource_spans[0].resource
        names = {kv.key: kv.value.string_value for kv in resource.attributes}
        assert names["service.name"] == "env-service"
    finally:
        server.stop()


def test_spanline_stats_reports_every_processor_and_exporter(
    processors: list[BatchSpanProcessor],
) -> None:
    from tests.receiver import Receiver

    server = Receiver(0).start()
    try:
        from spanline.export.otlp_http import OtlpHttpExporter

        exporter = OtlpHttpExporter(endpoint=server.endpoint)
        processor = _make(
            processors,
            exporter,
            max_queue_size=10,
            max_export_batch_size=5,
            schedule_delay_millis=60_000,
        )
        _spans(4)
        assert processor.force_flush(5000)
        report = spanline.stats()
        json.dumps(report)  # JSON-ready
        ((_name, batch),) = [
            (k, v)
            for k, v in report["processors"].items()  # type: ignore[union-attr]
            if k.startswith("BatchSpanProcessor")
        ]
        assert batch["started"] == 4
        assert batch["ended"] == 4
        assert batch["exported"] == 4
        assert batch["queue_depth"] == 0
        assert batch["max_export_ms"] > 0
        assert batch["exporter"]["name"] == "OtlpHttpExporter"
        assert batch["exporter"]["exported"] == 4
        assert report["pipeline"]["processors"] == 2  # type: ignore[index]
        exporter.shutdown()
    finally:
        server.stop()


class _Hangs:
    """A real exporter whose first call hangs until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0
        self.shut = False
        self.calls_after_shutdown = 0

    def export(self, batch: Sequence[spanline.Span], timeout_millis: int = 30000) -> ExportResult:
        self.calls += 1
        if self.shut:
            self.calls_after_shutdown += 1
        if self.calls == 1:
            self.release.wait(10)
        return ExportResult.SUCCESS

    def shutdown(self) -> None:
        self.shut = True

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _accounted(stats: dict[str, Any]) -> int:
    return int(
        sum(
            stats[k]
            for k in (
                "exported",
                "export_failed",
                "timed_out_spans",
                "dropped_queue_full",
                "dropped_after_shutdown",
                "queue_depth",
            )
        )
        + stats.get("abandoned_at_shutdown", 0)
    )


def test_shutdown_behind_a_hung_export_counts_every_span_once(
    processors: list[BatchSpanProcessor],
) -> None:
    exporter = _Hangs()
    processor = _make(
        processors,
        exporter,
        max_export_batch_size=10,
        schedule_delay_millis=50,
        export_timeout_millis=200,
    )
    _spans(10, "first")
    for _ in range(500):
        if processor.stats()["export_timeouts"]:
            break
        threading.Event().wait(0.01)
    _spans(25, "stuck")  # queued behind the hung call
    processor.shutdown(timeout_millis=5000)
    stats = processor.stats()
    assert stats["ended"] == 35
    assert stats["abandoned_at_shutdown"] == 25
    assert _accounted(stats) == 35
    exporter.release.set()


def test_shutdown_deadline_mid_drain_stops_exporting_and_counts_once(
    processors: list[BatchSpanProcessor],
) -> None:
    class Slow(_Hangs):
        def export(
            self, batch: Sequence[spanline.Span], timeout_millis: int = 30000
        ) -> ExportResult:
            if self.shut:
                self.calls_after_shutdown += 1
            threading.Event().wait(0.15)
            return ExportResult.SUCCESS

    exporter = Slow()
    processor = _make(
        processors,
        exporter,
        max_queue_size=1000,
        max_export_batch_size=10,
        schedule_delay_millis=60_000,
    )
    _spans(50)
    processor.shutdown(timeout_millis=100)
    threading.Event().wait(1.0)  # let the batch that was being exported finish
    stats = processor.stats()
    assert exporter.calls_after_shutdown == 0
    assert _accounted(stats) == 50
    assert stats["abandoned_at_shutdown"] >= 30


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_while_an_exporter_lock_is_held(
    processors: list[BatchSpanProcessor], tmp_path: Path
) -> None:
    exporter = JsonLinesExporter(tmp_path / "spans.jsonl")
    processor = _make(processors, exporter, schedule_delay_millis=60_000)

    def child() -> list[object]:
        _spans(3, "child")
        return [processor.force_flush(5000), processor.stats()["exported"]]

    with exporter._lock:  # another thread mid-write at the moment of the fork
        result = _in_forked_child(child)
    assert result == [True, 3]  # the child's exporter lock was renewed


class FlushingExporter(InMemorySpanExporter):
    """An exporter with its own buffer: force_flush delivers it (or misbehaves)."""

    def __init__(self, behaviour: str) -> None:
        super().__init__()
        self.behaviour = behaviour
        self.flush_calls: list[int] = []
        self.release = threading.Event()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.flush_calls.append(timeout_millis)
        if self.behaviour == "raise":
            raise ConnectionError("buffer could not be sent")
        if self.behaviour == "hang":
            self.release.wait(30)
        return self.behaviour == "ok"


def test_force_flush_reaches_the_exporter_within_the_deadline(
    processors: list[BatchSpanProcessor],
) -> None:
    ok, raising, hanging = (FlushingExporter(b) for b in ("ok", "raise", "hang"))
    made = [_make(processors, exporter) for exporter in (ok, raising, hanging)]
    _spans(3)
    assert made[0].force_flush(5000)
    assert len(ok.get_finished_spans()) == 3
    assert ok.flush_calls
    assert 0 < ok.flush_calls[0] <= 5000  # what was left of the deadline
    assert not made[1].force_flush(5000)  # the error is counted, never raised
    assert made[1].stats()["flush_errors"] == 1
    started = time.monotonic()
    assert not made[2].force_flush(300)  # an exporter that ignores its timeout
    assert time.monotonic() - started < 2
    assert made[2].stats()["flush_errors"] == 1
    threads = threading.active_count()
    for _ in range(10):  # while it still hangs, later flushes start no more threads
        assert not made[2].force_flush(20)
    assert threading.active_count() <= threads
    assert len(hanging.flush_calls) == 1
    hanging.release.set()
