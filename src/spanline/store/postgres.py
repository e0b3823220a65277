"""The PostgreSQL backend (psycopg 3): many processes writing one database.

Each writer bulk-loads its batch with ``COPY`` and merges the batch's trace
summaries with one ``INSERT … ON CONFLICT`` per trace, sorted by trace id so that
concurrent writers lock summary rows in the same order (no deadlocks).  The tables
live in ``location.schema`` (``search_path`` is set per connection), created with
the migrations under an advisory lock, so processes starting together migrate once.
Retention takes a per-schema advisory lock too: one process prunes at a time.

Importing this module needs ``psycopg`` (``pip install 'spanline[postgres]'``).
"""

# ruff: noqa: S608 - SQL is built from fixed fragments only; every value is bound

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import psycopg

from spanline._version import __version__
from spanline.core.location import StoreLocation
from spanline.store.backend import StoreError
from spanline.store.retention import delete_oldest_step
from spanline.store.row import COLUMNS, RowValues
from spanline.store.schema import META_TABLE_SQL, MIGRATIONS, SCHEMA_VERSION, SchemaTooNewError
from spanline.store.summary import (
    SERVICES_SQL,
    SUMMARY_COLUMNS,
    services,
    summaries,
    upsert_sql,
)

__all__ = ["PostgresBackend"]

_COPY = f"COPY spans ({', '.join(COLUMNS)}) FROM STDIN"
_INSERT = f"INSERT INTO spans ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
_UPSERT = upsert_sql("%s", "LEAST", "GREATEST")
# A batch's summaries are COPYed into a session-private table and merged with one
# statement (faster than one upsert per trace), in trace order (no deadlocks).
_BATCH_TABLE = (
    "CREATE TEMP TABLE IF NOT EXISTS spanline_batch_traces (LIKE traces) ON COMMIT DELETE ROWS"
)
_COPY_SUMMARIES = f"COPY spanline_batch_traces ({', '.join(SUMMARY_COLUMNS)}) FROM STDIN"
_MERGE = _UPSERT.replace(
    f"VALUES ({', '.join(['%s'] * len(SUMMARY_COLUMNS))})",
    "SELECT * FROM spanline_batch_traces ORDER BY trace_hex",
)
_SERVICES = SERVICES_SQL.format(mark="%s")
_DATA_ERRORS = (psycopg.DataError, psycopg.IntegrityError)
_orphans: list[psycopg.Connection[Any]] = []
"""Connections inherited across a fork: kept, never closed, in the child."""


