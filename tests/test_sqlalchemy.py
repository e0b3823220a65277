"""The SQLAlchemy integration on a real SQLite file and the real PostgreSQL
(127.0.0.1:5432, database test)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import spanline
from spanline import SpanKind, StatusCode
from spanline.integrations import sqlalchemy as integration
from spanline.testing import Capture

SECRET = "card-4242-never-in-a-span"
REJECTED = "card-0000-refused-by-a-check"  # also secret: the table's CHECK rejects it
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def instrumented() -> Iterator[None]:
    spanline.instrument("sqlalchemy")
    yield
    spanline.uninstrument("sqlalchemy")


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_table() -> Iterator[tuple[sa.Engine, str]]:
    engine = sa.create_engine(POSTGRES_URL)
    table = f"spanline_sa_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:  # created before instrumenting: not part of the tests
        conn.execute(
            sa.text(
                f"CREATE TABLE {table} (id int PRIMARY KEY, card text CHECK (card <> '{REJECTED}'))"
            )
        )
    yield engine, table
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE {table}"))
    engine.dispose()


class Base(DeclarativeBase):
    pass


class Payment(Base):
    __tablename__ = "orm_payments"
    id: Mapped[int] = mapped_column(primary_key=True)
    card: Mapped[str]


def client_spans(capture: Capture) -> list[spanline.Span]:
    return [s for s in capture.spans if s.kind == SpanKind.CLIENT]


def no_secret_in(capture: Capture) -> bool:
    exported = json.dumps([s.to_dict() for s in capture.spans])
    return SECRET not in exported and REJECTED not in exported


def test_sqlite_statements_without_parameters(
    instrumented: None, sqlite_engine: sa.Engine, spanline_capture: Capture
) -> None:
    path = sqlite_engine.url.database
    with spanline.span("work"):
        with sqlite_engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE payments (id INTEGER PRIMARY KEY, card TEXT)"))
            conn.execute(
                sa.text("INSERT INTO payments VALUES (:id, :card)"), {"id": 1, "card": SECRET}
            )
            conn.execute(
                sa.text("INSERT INTO payments VALUES (:id, :card)"),
                [{"id": 2, "card": SECRET}, {"id": 3, "card": SECRET}],
            )
            card = conn.execute(sa.text("SELECT card FROM payments WHERE id = :id"), {"id": 1})
            assert card.scalar_one() == SECRET
    spans = client_spans(spanline_capture)
    assert [s.name for s in spans] == ["CREATE", "INSERT", "INSERT", "SELECT"]
    assert spans[1].attributes == {
        "db.system.name": "sqlite",
        "db.operation.name": "INSERT",
        "db.query.text": "INSERT INTO payments VALUES (?, ?)",
        "db.namespace": path,
    }
    assert spans[2].attributes["db.operation.batch.size"] == 2
    assert all(s.parent is not None and s.parent.name == "work" for s in spans)
    assert all(s.status == StatusCode.UNSET for s in spans)
    assert no_secret_in(spanline_capture)


def test_errors_mark_the_span_and_pass_through_unchanged(
    instrumented: None, sqlite_engine: sa.Engine, spanline_capture: Capture
) -> None:
    with sqlite_engine.connect() as conn:
        conn.execute(sa.text("CREATE TABLE payments (id INTEGER PRIMARY KEY, card TEXT)"))
        conn.execute(sa.text("INSERT INTO payments VALUES (1, 'a')"))
        with pytest.raises(sa.exc.IntegrityError) as error:
            conn.execute(
                sa.text("INSERT INTO payments VALUES (:id, :card)"), {"id": 1, "card": SECRET}
            )
        assert SECRET in str(error.value)  # SQLAlchemy's own message, untouched
        with pytest.raises(sa.exc.OperationalError, match="no such table"):
            conn.execute(sa.text("SELECT * FROM missing_table WHERE card = :c"), {"c": SECRET})
        conn.execute(sa.text("SELECT 1"))  # the connection still works, and is traced
    *_, duplicate, missing, after = client_spans(spanline_capture)
    assert duplicate.status == StatusCode.ERROR
    assert duplicate.status_message == "sqlite3.IntegrityError"
    assert duplicate.attributes["error.type"] == "sqlite3.IntegrityError"
    assert duplicate.attributes["db.response.status_code"] == "1555"  # CONSTRAINT_PRIMARYKEY
    assert [(e.name, e.attributes) for e in duplicate.events] == [
        ("exception", {"exception.type": "sqlite3.IntegrityError"})
    ]
    assert missing.attributes["error.type"] == "sqlite3.OperationalError"
    assert after.status == StatusCode.UNSET
    assert no_secret_in(spanline_capture)


def test_postgresql_one_span_per_statement_with_psycopg_also_instrumented(
    pg_table: tuple[sa.Engine, str], spanline_capture: Capture
) -> None:
    engine, table = pg_table
    spanline.instrument("sqlalchemy", "psycopg")
    try:
        with spanline.span("work"), engine.begin() as conn:
            conn.execute(
                sa.text(f"INSERT INTO {table} VALUES (:id, :card)"), {"id": 1, "card": SECRET}
            )
            conn.execute(
                sa.text(f"INSERT INTO {table} VALUES (:id, :card)"),
                [{"id": 2, "card": SECRET}, {"id": 3, "card": SECRET}],
            )
            cards = conn.execute(
                sa.text(f"SELECT card FROM {table} WHERE card = :c"), {"c": SECRET}
            )
            assert len(cards.all()) == 3
        # the psycopg layer still traces what runs outside SQLAlchemy
        with psycopg.connect("host=127.0.0.1 dbname=test user=postgres") as raw:
            raw.execute(f"SELECT count(*) FROM {table} WHERE card = %s", (SECRET,))
    finally:
        spanline.uninstrument("sqlalchemy", "psycopg")
    ours = [s for s in client_spans(spanline_capture) if table in s.attributes["db.query.text"]]
    # BEGIN/COMMIT are not statements SQLAlchemy sends through the cursor
    assert [s.name for s in ours] == ["INSERT", "INSERT", "SELECT", "SELECT"]
    insert, batch, select, raw_select = ours
    assert insert.attributes == {
        "db.system.name": "postgresql",
        "db.operation.name": "INSERT",
        "db.query.text": f"INSERT INTO {table} VALUES (%(id)s, %(card)s)",
        "db.namespace": "test",
        "server.address": "127.0.0.1",
        "server.port": 5432,
    }
    assert batch.attributes["db.operation.batch.size"] == 2
    # one span per statement: psycopg added none of its own under SQLAlchemy's
    assert all(s.parent is not None and s.parent.name == "work" for s in (insert, batch, select))
    assert "server.address" not in raw_select.attributes  # the psycopg layer's own span
    assert no_secret_in(spanline_capture)


def test_postgresql_errors_never_quote_parameters(
    pg_table: tuple[sa.Engine, str], instrumented: None, spanline_capture: Capture
) -> None:
    engine, table = pg_table
    with engine.connect() as conn:
        # PostgreSQL quotes the failing row or value in its messages
        with pytest.raises(sa.exc.IntegrityError, match=f"Failing row contains \\(1, {REJECTED}"):
            conn.execute(sa.text(f"INSERT INTO {table} VALUES (1, :c)"), {"c": REJECTED})
        conn.rollback()
        with pytest.raises(sa.exc.DataError, match=SECRET):
            conn.execute(
                sa.text(f"SELECT * FROM {table} WHERE id = CAST(:id AS int)"), {"id": SECRET}
            )
    check, cast = (
        s for s in client_spans(spanline_capture) if table in s.attributes["db.query.text"]
    )
    assert check.attributes["error.type"] == "psycopg.errors.CheckViolation"
    assert check.attributes["db.response.status_code"] == "23514"
    assert cast.attributes["error.type"] == "psycopg.errors.InvalidTextRepresentation"
    assert cast.attributes["db.response.status_code"] == "22P02"
    assert cast.status == StatusCode.ERROR
    assert no_secret_in(spanline_capture)


def test_errors_keep_their_values_out_of_every_span_they_leave(
    pg_table: tuple[sa.Engine, str], instrumented: None, spanline_capture: Capture
) -> None:
    # the statement's span withholds the driver's message; so must the spans the
    # exception travels through afterwards (here an operation and a wrapping error)
    engine, table = pg_table

    def pay() -> None:
        with spanline.span("checkout"):
            try:
                with spanline.span("charge"), engine.begin() as conn:
                    conn.execute(sa.text(f"INSERT INTO {table} VALUES (1, :c)"), {"c": REJECTED})
            except sa.exc.IntegrityError as error:
                raise ValueError("payment refused") from error

    with pytest.raises(ValueError, match="payment refused") as raised:
        pay()
    assert REJECTED in str(raised.value.__cause__)  # the app's exceptions are untouched
    spans = {s.name: s for s in spanline_capture.spans}
    charge, checkout = spans["charge"], spans["checkout"]
    assert charge.status == StatusCode.ERROR
    assert charge.status_message == "IntegrityError"
    (event,) = charge.events
    assert event.attributes["exception.type"] == "sqlalchemy.exc.IntegrityError"
    assert "exception.message" not in event.attributes
    trace = str(event.attributes["exception.stacktrace"])
    # every frame and both classes of the chain are there, without their messages
    assert "conn.execute(" in trace
    assert "\nsqlalchemy.exc.IntegrityError\n" in trace
    assert "\npsycopg.errors.CheckViolation\n" in trace
    assert checkout.status_message == "ValueError: payment refused"
    (wrapped,) = checkout.events
    assert wrapped.attributes["exception.message"] == "payment refused"
    assert "ValueError: payment refused" in str(wrapped.attributes["exception.stacktrace"])
    assert "\nsqlalchemy.exc.IntegrityError\n" in str(wrapped.attributes["exception.stacktrace"])
    assert no_secret_in(spanline_capture)


def test_async_engines_on_postgresql(
    pg_table: tuple[sa.Engine, str], spanline_capture: Capture
) -> None:
    # AsyncEngine runs the driver in greenlets: each statement's span must still
    # join the task that awaited it, with concurrent tasks kept apart
    from sqlalchemy.ext.asyncio import create_async_engine

    _, table = pg_table

    async def place(engine: Any, order: int) -> None:
        with spanline.span(f"order-{order}"):
            async with engine.begin() as conn:
                await conn.execute(
                    sa.text(f"INSERT INTO {table} VALUES (:id, :card)"),
                    {"id": order, "card": SECRET},
                )
                await asyncio.sleep(0)  # let the other task run its statement in between
                await conn.execute(
                    sa.text(f"SELECT card FROM {table} WHERE id = :id"), {"id": order}
                )

    async def main() -> None:
        engine = create_async_engine(POSTGRES_URL)
        integration.instrument_engine(engine)  # this engine only
        try:
            await asyncio.gather(place(engine, 1), place(engine, 2))
            with spanline.span("refused"):
                async with engine.connect() as conn:
                    with pytest.raises(sa.exc.IntegrityError):
                        await conn.execute(
                            sa.text(f"INSERT INTO {table} VALUES (3, :c)"), {"c": REJECTED}
                        )
            integration.uninstrument_engine(engine)
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))  # no longer traced
        finally:
            await engine.dispose()

    asyncio.run(main())
    ours = client_spans(spanline_capture)
    assert [s.name for s in ours].count("INSERT") == 3
    assert len(ours) == 5
    for order in (1, 2):
        mine = [s for s in ours if s.parent is not None and s.parent.name == f"order-{order}"]
        assert [s.name for s in mine] == ["INSERT", "SELECT"]
        assert {s.trace_id for s in mine} == {
            s.trace_id for s in spanline_capture.spans if s.name == f"order-{order}"
        }
    (refused,) = [s for s in ours if s.status == StatusCode.ERROR]
    assert refused.parent is not None
    assert refused.parent.name == "refused"
    assert refused.attributes["db.response.status_code"] == "23514"
    assert all(s.attributes["db.system.name"] == "postgresql" for s in ours)
    assert no_secret_in(spanline_capture)


def test_orm_session_statements_are_traced(
    instrumented: None, sqlite_engine: sa.Engine, spanline_capture: Capture
) -> None:
    Base.metadata.create_all(sqlite_engine)
    with Session(sqlite_engine) as session:
        session.add_all([Payment(id=1, card=SECRET), Payment(id=2, card=SECRET)])
        session.commit()
        assert session.get(Payment, 1) is not None
    names = [s.name for s in client_spans(spanline_capture)]
    assert names[-2:] == ["INSERT", "SELECT"]
    assert no_secret_in(spanline_capture)


def test_long_statements_are_capped(
    instrumented: None, sqlite_engine: sa.Engine, spanline_capture: Capture
) -> None:
    with sqlite_engine.connect() as conn:
        conn.execute(sa.text("SELECT 1" + " " * 5000))
    (span,) = client_spans(spanline_capture)
    assert len(span.attributes["db.query.text"]) == 1000


def test_install_twice_is_harmless_and_uninstall_removes_everything(
    sqlite_engine: sa.Engine, spanline_capture: Capture
) -> None:
    spanline.instrument("sqlalchemy")
    integration.install()  # a second install adds nothing
    with sqlite_engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    assert spanline_capture.names() == ["SELECT"]
    spanline.uninstrument("sqlalchemy")
    with sqlite_engine.connect() as conn:
        conn.execute(sa.text("SELECT 2"))
        with pytest.raises(sa.exc.OperationalError):
            conn.execute(sa.text("SELECT * FROM missing_table"))
    assert spanline_capture.names() == ["SELECT"]
    spanline.uninstrument("sqlalchemy")  # a second uninstall is harmless too


def test_instrument_one_engine(spanline_capture: Capture) -> None:
    traced = sa.create_engine("sqlite://")
    other = sa.create_engine("sqlite://")
    integration.instrument_engine(traced)
    integration.instrument_engine(traced)  # repeated: still one span
    try:
        with traced.connect() as conn:
            conn.execute(sa.text("SELECT 'traced'"))
        with other.connect() as conn:
            conn.execute(sa.text("SELECT 'other'"))
        spanline.instrument("sqlalchemy")  # engine and class listeners: still one span
        with traced.connect() as conn:
            conn.execute(sa.text("SELECT 'both'"))
        spanline.uninstrument("sqlalchemy")
    finally:
        integration.uninstrument_engine(traced)
    with traced.connect() as conn:
        conn.execute(sa.text("SELECT 'after'"))
    texts = [s.attributes["db.query.text"] for s in spanline_capture.spans]
    assert texts == ["SELECT 'traced'", "SELECT 'both'"]
    assert "db.namespace" not in spanline_capture.spans[0].attributes  # in-memory database
    traced.dispose()
    other.dispose()


def test_statements_run_untraced_when_spanline_is_off(
    instrumented: None, sqlite_engine: sa.Engine, spanline_capture: Capture
) -> None:
    spanline.configure(enabled=False)
    with sqlite_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT :x"), {"x": 1}).scalar_one() == 1
    assert spanline_capture.spans == []


def test_dialect_names_map_to_semantic_convention_names() -> None:
    from sqlalchemy.dialects import mssql, mysql, oracle, postgresql, sqlite

    assert integration.system_name(postgresql.dialect()) == "postgresql"
    assert integration.system_name(sqlite.dialect()) == "sqlite"
    assert integration.system_name(mysql.dialect()) == "mysql"
    assert integration.system_name(mysql.dialect(is_mariadb=True)) == "mariadb"
    assert integration.system_name(oracle.dialect()) == "oracle.db"
    assert integration.system_name(mssql.dialect()) == "microsoft.sql_server"
    assert integration.system_name(object()) == "other_sql"
