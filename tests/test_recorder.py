"""spanline.Recorder on a real SQLite file, the real PostgreSQL server (127.0.0.1:5432,
db test) and SQLAlchemy engines over both."""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from psycopg.rows import dict_row

import spanline
from spanline.store.recorder import FIELDS, Recorder, record_params
from spanline.testing import Capture
from tests.receiver import free_port

SECRET = "card-4242-never-in-a-span"
DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

FULL_SQLITE = """CREATE TABLE {t} (
    id TEXT PRIMARY KEY, name TEXT, status TEXT, params TEXT, trace_id TEXT,
    actor_type TEXT, actor_id TEXT, trace TEXT, started_at TEXT, duration REAL, error TEXT,
    note TEXT DEFAULT 'untouched')"""
FULL_PG = """CREATE TABLE {t} (
    id varchar(40) PRIMARY KEY, name text NOT NULL, status text, params jsonb,
    trace_id varchar(40), actor_type varchar(50), actor_id varchar(100), trace jsonb,
    started_at timestamptz, duration double precision, error text)"""


# -- the application under test ---------------------------------------------------------


@spanline.operation(name="orders.validate")
def validate(product: str) -> None:
    record_params(product=product)
    with spanline.span("check stock"):  # a plain span: never a row
        pass


class PlaceOrder(spanline.Operation):
    # Operation classes hand their params to recorders that want them by themselves
    def perform(self) -> str:
        validate(self.params["product"])
        return "placed"


class Refund(spanline.Operation):
    def perform(self) -> None:
        raise ValueError("boom")


def run_app() -> tuple[str, str]:
    """A request by user 42 (one order, one failed refund); its trace id and the
    PlaceOrder id as seen inside it."""
    ids: dict[str, str] = {}

    class Observed(PlaceOrder):
        operation_name = "PlaceOrder"

        def perform(self) -> str:
            ids["place"] = spanline.current_id() or ""
            return super().perform()

    with spanline.start_trace(actor={"type": "user", "id": 42}) as trace_id:
        assert Observed(product="book", card=SECRET).call() == "placed"
        with pytest.raises(ValueError, match="boom") as raised:
            Refund(order=7, card=SECRET).call()
        assert type(raised.value) is ValueError  # the user's exception, unchanged
    return trace_id, ids["place"]


@pytest.fixture
def recorders(spanline_capture: Capture) -> Iterator[Callable[..., Recorder]]:
    """Make and register recorders; each is shut down after the test."""
    made: list[Recorder] = []

    def make(*args: Any, **kwargs: Any) -> Recorder:
        recorder = Recorder(*args, **kwargs)
        spanline.tracer.add_processor(recorder)
        made.append(recorder)
        return recorder

    yield make
    for recorder in made:
        recorder.shutdown()


