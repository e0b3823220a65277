"""Where a :class:`~spanline.store.recorder.Recorder`'s rows go: the app's own table,
through a DB-API connection factory or a SQLAlchemy ``Engine``.

A session reads the table's columns once (SQLite ``pragma_table_info``, PostgreSQL
``information_schema.columns``, SQLAlchemy ``inspect``, any other driver
``cursor.description``), plans the insert for the columns that exist, and writes a
batch per transaction, falling back to one row at a time when the batch fails.  SQL is
parameterized; table and column names are validated and quoted.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

__all__ = [
    "PLACEHOLDERS",
    "Column",
    "DbApiSession",
    "Plan",
    "Row",
    "Session",
    "SqlAlchemySession",
    "Where",
    "identifier",
]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")
PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
_JSON, _TIME, _OTHER = "json", "time", "other"

Row = dict[str, Any]
Column = tuple[str, str, Any]
"""A column as found: its name as the database spells it, value kind, SQLAlchemy type."""
Plan = list[tuple[str, str, str, Any]]
"""(logical field, column name, value kind, SQLAlchemy type or ``None``)."""


def identifier(name: object, what: str) -> str:
    if not isinstance(name, str) or _IDENTIFIER.fullmatch(name) is None:
        raise ValueError(
            f"{what} {name!r} is not a plain SQL identifier (letters, digits, _ and $, "
            "not starting with a digit, at most 63 characters)"
        )
    return name


def _quote(name: str) -> str:
    return f'"{name}"'  # validated by identifier: it holds no quote


def _dumps(value: object) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- targets: where rows go --------------------------------------------------------------


class Where:
    """The table's schema and name (the name as the database spells it, once known)."""

    __slots__ = ("schema", "table")

    def __init__(self, schema: str | None, table: str) -> None:
        self.schema = schema
        self.table = table

    def quoted(self) -> str:
        table = _quote(self.table)
        return table if self.schema is None else f"{_quote(self.schema)}.{table}"


class DbApiSession:
    """One DB-API connection for one batch."""

    def __init__(self, connect: Callable[[], Any], where: Where, style: str | None) -> None:
        self._conn = connect()
        self._where = where
        try:
            self._style = self._detect(style)
        except Exception:
            self._conn.close()
            raise

    def _detect(self, style: str | None) -> str:
        driver = self._conn
        wrapped = getattr(driver, "_connection", None)  # spanline's own traced proxy
        if wrapped is not None and type(driver).__module__.startswith("spanline."):
            driver = wrapped
        self._driver = type(driver).__module__.split(".", 1)[0]
        if style is None:
            style = getattr(sys.modules.get(self._driver), "paramstyle", None)
        if style not in PLACEHOLDERS and style not in ("numeric", "named"):
            raise ValueError(
                f"cannot tell the parameter style of {type(driver).__name__} connections; "
                "pass Recorder(..., paramstyle='qmark' or 'format' or 'numeric' or 'named')"
            )
        return style

    def columns(self) -> list[Column]:
        """The table's columns (empty when there is no such table)."""
        cursor = self._conn.cursor()
        try:
            if self._driver == "sqlite3":
                cursor.execute(
                    "SELECT name FROM pragma_table_info(?, ?)",
                    (self._where.table, self._where.schema or "main"),
                )
                found = [str(r[0]) for r in cursor.fetchall()]
            elif self._driver in ("psycopg", "psycopg2"):
                found = self._pg_columns(cursor)
            else:
                probe = f"SELECT * FROM {self._where.quoted()} WHERE 1 = 0"  # noqa: S608 - checked
                cursor.execute(probe)
                found = [str(d[0]) for d in cursor.description or ()]
        finally:
            cursor.close()
        self._conn.rollback()  # end the read transaction
        return [(name, _OTHER, None) for name in found]

    def _pg_columns(self, cursor: Any) -> list[str]:
        # an unquoted name in CREATE TABLE is folded to lower case by PostgreSQL
        found: list[str] = []
        where = self._where
        for table in dict.fromkeys((where.table, where.table.lower())):
            cursor.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = COALESCE(%s, current_schema()) AND table_name = %s "
                "ORDER BY ordinal_position",
                (where.schema, table),
            )
            found = [str(r[0]) for r in cursor.fetchall()]
            if found:
                where.table = table
                break
        return found

    def insert(self, plan: Plan, rows: Sequence[Row]) -> tuple[int, Exception | None]:
        """Insert ``rows`` in one transaction, else one by one; (written, first error)."""
        columns = ", ".join(_quote(column) for _, column, _, _ in plan)
        if self._style == "numeric":
            marks = ", ".join(f":{i + 1}" for i in range(len(plan)))
        elif self._style == "named":
            marks = ", ".join(f":{field}" for field, _, _, _ in plan)
        else:
            marks = ", ".join(PLACEHOLDERS[self._style] for _ in plan)
        target = self._where.quoted()
        statement = f"INSERT INTO {target} ({columns}) VALUES ({marks})"  # noqa: S608 - checked
        values = [self._values(plan, row) for row in rows]
        try:
            cursor = self._conn.cursor()
            cursor.executemany(statement, values)
            cursor.close()
            self._conn.commit()
        except Exception as error:  # noqa: BLE001 - retried row by row below
            if not self._rollback():
                return 0, error
            return self._one_by_one(statement, values, error)
        return len(rows), None

    def _rollback(self) -> bool:
        """Roll back; ``False`` when the connection itself is broken."""
        try:
            self._conn.rollback()
        except Exception:  # noqa: BLE001 - the caller counts what was lost
            return False
        return True

    def _one_by_one(
        self, statement: str, values: list[Any], first: Exception
    ) -> tuple[int, Exception | None]:
        written = 0
        for value in values:
            try:
                cursor = self._conn.cursor()
                cursor.execute(statement, value)
                cursor.close()
                self._conn.commit()
                written += 1
            except Exception:  # noqa: BLE001 - counted by the caller
                if not self._rollback():
                    break  # the connection is gone: the rest is lost
        return written, first if written < len(values) else None

    def _values(self, plan: Plan, row: Row) -> Any:
        out = []
        for field, _, _, _ in plan:
            value = row[field]
            if field in ("params", "trace"):
                value = _dumps(value)
            elif isinstance(value, datetime):
                value = (
                    value.replace(tzinfo=None).isoformat(" ")
                    if self._driver == "sqlite3"
                    else value.isoformat()
                )
            out.append(value)
        if self._style == "named":
            return {field: value for (field, _, _, _), value in zip(plan, out, strict=True)}
        return tuple(out)

    def close(self) -> None:
        self._conn.close()


