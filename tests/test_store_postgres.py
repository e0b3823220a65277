"""The store on the real PostgreSQL (127.0.0.1:5432, database test): COPY ingest,
many writer processes, outages (a dropped connection and a stopped TCP proxy), a
forked child, migrations and retention.  Each test uses its own schema."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import spanline
import spanline.store
from spanline.export import BatchSpanProcessor
from spanline.store import Retention, StoreError, StoreExporter, StoreWriter, resolve_store
from spanline.store.postgres import PostgresBackend
from spanline.testing import Capture
from tests.test_store_support import (
    DSN,
    PG_URL,
    TcpProxy,
    pg_schema,
    row,
    same_trace,
    wait_for,
    writers,
)

__all__ = ["pg_schema", "writers"]  # fixtures, used through their names

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def url(pg_schema: str) -> str:
    return f"{PG_URL}?schema={pg_schema}"


def test_finished_spans_are_copied_into_postgresql(url: str, spanline_capture: Capture) -> None:
    processor = BatchSpanProcessor(StoreExporter(url, service="shop"))
    spanline.tracer.add_processor(processor)
    try:

        @spanline.operation
        def place_order() -> None:
            spanline.record("order", 7)
            with spanline.span("db.query", attributes={"db.system.name": "postgresql"}):
                pass

        with spanline.start_trace(actor={"type": "user", "id": 42}) as trace_id:
            place_order()
        assert processor.force_flush()
    finally:
        processor.shutdown()
    with spanline.store.open(url) as store:
        rows = store.trace(trace_id)
        assert [r.name for r in rows] == ["place_order", "db.query"]
        by_name = {r.name: r.to_dict() for r in rows}
        spans = {s.name: s for s in spanline_capture.spans}
        assert by_name["db.query"]["attributes"] == {"db.system.name": "postgresql"}
        assert by_name["db.query"]["parent_id"] == spans["place_order"].id
        assert by_name["place_order"]["records"] == {"order": 7}
        assert by_name["place_order"]["frames"][0] == {
            "type": "actor",
            "actor_type": "user",
            "id": "42",
        }
        assert store.trace(spans["db.query"].trace_hex or "") == rows
        summary = store.summary(trace_id)
        assert summary is not None
        assert (summary.root_name, summary.span_count, summary.actor_id) == ("place_order", 2, "42")


WORKER = textwrap.dedent(
    """
    import sys
    from spanline.store import StoreWriter
    from tests.test_store_support import row, same_trace

    url, worker = sys.argv[1], int(sys.argv[2])
    writer = StoreWriter(url)
    for batch in range(10):
        rows = []
        for i in range(100):
            span = worker * 100_000 + batch * 1000 + i + 1
            # every worker writes spans of the same ten shared traces
            shared = row(trace=i % 10 + 1, span=span, parent=1, name=f"w{worker}")
            rows.append(shared)
        writer.submit(rows)
    ok = writer.flush(60)
    writer.close()
    sys.exit(0 if ok and writer.stats()["written"] == 1000 else 1)
    """
)


def test_many_processes_write_one_database(url: str) -> None:
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, url, str(n)], cwd=ROOT) for n in range(3)
    ]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0]
    with spanline.store.open(url) as store:
        assert store.counts() == {"spans": 3000, "traces": 10}
        summaries = store.traces(limit=20).items
        assert sorted(s.span_count for s in summaries) == [300] * 10
        assert {r.name for r in store.spans(limit=3000).items} == {"w0", "w1", "w2"}


def test_a_dropped_connection_is_retried_and_nothing_is_lost(
    url: str, writers: list[StoreWriter], caplog: pytest.LogCaptureFixture
) -> None:
    name = f"spanline-test-{uuid.uuid4().hex[:8]}"
    writer = StoreWriter(url, application_name=name, retry_initial_s=0.05, retry_max_s=0.2)
    writers.append(writer)
    writer.submit([row(1, 1, name="before")])
    assert writer.flush()
    with psycopg.connect(DSN, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s",
            (name,),
        ).fetchone()
    assert killed == (1,)
    with caplog.at_level(logging.ERROR, logger="spanline"):
        writer.submit([row(2, 2, name="after")])
        assert writer.flush(timeout_s=30)
    stats = writer.stats()
    assert (stats["written"], stats["pending"]) == (2, 0)
    assert stats["write_errors"] >= 1
    assert "terminat" in (stats["last_error"] or "").lower()
    assert any("cannot write to the store" in r.getMessage() for r in caplog.records)
    with spanline.store.open(url) as store:
        assert sorted(r.name for r in store.spans().items) == ["after", "before"]


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    made = TcpProxy(("127.0.0.1", 5432)).start()
    yield made
    made.stop()


def test_an_outage_queues_spans_and_they_arrive_once_it_is_back(
    pg_schema: str, proxy: TcpProxy, writers: list[StoreWriter]
) -> None:
    through_proxy = f"{proxy.url}?schema={pg_schema}"
    writer = StoreWriter(through_proxy, connect_timeout_s=1, retry_initial_s=0.05, retry_max_s=0.2)
    writers.append(writer)
    exporter = StoreExporter(writer=writer)
    writer.submit([row(1, 1, name="before")])
    assert writer.flush()
    proxy.stop()  # the database is unreachable from here on
    for n in range(2, 6):
        assert writer.submit([row(n, n, name="during")], wait_s=10)  # parked, not lost
    wait_for(lambda: writer.stats()["write_errors"] >= 2, what="failed attempts")
    stats = exporter.stats()
    assert stats["pending"] == 4
    assert stats["retrying"] is True
    assert stats["last_error"]
    proxy.start()  # back, on the same port
    assert writer.flush(timeout_s=30), writer.stats()
    assert writer.stats()["written"] == 5
    with spanline.store.open(f"{PG_URL}?schema={pg_schema}") as store:
        assert sorted(r.name for r in store.spans().items) == ["before"] + ["during"] * 4


def test_an_older_schema_is_upgraded_in_place(url: str) -> None:
    old = PostgresBackend(resolve_store(url))
    assert old.connect(target_version=1) == 1
    first = row(1, 1, name="checkout", actor_type="user", actor_id="9",
                actor={"type": "user", "id": "9"})  # fmt: skip
    child = same_trace(first, span=2, parent=1, name="pay", start_ms=1, status="error")
    columns = ", ".join(spanline.store.COLUMNS)
    marks = ", ".join(["%s"] * len(spanline.store.COLUMNS))
    old.query(f"INSERT INTO spans ({columns}) VALUES ({marks})".replace("%s", "?"), first)
    old.query(f"INSERT INTO spans ({columns}) VALUES ({marks})".replace("%s", "?"), child)
    old.close()
    with spanline.store.open(url) as store:
        summary = store.summary(first.trace_id)
        assert summary is not None
        assert (summary.root_name, summary.span_count, summary.error_count) == ("checkout", 2, 1)
        assert summary.actor == {"type": "user", "id": "9"}
        assert store.services() == ["shop"]


def test_retention_on_postgresql(url: str, writers: list[StoreWriter]) -> None:
    writer = StoreWriter(url, retention=Retention(max_spans=4, chunk=3, interval_s=0.05))
    writers.append(writer)
    writer.submit([row(n, n, start_ms=n * 1000, name=f"t{n}") for n in range(1, 11)])
    assert writer.flush()
    wait_for(lambda: writer.stats()["retention_deleted"] >= 6, what="retention")
    with spanline.store.open(url) as store:
        assert [r.name for r in store.spans(order="start").items] == ["t7", "t8", "t9", "t10"]


def test_a_value_postgresql_cannot_store_is_refused_alone(
    url: str, writers: list[StoreWriter]
) -> None:
    writer = StoreWriter(url)
    writers.append(writer)
    writer.submit([row(1, 1, name="good"), row(2, 2, name="nul\x00byte"), row(3, 3, name="ok")])
    assert writer.flush()
    assert (writer.stats()["written"], writer.stats()["refused"]) == (2, 1)


FORKED = textwrap.dedent(
    """
    import json, os, sys
    from spanline.store import StoreWriter
    from tests.test_store_support import row

    writer = StoreWriter(sys.argv[1])
    writer.submit([row(1, 1, name="parent")])
    assert writer.flush(30)
    pid = os.fork()
    if pid == 0:
        writer.submit([row(2, 2, name="child")])
        ok = writer.flush(30)
        writer.close()
        sys.exit(0 if ok else 3)  # a normal exit: the interpreter finalizes everything
    _, status = os.waitpid(pid, 0)
    writer.submit([row(3, 3, name="parent-again")])
    ok = writer.flush(30)
    stats = writer.stats()
    writer.close()
    print(json.dumps({"child": os.waitstatus_to_exitcode(status), "ok": ok, **stats}))
    """
)


def test_a_forked_child_never_touches_the_parents_connection(url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", FORKED, url],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert (result["child"], result["ok"]) == (0, True)
    assert (result["written"], result["write_errors"]) == (2, 0)  # no reconnect needed
    with spanline.store.open(url) as store:
        assert sorted(r.name for r in store.spans().items) == ["child", "parent", "parent-again"]


def test_an_unreachable_database_is_a_clear_error_without_the_password() -> None:
    from tests.receiver import free_port

    with pytest.raises(StoreError, match="cannot open the store") as caught:
        spanline.store.open(
            f"postgresql://postgres:s3cret@127.0.0.1:{free_port()}/test", connect_timeout_s=1
        )
    assert "s3cret" not in str(caught.value)
    assert ":***@" in str(caught.value)