def sqlite_rows(path: Path, table: str) -> list[dict[str, Any]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY rowid")]
    finally:
        conn.close()


def sqlite_table(path: Path, ddl: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute(ddl)
    conn.commit()
    conn.close()


@pytest.fixture
def pg_table() -> Iterator[str]:
    table = f"spanline_recorder_{uuid.uuid4().hex[:10]}"
    yield table
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")


def pg_rows(table: str) -> list[dict[str, Any]]:
    with psycopg.connect(DSN, row_factory=dict_row) as conn:
        return sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=by_name)


def by_name(row: dict[str, Any]) -> str:
    return str(row["name"])


END_ORDER = ["orders.validate", "PlaceOrder", "Refund"]
"""The order in which run_app()'s operations end (and are queued, and inserted)."""


def check_full_rows(rows: list[dict[str, Any]], trace_id: str, place_id: str) -> None:
    """The three operations of run_app(), every field filled (params as JSON objects)."""
    assert sorted(r["name"] for r in rows) == sorted(END_ORDER)
    named = {r["name"]: r for r in rows}
    place, check, refund = named["PlaceOrder"], named["orders.validate"], named["Refund"]
    assert trace_id.startswith("tr_")
    assert {r["trace_id"] for r in rows} == {trace_id}
    assert {(r["actor_type"], r["actor_id"]) for r in rows} == {("user", "42")}
    assert place["id"] == place_id
    assert check["id"].startswith("op_")
    assert [place["status"], check["status"], refund["status"]] == ["completed"] * 2 + ["failed"]
    assert place["error"] is None
    assert refund["error"] == "ValueError: boom"
    assert place["params"] == {"product": "book", "card": SECRET}
    assert check["params"] == {"product": "book"}
    assert check["trace"] == [
        {"type": "actor", "actor_type": "user", "id": "42"},
        {"type": "operation", "id": place_id, "name": "PlaceOrder"},
        {"type": "operation", "id": check["id"], "name": "orders.validate"},
    ]
    assert all(r["started_at"] is not None and r["duration"] >= 0 for r in rows)


def assert_secret_not_in_spans(capture: Capture) -> None:
    assert capture.spans  # the spans exist ...
    assert SECRET not in json.dumps([s.to_dict() for s in capture.spans])  # ... without params


# -- SQLite through DB-API --------------------------------------------------------------


def test_sqlite_table_with_every_column_gets_them_filled(
    tmp_path: Path, recorders: Callable[..., Recorder], spanline_capture: Capture
) -> None:
    db = tmp_path / "app.db"
    sqlite_table(db, FULL_SQLITE.format(t="operation_records"))
    recorder = recorders(lambda: sqlite3.connect(db), "operation_records", params=True)

    trace_id, place_id = run_app()

    assert recorder.force_flush()
    rows = sqlite_rows(db, "operation_records")
    for row in rows:
        row["params"] = json.loads(row["params"])
        row["trace"] = json.loads(row["trace"])
    check_full_rows(rows, trace_id, place_id)
    assert {r["note"] for r in rows} == {"untouched"}  # columns we do not know stay as they are
    assert rows[0]["started_at"][:4].isdigit()
    assert rows[0]["started_at"][10] == " "
    assert [r["name"] for r in rows] == END_ORDER
    stats = recorder.stats()
    assert stats.pop("batches") >= 1
    assert stats == {
        "recorded": 3,
        "failed": 0,
        "last_error": None,
        "dropped": 0,
        "queue_depth": 0,
        "params_evicted": 0,
    }
    assert_secret_not_in_spans(spanline_capture)


def test_table_without_the_optional_columns_keeps_working(
    tmp_path: Path, recorders: Callable[..., Recorder], spanline_capture: Capture
) -> None:
    db = tmp_path / "old.db"
    sqlite_table(db, "CREATE TABLE op_log (id TEXT PRIMARY KEY, name TEXT, status TEXT)")
    recorder = recorders(lambda: sqlite3.connect(db), "op_log", params=True)

    run_app()

    assert recorder.force_flush()
    assert [(r["name"], r["status"]) for r in sqlite_rows(db, "op_log")] == [
        ("orders.validate", "completed"),
        ("PlaceOrder", "completed"),
        ("Refund", "failed"),
    ]
    assert recorder.stats()["failed"] == 0


def test_params_are_recorded_only_when_asked(
    tmp_path: Path, recorders: Callable[..., Recorder], spanline_capture: Capture
) -> None:
    db = tmp_path / "app.db"
    sqlite_table(db, FULL_SQLITE.format(t="plain"))
    sqlite_table(db, FULL_SQLITE.format(t="allowed"))
    plain = recorders(lambda: sqlite3.connect(db), "plain")
    allowed = recorders(
        lambda: sqlite3.connect(db), "allowed", params={"PlaceOrder": ["product"], "Refund": True}
    )

    run_app()

    assert plain.force_flush()
    assert allowed.force_flush()
    assert [r["params"] for r in sqlite_rows(db, "plain")] == [None, None, None]
    assert [r["params"] for r in sqlite_rows(db, "allowed")] == [
        None,  # orders.validate is not listed at all
        '{"product":"book"}',  # the card was not on PlaceOrder's list
        f'{{"order":7,"card":"{SECRET}"}}',  # Refund: True, every key
    ]
    assert_secret_not_in_spans(spanline_capture)


def test_record_params_without_a_recorder_that_wants_them_does_nothing(
    spanline_capture: Capture,
) -> None:
    with spanline.start_trace():
        assert PlaceOrder(product="pen", card=SECRET).call() == "placed"
    record_params(outside="any trace")  # no operation running: ignored
    assert_secret_not_in_spans(spanline_capture)


def test_record_params_calls_add_up_and_bad_arguments_never_raise(
    tmp_path: Path,
    recorders: Callable[..., Recorder],
    spanline_capture: Capture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    db = tmp_path / "app.db"
    sqlite_table(db, FULL_SQLITE.format(t="operation_records"))
    recorder = recorders(lambda: sqlite3.connect(db), "operation_records", params=True)

    @spanline.operation(name="Checkout")
    def checkout() -> None:
        record_params({"cart": [1, 2]})
        with spanline.span("inner"):  # still Checkout's params
            record_params(coupon=None, when={3, 1})
        record_params(42)  # type: ignore[arg-type]  # logged, ignored

    checkout()
    assert recorder.force_flush()
    (row,) = sqlite_rows(db, "operation_records")
    assert json.loads(row["params"]) == {"cart": [1, 2], "coupon": None, "when": [1, 3]}
    assert any("record_params()" in r.getMessage() for r in caplog.records)


def test_unrecorded_traces_write_no_rows(
    tmp_path: Path, recorders: Callable[..., Recorder], spanline_capture: Capture
) -> None:
    db = tmp_path / "app.db"
    sqlite_table(db, FULL_SQLITE.format(t="operation_records"))
    recorder = recorders(lambda: sqlite3.connect(db), "operation_records", params=True)
    spanline.configure(enabled=False)
    run_app()  # ids, actor and frames still work; nothing is recorded
    assert recorder.force_flush()
    assert sqlite_rows(db, "operation_records") == []


def test_columns_can_be_renamed_or_left_out(
    tmp_path: Path, recorders: Callable[..., Recorder], spanline_capture: Capture
) -> None:
    db = tmp_path / "app.db"
    sqlite_table(db, "CREATE TABLE audit (op_id TEXT, operation TEXT, who TEXT, status TEXT)")
    recorder = recorders(
        lambda: sqlite3.connect(db),
        "audit",
        columns={"id": "op_id", "name": "Operation", "actor_id": "who", "status": None},
    )
    with spanline.start_trace(actor={"type": "user", "id": 9}):
        PlaceOrder(product="pen").call()
    assert recorder.force_flush()
    rows = sqlite_rows(db, "audit")
    assert [(r["operation"], r["who"], r["status"]) for r in rows] == [
        ("orders.validate", "9", None),
        ("PlaceOrder", "9", None),
    ]
    assert all(r["op_id"].startswith("op_") for r in rows)


def test_handlers_are_recorded_when_asked(
    tmp_path: Path, recorders: Callable[..., Recorder], spanline_capture: Capture
) -> None:
    db = tmp_path / "app.db"
    sqlite_table(db, FULL_SQLITE.format(t="with_handlers"))
    sqlite_table(db, FULL_SQLITE.format(t="operations_only"))
    both = recorders(lambda: sqlite3.connect(db), "with_handlers", handlers=True)
    ops = recorders(lambda: sqlite3.connect(db), "operations_only")

    @spanline.handler("order.placed", name="send_receipt")
    def send_receipt(event: spanline.Event) -> None:
        pass

    @spanline.operation(name="Place")
    def place() -> None:
        spanline.publish("order.placed", {"order_id": 1})

    with spanline.start_trace():
        place()
    assert both.force_flush()
    assert ops.force_flush()
    # in end order: the handler ends inside the operation
    assert [r["id"][:3] for r in sqlite_rows(db, "with_handlers")] == ["hd_", "op_"]
    assert [r["name"] for r in sqlite_rows(db, "operations_only")] == ["Place"]


def test_one_bad_row_does_not_lose_the_others(
    tmp_path: Path, recorders: Callable[..., Recorder], spanline_capture: Capture
) -> None:
    db = tmp_path / "app.db"
    sqlite_table(db, "CREATE TABLE checked (id TEXT, name TEXT CHECK (name <> 'orders.validate'))")
    recorder = recorders(lambda: sqlite3.connect(db), "checked")
    run_app()
    assert recorder.force_flush()
    assert [r["name"] for r in sqlite_rows(db, "checked")] == ["PlaceOrder", "Refund"]
    # (row by row after the batch failed: the good rows are kept, in order)
    stats = recorder.stats()
    assert (stats["recorded"], stats["failed"]) == (2, 1)
    assert "CHECK constraint failed" in stats["last_error"]


def test_missing_table_is_counted_and_logged_once_never_raised(
    tmp_path: Path,
    recorders: Callable[..., Recorder],
    spanline_capture: Capture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    db = tmp_path / "app.db"
    recorder = recorders(lambda: sqlite3.connect(db), "no_such_table")
    for _ in range(2):
        run_app()  # the app is not disturbed
        assert recorder.force_flush()
    stats = recorder.stats()
    assert (stats["recorded"], stats["failed"]) == (0, 6)
    assert "no table no_such_table" in stats["last_error"]
    messages = [r.getMessage() for r in caplog.records if r.name == "spanline"]
    assert len(messages) == 1
    assert "no_such_table" in messages[0]
    assert "3 operations not recorded" in messages[0]
    # created later (a migration ran): the next batch finds it
    sqlite_table(db, "CREATE TABLE no_such_table (id TEXT, name TEXT)")
    run_app()
    assert recorder.force_flush()
    assert len(sqlite_rows(db, "no_such_table")) == 3
    assert spanline.stats()["processors"]["Recorder#1"]["recorded"] == 3  # type: ignore[index]


def test_database_down_is_counted_not_raised(
    recorders: Callable[..., Recorder], spanline_capture: Capture
) -> None:
    port = free_port()  # nothing listens there
    recorder = recorders(
        lambda: psycopg.connect(f"host=127.0.0.1 port={port} dbname=test user=postgres"),
        "operation_records",
    )
    run_app()
    assert recorder.force_flush()
    stats = recorder.stats()
    assert (stats["recorded"], stats["failed"]) == (0, 3)
    assert stats["last_error"].startswith("connect: OperationalError")


def test_shutdown_flushes_what_is_queued(
    tmp_path: Path, recorders: Callable[..., Recorder], spanline_capture: Capture
) -> None:
    db = tmp_path / "app.db"
    sqlite_table(db, FULL_SQLITE.format(t="operation_records"))
    recorder = recorders(
        lambda: sqlite3.connect(db), "operation_records", schedule_delay_millis=600_000
    )
    run_app()
    assert sqlite_rows(db, "operation_records") == []  # nothing written on the app thread
    recorder.shutdown()
    assert len(sqlite_rows(db, "operation_records")) == 3
    run_app()  # after shutdown: dropped and counted, never raised
    assert recorder.stats()["dropped"] == 3


def test_recorder_statements_are_not_traced(
    tmp_path: Path, recorders: Callable[..., Recorder], spanline_capture: Capture
) -> None:
    db = tmp_path / "app.db"
    sqlite_table(db, FULL_SQLITE.format(t="operation_records"))
    spanline.instrument("sqlite3")
    try:
        recorder = recorders(lambda: sqlite3.connect(db), "operation_records")
        run_app()
        assert recorder.force_flush()
    finally:
        spanline.uninstrument("sqlite3")
    assert len(sqlite_rows(db, "operation_records")) == 3
    assert recorder.stats()["failed"] == 0
    assert spanline_capture.names() == [
        "check stock",
        "orders.validate",
        "PlaceOrder",
        "Refund",
    ]


class AppConnection:
    """A DB-API connection class of the app's own around a real sqlite3 connection: the
    recorder cannot tell its driver, so it needs ``paramstyle`` and reads the columns
    from ``cursor.description``."""

    def __init__(self, path: Path) -> None:
        self._inner = sqlite3.connect(path)

    def cursor(self) -> sqlite3.Cursor:
        return self._inner.cursor()

    def commit(self) -> None:
        self._inner.commit()

    def rollback(self) -> None:
        self._inner.rollback()

    def close(self) -> None:
        self._inner.close()


@pytest.mark.parametrize("paramstyle", ["qmark", "named", "numeric", None])
def test_other_drivers_name_their_paramstyle(
    paramstyle: str | None,
    tmp_path: Path,
    recorders: Callable[..., Recorder],
    spanline_capture: Capture,
) -> None:
    db = tmp_path / "app.db"
    sqlite_table(db, FULL_SQLITE.format(t="operation_records"))
    recorder = recorders(lambda: AppConnection(db), "operation_records", paramstyle=paramstyle)
    trace_id, _ = run_app()
    assert recorder.force_flush()
    rows = sqlite_rows(db, "operation_records")
    if paramstyle is None:
        assert rows == []
        assert "cannot tell the parameter style of AppConnection" in recorder.stats()["last_error"]
        return
    assert [(r["name"], r["trace_id"]) for r in rows] == [(n, trace_id) for n in END_ORDER]
    assert rows[0]["started_at"].endswith("+00:00")  # ISO 8601 for drivers other than sqlite3


@pytest.mark.parametrize(
    ("table", "kwargs", "message"),
    [
        ("orders; DROP TABLE x", {}, "not a plain SQL identifier"),
        ('a"b', {}, "not a plain SQL identifier"),
        ("s.t.u", {}, "schema name 's.t'"),
        ("t", {"columns": {"nonsense": "x"}}, "unknown field 'nonsense'"),
        ("t", {"columns": {"id": "id --"}}, "column for 'id'"),
        ("t", {"paramstyle": "dollar"}, "unknown paramstyle"),
    ],
)
def test_bad_arguments_are_clear_errors(table: str, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Recorder(lambda: None, table, **kwargs)


def test_bad_targets_and_params_are_type_errors() -> None:
    with pytest.raises(TypeError, match="SQLAlchemy Engine or a callable"):
        Recorder("sqlite:///app.db", "t")
    with pytest.raises(TypeError, match="list of keys"):
        Recorder(lambda: None, "t", params={"PlaceOrder": "product"})
    assert set(FIELDS) == {
        "id",
        "name",
        "status",
        "params",
        "trace_id",
        "actor_type",
        "actor_id",
        "trace",
        "started_at",
        "duration",
        "error",
    }


# -- PostgreSQL through psycopg 3 ---------------------------------------------------------


def test_postgresql_table_with_every_column(
    pg_table: str, recorders: Callable[..., Recorder], spanline_capture: Capture
) -> None:
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(FULL_PG.format(t=pg_table))
    recorder = recorders(lambda: psycopg.connect(DSN), pg_table.upper(), params=True)

    trace_id, place_id = run_app()

    assert recorder.force_flush()
    rows = pg_rows(pg_table)
    check_full_rows(rows, trace_id, place_id)
    assert all(r["started_at"].utcoffset() is not None for r in rows)  # timestamptz
    run_app()  # a second batch reuses the columns read for the first (and the folded name)
    assert recorder.force_flush()
    assert len(pg_rows(pg_table)) == 6
    assert (recorder.stats()["recorded"], recorder.stats()["failed"]) == (6, 0)
    assert_secret_not_in_spans(spanline_capture)


def test_postgresql_table_without_optional_columns_and_a_bad_row(
    pg_table: str, recorders: Callable[..., Recorder], spanline_capture: Capture
) -> None:
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {pg_table} (id text PRIMARY KEY, name varchar(12), status text)"
        )
    recorder = recorders(lambda: psycopg.connect(DSN), f"public.{pg_table}")
    run_app()  # "orders.validate" is 15 characters: too long for varchar(12)
    assert recorder.force_flush()
    assert [r["name"] for r in pg_rows(pg_table)] == ["PlaceOrder", "Refund"]
    stats = recorder.stats()
    assert (stats["recorded"], stats["failed"]) == (2, 1)
    assert "StringDataRightTruncation" in stats["last_error"]


# -- SQLAlchemy ---------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.engine.Engine]:
    url = f"sqlite:///{tmp_path / 'app.db'}" if request.param == "sqlite" else PG_URL
    engine = sa.create_engine(url)
    yield engine
    engine.dispose()


def test_sqlalchemy_full_and_minimal_tables(
    engine: sa.engine.Engine, recorders: Callable[..., Recorder], spanline_capture: Capture
) -> None:
    suffix = uuid.uuid4().hex[:10]
    metadata = sa.MetaData()
    full = sa.Table(
        f"spanline_sa_full_{suffix}",
        metadata,
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(100)),
        sa.Column("status", sa.String(20)),
        sa.Column("params", sa.JSON),
        sa.Column("trace_id", sa.String(40)),
        sa.Column("actor_type", sa.String(50)),
        sa.Column("actor_id", sa.String(100)),
        sa.Column("trace", sa.JSON),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("duration", sa.Float),
        sa.Column("error", sa.Text),
    )
    minimal = sa.Table(
        f"spanline_sa_min_{suffix}",
        metadata,
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(100)),
        sa.Column("status", sa.String(20)),
        sa.Column("params", sa.Text),
    )
    metadata.create_all(engine)
    try:
        a = recorders(engine, full.name, params=True)
        b = recorders(engine, minimal.name, params={"Refund": ["order"]})

        trace_id, place_id = run_app()

        assert a.force_flush()
        assert b.force_flush()
        with engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(full.select().order_by("started_at"))]
            small = [
                dict(r._mapping) for r in conn.execute(minimal.select().order_by(minimal.c.name))
            ]
        check_full_rows(rows, trace_id, place_id)
        assert all(isinstance(r["started_at"], sa.DateTime().python_type) for r in rows)
        assert [(r["name"], r["status"], r["params"]) for r in small] == [
            ("PlaceOrder", "completed", None),
            ("Refund", "failed", '{"order":7}'),
            ("orders.validate", "completed", None),
        ]
        assert a.stats()["failed"] == b.stats()["failed"] == 0
    finally:
        metadata.drop_all(engine)
    assert_secret_not_in_spans(spanline_capture)


def test_sqlalchemy_missing_table_is_counted(
    tmp_path: Path,
    recorders: Callable[..., Recorder],
    spanline_capture: Capture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    recorder = recorders(engine, "nowhere")
    with caplog.at_level(logging.ERROR, logger="spanline"):
        run_app()
        assert recorder.force_flush()
    engine.dispose()
    assert (recorder.stats()["recorded"], recorder.stats()["failed"]) == (0, 3)
    assert any("nowhere" in r.getMessage() for r in caplog.records)
