"""The store on a real SQLite file: the exporter end to end, WAL, migrations,
retention, and errors that must never reach the application."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import spanline
import spanline.store
from spanline.core.trace import frames_of
from spanline.export import BatchSpanProcessor, ExportResult
from spanline.store import (
    Retention,
    SchemaTooNewError,
    StoreError,
    StoreExporter,
    StoreWriter,
    resolve_store,
)
from spanline.store.sqlite import SqliteBackend
from spanline.testing import Capture
from tests.test_store_support import MS, T0, row, same_trace, wait_for, writers

__all__ = ["writers"]  # a fixture, used through its name


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store" / "spans.db"


@pytest.fixture
def processor(db: Path, spanline_capture: Capture) -> Iterator[BatchSpanProcessor]:
    made = BatchSpanProcessor(StoreExporter(db, service="shop"))
    spanline.tracer.add_processor(made)
    yield made
    made.shutdown(timeout_millis=5000)


@spanline.operation
def place_order(product: str) -> str:
    spanline.record("product", product)
    with spanline.span("db.query", kind=spanline.SpanKind.CLIENT) as query:
        query.set_attribute("db.system.name", "sqlite")
        query.add_event("rows", {"count": 1})
    charge(product)
    return "ok"


@spanline.operation
def charge(product: str) -> None:
    if product == "broken":
        raise ValueError("card declined")


def test_finished_spans_become_rows_with_every_column(
    processor: BatchSpanProcessor, db: Path, spanline_capture: Capture
) -> None:
    with spanline.start_trace(actor={"type": "user", "id": 42}):
        place_order("book")
        with pytest.raises(ValueError, match="card declined"):
            place_order("broken")
    assert processor.force_flush()
    spans = spanline_capture.spans
    assert processor.stats()["exporter"]["written"] == len(spans) == 6
    with spanline.store.open(db) as store:
        for span in spans:
            stored = store.span(span.id or "")
            assert stored is not None
            got = stored.to_dict()
            assert got["trace_id"] == span.trace_id
            assert got["trace_hex"] == span.trace_hex
            assert got["span_hex"] == span.span_hex
            assert got["parent_id"] == span.parent_id
            assert got["parent_hex"] == (
                f"{span.parent_span_id:016x}" if span.parent_span_id else None
            )
            assert (got["name"], got["type"], got["service"]) == (span.name, span.type, "shop")
            assert got["kind"] == span.kind.name.lower()
            assert got["status"] == span.status.name.lower()
            assert (got["start_ns"], got["end_ns"]) == (span.start_ns, span.end_ns)
            assert got["duration_ns"] == span.end_ns - span.start_ns
            assert (got["actor_type"], got["actor_id"]) == ("user", "42")
            assert got["actor"] == {"type": "user", "id": "42"}
            assert got["attributes"] == span.attributes
            assert got["records"] == span.records
            assert [e["name"] for e in got["events"]] == [e.name for e in span.events]
            expected_frames = frames_of(span) if span.type != "span" else []
            assert got["frames"] == expected_frames
        failed = [s for s in spans if s.name == "charge" and s.status_message]
        assert store.span(failed[0].id or "").status_message == "ValueError: card declined"  # type: ignore[union-attr]
        assert store.traces().items[0].span_count == 6


def test_the_file_is_in_wal_mode_and_created_with_its_folder(
    processor: BatchSpanProcessor, db: Path
) -> None:
    with spanline.start_trace():
        place_order("book")
    assert processor.force_flush()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        version = conn.execute("SELECT value FROM spanline_meta").fetchone()[0]
    assert version == str(spanline.store.SCHEMA_VERSION)


def test_an_older_file_is_upgraded_in_place(db: Path, writers: list[StoreWriter]) -> None:
    old = SqliteBackend(resolve_store(db))
    assert old.connect(target_version=1) == 1
    first = row(1, 1, name="checkout", duration_ms=20, actor_type="user", actor_id="42",
                actor={"type": "user", "id": "42"})  # fmt: skip
    child = same_trace(first, span=2, parent=1, name="pay", start_ms=1, status="error")
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "spans" in tables
        assert "traces" not in tables
        columns = ", ".join(spanline.store.COLUMNS)
        marks = ", ".join("?" * len(spanline.store.COLUMNS))
        conn.executemany(f"INSERT INTO spans ({columns}) VALUES ({marks})", [first, child])
    old.close()
    with spanline.store.open(db) as store:  # upgrades to the current version
        summary = store.summary(first.trace_id)
        assert summary is not None
        assert (summary.root_name, summary.span_count, summary.error_count) == ("checkout", 2, 1)
        assert (summary.actor_type, summary.actor_id, summary.rooted) == ("user", "42", True)
        assert store.services() == ["shop"]
        writer = StoreWriter(db)
        writers.append(writer)
        writer.submit([same_trace(first, span=3, parent=1, name="ship", start_ms=30)])
        assert writer.flush()
        summary = store.summary(first.trace_id)
        assert summary is not None
        assert (summary.span_count, summary.end_ns) == (3, T0 + 31 * MS)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT value FROM spanline_meta").fetchone()[0] == "2"


def test_a_newer_schema_is_refused_with_a_clear_message(
    db: Path, writers: list[StoreWriter], caplog: pytest.LogCaptureFixture
) -> None:
    spanline.store.open(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE spanline_meta SET value = '99'")
    with pytest.raises(SchemaTooNewError, match=r"schema version 99.*upgrade spanline"):
        spanline.store.open(db)
    writer = StoreWriter(db, retry_initial_s=0.05, retry_max_s=0.1)
    writers.append(writer)
    exporter = StoreExporter(writer=writer)
    with caplog.at_level(logging.ERROR, logger="spanline"):
        assert writer.submit([row()], wait_s=10)  # parked, not raised
        wait_for(lambda: writer.stats()["write_errors"] >= 1, what="a failed write")
    stats = exporter.stats()
    assert "schema version 99" in stats["last_error"]
    assert stats["pending"] == 1
    assert stats["retrying"] is True
    assert any(str(db) in r.getMessage() and "99" in r.getMessage() for r in caplog.records)


def test_a_file_that_is_not_a_store_is_named_as_such(tmp_path: Path) -> None:
    other = tmp_path / "app.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE spans (id INTEGER)")
    with pytest.raises(StoreError, match=r"app\.db is not a spanline store"):
        spanline.store.open(other)
    with pytest.raises(StoreError, match="there is no store at"):
        spanline.store.open(tmp_path / "missing.db", create=False)


def test_retention_by_count_removes_whole_oldest_traces(
    db: Path, writers: list[StoreWriter]
) -> None:
    writer = StoreWriter(db, retention=Retention(max_spans=12, chunk=5, interval_s=0.05))
    writers.append(writer)
    rows = []
    for trace in range(10):  # 10 traces x 3 spans, one second apart
        root, at = trace * 10 + 1, trace * 1000
        first = row(trace + 1, root, start_ms=at, name=f"t{trace}")
        rows += [
            first,
            same_trace(first, span=root + 1, parent=root, start_ms=at + 1),
            same_trace(first, span=root + 2, parent=root, start_ms=at + 2),
        ]
    writer.submit(rows)
    assert writer.flush()
    wait_for(lambda: writer.stats()["retention_deleted"] >= 18, what="retention")
    with spanline.store.open(db) as store:
        assert store.counts() == {"spans": 12, "traces": 4}
        kept = [s.root_name for s in store.traces(order="start").items]
        assert kept == ["t6", "t7", "t8", "t9"]
        assert all(s.span_count == 3 for s in store.traces().items)


def test_retention_by_age(db: Path, writers: list[StoreWriter]) -> None:
    import time

    now_ms = (time.time_ns() - T0) // MS
    old = [row(i + 1, i + 1, start_ms=now_ms - 7_200_000 + i, name="old") for i in range(7)]
    new = [row(i + 50, i + 50, start_ms=now_ms - 1000 + i, name="new") for i in range(3)]
    writer = StoreWriter(db, retention=Retention(max_age=3600, chunk=3, interval_s=0.05))
    writers.append(writer)
    writer.submit(old + new)
    assert writer.flush()
    wait_for(lambda: writer.stats()["retention_deleted"] >= 7, what="retention")
    with spanline.store.open(db) as store:
        assert [r.name for r in store.spans().items] == ["new"] * 3


def test_a_trace_larger_than_a_chunk_is_removed_in_steps(db: Path) -> None:
    big = row(1, 1, name="big")
    rows = [big] + [same_trace(big, span=i, parent=1, start_ms=i) for i in range(2, 26)]
    backend = SqliteBackend(resolve_store(db))
    backend.connect()
    try:
        backend.write(rows)
        backend.write([row(2, 100, start_ms=5000, name="newest")])
        steps = []
        while deleted := backend.delete_oldest(10, None):
            steps.append(deleted)
        assert steps == [10, 10, 5]
        # the trace of the newest row stays, so the live-update cursor keeps growing
        assert backend.count_spans() == 1
        assert backend.query("SELECT name FROM spans", []) == [("newest",)]
        assert backend.query("SELECT count(*) FROM traces", [])[0][0] == 1
    finally:
        backend.close()


def test_retention_never_rewinds_the_live_update_cursor(
    db: Path, writers: list[StoreWriter]
) -> None:
    writer = StoreWriter(db, retention=Retention(max_age=60, interval_s=0.05))
    writers.append(writer)
    writer.submit([row(n, n, start_ms=n, name=f"old{n}") for n in range(1, 6)])  # 2023
    assert writer.flush()
    wait_for(lambda: writer.stats()["retention_deleted"] >= 4, what="retention")
    with spanline.store.open(db) as store:
        assert [r.name for r in store.spans().items] == ["old5"]
        cursor = store.cursor()
        assert cursor == 5
        writer.submit([row(9, 9, name="new")])
        assert writer.flush()
        assert [r.name for r in store.changes(cursor).spans] == ["new"]


def test_a_full_disk_is_an_error_in_stats_and_logs_never_in_the_app(
    db: Path, writers: list[StoreWriter], caplog: pytest.LogCaptureFixture
) -> None:
    # max_page_count is SQLite's own way to make a database full: the write fails
    # with the same SQLITE_FULL error a full disk gives.
    writer = StoreWriter(db, pragmas={"max_page_count": 24}, retry_initial_s=0.05, retry_max_s=0.1)
    writers.append(writer)
    exporter = StoreExporter(writer=writer)
    big = [row(i + 1, i + 1, attributes={"payload": "x" * 200}) for i in range(2000)]
    with caplog.at_level(logging.ERROR, logger="spanline"):
        assert writer.submit(big, wait_s=10)
        wait_for(lambda: writer.stats()["write_errors"] >= 1, what="a failed write")
    stats = exporter.stats()
    assert "full" in stats["last_error"]
    assert stats["pending"] == 2000
    assert any("disk or the file's size limit is full" in r.getMessage() for r in caplog.records)
    writer.close(timeout_s=0.2)
    assert writer.stats()["abandoned_at_close"] == 2000
    assert exporter.export([], 1000) is ExportResult.SUCCESS


def _make_read_only(path: Path) -> None:
    os.chmod(path, 0o444)
    if os.access(path, os.W_OK):  # root ignores modes: make the file immutable instead
        if shutil.which("chattr") is None:
            pytest.skip("running as root without chattr: cannot make a file read-only")
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot make the file read-only here: {done.stderr!r}")


def test_a_read_only_file_is_an_error_in_stats_and_logs(
    db: Path, writers: list[StoreWriter], caplog: pytest.LogCaptureFixture
) -> None:
    spanline.store.open(db).close()
    _make_read_only(db)
    try:
        writer = StoreWriter(db, retry_initial_s=0.05, retry_max_s=0.1)
        writers.append(writer)
        with caplog.at_level(logging.ERROR, logger="spanline"):
            assert writer.submit([row()], wait_s=10)
            wait_for(lambda: writer.stats()["write_errors"] >= 1, what="a failed write")
        stats = writer.stats()
        assert stats["pending"] == 1
        assert "read" in stats["last_error"].lower()
        assert any(str(db) in r.getMessage() for r in caplog.records)
        writer.close(timeout_s=0.2)
    finally:
        subprocess.run(["chattr", "-i", str(db)], capture_output=True, check=False)
        os.chmod(db, 0o644)


def test_a_row_the_database_refuses_does_not_lose_the_batch(
    db: Path, writers: list[StoreWriter], caplog: pytest.LogCaptureFixture
) -> None:
    writer = StoreWriter(db)
    writers.append(writer)
    bad = row(2, 2, name="bad")._replace(start_ns=2**64, end_ns=2**64)  # no INTEGER holds it
    with caplog.at_level(logging.WARNING, logger="spanline"):
        writer.submit([row(1, 1, name="good"), bad, row(3, 3, name="good")])
        assert writer.flush()
    assert (writer.stats()["written"], writer.stats()["refused"]) == (2, 1)
    assert any("refused 1 spans" in r.getMessage() for r in caplog.records)
    with spanline.store.open(db) as store:
        assert [r.name for r in store.spans().items] == ["good", "good"]


def test_the_queue_is_bounded_while_the_store_is_unreachable(
    tmp_path: Path, writers: list[StoreWriter]
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    writer = StoreWriter(blocker / "spans.db", max_pending=5, retry_initial_s=0.05)
    writers.append(writer)
    exporter = StoreExporter(writer=writer)
    assert writer.submit([row(1, 1), row(2, 2), row(3, 3)], wait_s=10)
    assert not writer.submit([row(4, 4), row(5, 5), row(6, 6)])
    stats = exporter.stats()
    assert (stats["pending"], stats["dropped"]) == (3, 3)
    writer.close(timeout_s=0.2)
    assert not writer.submit([row(7, 7)])
    assert writer.stats()["dropped"] == 4


def test_a_forked_child_writes_through_its_own_connection(
    db: Path, writers: list[StoreWriter]
) -> None:
    writer = StoreWriter(db)
    writers.append(writer)
    writer.submit([row(1, 1, name="parent-before")])
    assert writer.flush()
    pid = os.fork()
    if pid == 0:  # the child: its own runtime, thread and connection
        ok = False
        try:
            writer.submit([row(2, 2, name="child")])
            ok = writer.flush(timeout_s=20) and writer.stats()["written"] == 1
            writer.close(timeout_s=5)
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    writer.submit([row(3, 3, name="parent-after")])
    assert writer.flush()
    assert writer.stats()["written"] == 2
    with spanline.store.open(db) as store:
        assert sorted(r.name for r in store.spans().items) == [
            "child",
            "parent-after",
            "parent-before",
        ]


def test_json_columns_hold_values_json_cannot(db: Path, writers: list[StoreWriter]) -> None:
    from spanline.store import json_text

    text = json_text({"nan": float("nan"), "obj": object(), 3: "x"})
    assert text is not None
    assert json.loads(text)["nan"] == "nan"
    writer = StoreWriter(db)
    writers.append(writer)
    writer.submit([row(attributes=text)])
    assert writer.flush()