class PostgresBackend:
    """A connection to a PostgreSQL store (see the module docs)."""

    placeholder = "%s"

    def __init__(
        self,
        location: StoreLocation,
        *,
        connect_timeout_s: float = 5.0,
        readonly: bool = False,
        application_name: str = "spanline-store",
    ) -> None:
        self.location = location
        self._application_name = application_name
        self._connect_timeout = max(1, math.ceil(connect_timeout_s))
        self._readonly = readonly
        self._conn: psycopg.Connection[Any] | None = None
        self._lock_key = f"spanline-store:{location.schema}"

    @property
    def connected(self) -> bool:
        """True while the connection is open (and not known to be broken)."""
        conn = self._conn
        return conn is not None and not conn.closed and not conn.broken

    def connect(self, target_version: int = SCHEMA_VERSION) -> int:
        """Connect, create the schema if needed and migrate it to ``target_version``."""
        self.close()
        conn = psycopg.connect(
            self.location.target,
            autocommit=True,
            connect_timeout=self._connect_timeout,
            application_name=self._application_name,
        )
        try:
            version = self._prepare(conn, target_version)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return version

    def _prepare(self, conn: psycopg.Connection[Any], target: int) -> int:
        schema = self.location.schema  # validated: letters, digits, underscores
        where = self.location.display
        # the store's statements are short; compiling them (JIT) costs more than it saves
        conn.execute("SET jit = off")
        if self._readonly:
            conn.execute(f'SET search_path TO "{schema}"')
            version = _version(conn)
            if version > SCHEMA_VERSION:
                raise SchemaTooNewError(_too_new(where, version))
            if version < target:
                raise StoreError(
                    f"{where} has store schema version {version} and is opened read-only; "
                    f"open it once for writing to upgrade it to version {target}"
                )
            return version
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._lock_key,))
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            conn.execute(f'SET LOCAL search_path TO "{schema}"')
            conn.execute(META_TABLE_SQL)
            version = _version(conn)
            if version > SCHEMA_VERSION:
                raise SchemaTooNewError(_too_new(where, version))
            try:
                for step in MIGRATIONS[version:target]:
                    for sql in step.postgresql:
                        conn.execute(sql)
            except psycopg.errors.DuplicateTable as error:
                raise StoreError(
                    f"{where} is not a spanline store but already has a table spanline "
                    f"needs ({str(error).strip()}); use another schema (?schema=NAME)"
                ) from None
            if version < target:
                conn.execute(
                    "INSERT INTO spanline_meta (key, value) VALUES ('schema_version', %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(target),),
                )
                version = target
        conn.execute(f'SET search_path TO "{schema}"')
        if version == SCHEMA_VERSION:  # older versions exist only in upgrade tests
            conn.execute(_BATCH_TABLE)
        return version

    def _connection(self) -> psycopg.Connection[Any]:
        if not self.connected:
            self.connect()
        assert self._conn is not None  # noqa: S101 - connect() set it or raised
        return self._conn

    def write(self, rows: Sequence[RowValues]) -> None:
        """COPY the rows and merge their trace summaries, in one transaction."""
        conn = self._connection()
        with conn.transaction(), conn.cursor() as cursor:
            with cursor.copy(_COPY) as copy:
                for row in rows:
                    copy.write_row(row)
            with cursor.copy(_COPY_SUMMARIES) as copy:
                for summary in summaries(rows):
                    copy.write_row(summary)
            cursor.execute(_MERGE)
            cursor.executemany(_SERVICES, services(rows))

    def write_each(self, rows: Sequence[RowValues]) -> int:
        """Insert row by row (a savepoint each), skipping refused rows."""
        conn = self._connection()
        refused = 0
        kept = []
        with conn.transaction(), conn.cursor() as cursor:
            for row in rows:
                try:
                    with conn.transaction():
                        cursor.execute(_INSERT, row)
                    kept.append(row)
                except _DATA_ERRORS:
                    refused += 1
            cursor.executemany(_UPSERT, summaries(kept))
            cursor.executemany(_SERVICES, services(kept))
        return refused

    def is_data_error(self, error: BaseException) -> bool:
        """Data and integrity errors (a value PostgreSQL cannot store, such as NUL)."""
        return isinstance(error, _DATA_ERRORS)

    def count_spans(self) -> int:
        """How many spans the store holds."""
        row = self._connection().execute("SELECT count(*) FROM spans").fetchone()
        return int(row[0]) if row else 0

    def delete_oldest(self, limit: int, before_ns: int | None) -> int:
        """One retention step; 0 when another process holds the retention lock."""
        conn = self._connection()
        with conn.transaction():
            locked = conn.execute(
                "SELECT pg_try_advisory_xact_lock(hashtext(%s))",
                (self._lock_key + ":retention",),
            ).fetchone()
            if not locked or not locked[0]:
                return 0
            return delete_oldest_step(
                conn, "%s", limit, before_ns, "ctid", "ctid = ANY(ARRAY({rows}))"
            )

    def query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Run one statement written with ``?`` placeholders and fetch all rows."""
        cursor = self._connection().execute(sql.replace("?", "%s"), params)
        return cursor.fetchall() if cursor.description else []

    def close(self) -> None:
        """Close the connection."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def forget(self) -> None:
        """In a forked child: drop the inherited connection without closing it
        (closing would end the parent's session; psycopg itself never finalizes a
        connection in a process other than the one that opened it)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            _orphans.append(conn)  # never closed, never collected, in this child


def _version(conn: psycopg.Connection[Any]) -> int:
    try:
        with conn.transaction():
            row = conn.execute(
                "SELECT value FROM spanline_meta WHERE key = 'schema_version'"
            ).fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return int(row[0]) if row else 0


def _too_new(where: str, version: int) -> str:
    return (
        f"{where} has store schema version {version}; spanline {__version__} reads "
        f"versions up to {SCHEMA_VERSION}: upgrade spanline to use this store"
    )
