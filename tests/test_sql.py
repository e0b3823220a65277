"""SQL integrations on real SQLite and the real PostgreSQL (127.0.0.1:5432, db test)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import spanline
from spanline import SpanKind, StatusCode
from spanline.testing import Capture

SECRET = "card-4242-never-in-a-span"
DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"


@pytest.fixture
def instrumented() -> Iterator[None]:
    spanline.instrument("sqlite3", "psycopg")
    yield
    spanline.uninstrument("sqlite3", "psycopg")


def _client_spans(capture: Capture) -> list[spanline.Span]:
    return [s for s in capture.spans if s.kind == SpanKind.CLIENT]


def test_sqlite_statements_without_parameters(
    instrumented: None, tmp_path: Path, spanline_capture: Capture
) -> None:
    db = tmp_path / "shop.db"
    with spanline.span("work"):
        conn = sqlite3.connect(db)
        conn.execute("CREATE TABLE payments (id INTEGER, card TEXT)")
        conn.execute("INSERT INTO payments VALUES (?, ?)", (1, SECRET))
        conn.executemany("INSERT INTO payments VALUES (?, ?)", [(2, SECRET), (3, SECRET)])
        cur = conn.cursor()
        cur.execute("SELECT card FROM payments WHERE id = ?", (1,))
        assert cur.fetchone() == (SECRET,)
        with pytest.raises(sqlite3.OperationalError):
            conn.execute("SELECT * FROM missing_table")
        conn.commit()
        conn.close()
    spans = _client_spans(spanline_capture)
    assert [s.name for s in spans] == ["CREATE", "INSERT", "INSERT", "SELECT", "SELECT"]
    assert spans[1].attributes == {
        "db.system.name": "sqlite",
        "db.operation.name": "INSERT",
        "db.query.text": "INSERT INTO payments VALUES (?, ?)",
        "db.namespace": str(db),
    }
    assert spans[-1].status == StatusCode.ERROR
    assert all(s.parent is not None and s.parent.name == "work" for s in spans)
    assert SECRET not in json.dumps([s.to_dict() for s in spanline_capture.spans])


def test_postgresql_sync_and_async(instrumented: None, spanline_capture: Capture) -> None:
    table = f"spanline_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id int, card text)")
        try:
            with conn.cursor() as cur:
                cur.execute(f"INSERT INTO {table} VALUES (%s, %s)", (1, SECRET))
                cur.executemany(f"INSERT INTO {table} VALUES (%s, %s)", [(2, SECRET)])
                cur.execute(f"SELECT card FROM {table} WHERE id = %s", (1,))
                assert cur.fetchone() == (SECRET,)

            async def async_part() -> object:
                async with await psycopg.AsyncConnection.connect(DSN) as aconn:
                    async with aconn.cursor() as acur:
                        await acur.execute(
                            f"SELECT count(*) FROM {table} WHERE card = %s", (SECRET,)
                        )
                        return await acur.fetchone()

            assert asyncio.run(async_part()) == (2,)
        finally:
            conn.execute(f"DROP TABLE {table}")
    spans = _client_spans(spanline_capture)
    operations = [s.attributes["db.operation.name"] for s in spans]
    assert operations == ["CREATE", "INSERT", "INSERT", "SELECT", "SELECT", "DROP"]
    select = spans[3]
    assert select.attributes["db.system.name"] == "postgresql"
    assert select.attributes["db.namespace"] == "test"
    assert select.attributes["db.query.text"] == f"SELECT card FROM {table} WHERE id = %s"
    assert SECRET not in json.dumps([s.to_dict() for s in spanline_capture.spans])


def test_long_statements_are_capped(instrumented: None, spanline_capture: Capture) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("SELECT 1" + " " * 5000)
    conn.close()
    (span,) = _client_spans(spanline_capture)
    assert len(span.attributes["db.query.text"]) == 1000


def test_uninstrument_restores_the_originals(spanline_capture: Capture) -> None:
    original = sqlite3.connect
    spanline.instrument("sqlite3")
    assert sqlite3.connect is not original
    spanline.uninstrument("sqlite3")
    assert sqlite3.connect is original
    sqlite3.connect(":memory:").execute("SELECT 1").close()
    assert spanline_capture.spans == []


def test_driver_error_messages_never_enter_a_span(
    instrumented: None, spanline_capture: Capture
) -> None:
    # PostgreSQL quotes the offending value in its message: 'invalid input syntax for
    # type integer: "card-4242-..."'; the span keeps the error's type and SQLSTATE only.
    with psycopg.connect(DSN, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InvalidTextRepresentation) as raised:
            conn.execute("SELECT cast(%s AS int)", (SECRET,))
        assert SECRET in str(raised.value)  # the app's exception is untouched

        async def async_part() -> None:
            async with await psycopg.AsyncConnection.connect(DSN) as aconn:
                await aconn.execute("SELECT cast(%s AS int)", (SECRET,))

        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            asyncio.run(async_part())
    sync_span, async_span = _client_spans(spanline_capture)
    for span in (sync_span, async_span):
        assert span.status == StatusCode.ERROR
        assert span.attributes["error.type"] == "psycopg.errors.InvalidTextRepresentation"
        assert span.attributes["db.response.status_code"] == "22P02"
    assert SECRET not in json.dumps([s.to_dict() for s in spanline_capture.spans])