class SqlAlchemySession:
    """A SQLAlchemy engine for one batch (it pools its own connections)."""

    def __init__(self, engine: Any, where: Where) -> None:
        import sqlalchemy

        self._sa = sqlalchemy
        self._engine = engine
        self._schema, self._table = where.schema, where.table

    def columns(self) -> list[Column]:
        """The table's columns (empty when there is no such table)."""
        sa = self._sa
        try:
            found = sa.inspect(self._engine).get_columns(self._table, schema=self._schema)
        except sa.exc.NoSuchTableError:
            return []
        result: list[Column] = []
        for column in found:
            type_ = column["type"]
            kind = _OTHER
            if isinstance(type_, sa.types.JSON):
                kind = _JSON
                type_ = copy.copy(type_)
                type_.none_as_null = True  # None is SQL NULL, not the JSON text null
            elif isinstance(type_, sa.types.DateTime):
                kind = _TIME
            result.append((column["name"], kind, type_))
        return result

    def insert(self, plan: Plan, rows: Sequence[Row]) -> tuple[int, Exception | None]:
        """Insert ``rows`` in one transaction, else one by one; (written, first error)."""
        sa = self._sa
        table = sa.table(
            self._table,
            *(sa.column(column, type_) for _, column, _, type_ in plan),
            schema=self._schema,
        )
        statement = table.insert()
        values = [self._values(plan, row) for row in rows]
        try:
            with self._engine.begin() as conn:
                conn.execute(statement, values)
        except Exception as error:  # noqa: BLE001 - retried row by row below
            written = 0
            for value in values:
                try:
                    with self._engine.begin() as conn:
                        conn.execute(statement, [value])
                    written += 1
                except Exception:  # noqa: BLE001, S112 - counted by the caller
                    continue
            return written, error if written < len(values) else None
        return len(rows), None

    def _values(self, plan: Plan, row: Row) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field, column, kind, _ in plan:
            value = row[field]
            if field in ("params", "trace"):
                value = value if kind == _JSON else _dumps(value)
            elif isinstance(value, datetime) and kind != _TIME:
                value = value.isoformat()
            out[column] = value
        return out

    def close(self) -> None:
        """Nothing to release: the engine's pool keeps its connections."""


Session = DbApiSession | SqlAlchemySession
