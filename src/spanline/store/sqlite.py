"""The SQLite backend: one file, WAL mode, one writer connection.

Settings on every connection: ``journal_mode=WAL`` (readers never block the writer
nor the writer them), ``synchronous=NORMAL`` (a commit is durable against a crash
of the process -- SIGKILL included -- and the file always consistent; only a power
loss may take the last commits back), ``busy_timeout`` so that several processes
writing one file wait for each other instead of failing, and a WAL checkpoint every
~40 MB instead of every 4 MB (fewer, larger checkpoints keep ingest fast).  Extra
``PRAGMA`` settings can be given (``pragmas={"synchronous": "FULL"}``).
"""

# ruff: noqa: S608 - SQL is built from fixed fragments only; every value is bound

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from spanline._version import __version__
from spanline.core.location import StoreLocation
from spanline.store.backend import StoreError
from spanline.store.retention import delete_oldest_step
from spanline.store.row import COLUMNS, RowValues
from spanline.store.schema import META_TABLE_SQL, MIGRATIONS, SCHEMA_VERSION, SchemaTooNewError
from spanline.store.summary import SERVICES_SQL, services, summaries, upsert_sql

__all__ = ["SqliteBackend"]

_INSERT = f"INSERT INTO spans ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_UPSERT = upsert_sql("?", "min", "max")
_SERVICES = SERVICES_SQL.format(mark="?")
_PRAGMA_NAME = re.compile(r"[a-z_]+")  # used with fullmatch
_PRAGMA_VALUE = re.compile(r"-?[0-9]+|[A-Za-z_]+")  # used with fullmatch
_DEFAULT_PRAGMAS = {
    "journal_mode": "WAL",
    "synchronous": "NORMAL",
    "wal_autocheckpoint": "10000",
}
# sqlite3 binds str, int, float and bytes directly but looks None up in its adapter
# registry and then probes for __adapt__/__conform__: ~0.25 µs per None, and a span
# row holds many (parent, status message, records, meta, events...).  An adapter
# that maps None to itself binds the same NULL in a quarter of the time.  It is
# process-wide, so it is only added when nobody registered one for None already.
if (type(None), sqlite3.PrepareProtocol) not in sqlite3.adapters:
    _none: dict[None, None] = {}
    sqlite3.register_adapter(type(None), cast("Callable[[None], None]", _none.get))
_orphans: list[sqlite3.Connection] = []
"""Connections inherited across a fork: kept, never closed, in the child."""
# errors about the data itself: retrying the same rows cannot help
_DATA_ERRORS = (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError, OverflowError)


class SqliteBackend:
    """A connection to a SQLite store file (see the module docs for its settings)."""

    placeholder = "?"

    def __init__(
        self,
        location: StoreLocation,
        *,
        busy_timeout_s: float = 5.0,
        pragmas: Mapping[str, str | int] | None = None,
        readonly: bool = False,
    ) -> None:
        self.location = location
        self.path = Path(location.target)
        self._busy_timeout_s = busy_timeout_s
        self._pragmas = {**_DEFAULT_PRAGMAS, **_checked(pragmas or {})}
        self._readonly = readonly
        self._conn: sqlite3.Connection | None = None

    @property
    def connected(self) -> bool:
        """True while the connection is open."""
        return self._conn is not None

    def _open(self) -> sqlite3.Connection:
        if not self._readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout_s,
            isolation_level=None,
            check_same_thread=False,  # used by one thread at a time (see backend.py)
        )
        try:
            for name, value in self._pragmas.items():
                conn.execute(f"PRAGMA {name} = {value}")
            if self._readonly:
                conn.execute("PRAGMA query_only = ON")
        except BaseException:
            conn.close()
            raise
        return conn

    def connect(self, target_version: int = SCHEMA_VERSION) -> int:
        """Open the file (creating it and its folder if needed) and bring its schema
        to ``target_version`` (older versions exist for the upgrade tests)."""
        self.close()
        conn = self._open()
        try:
            version = _migrate(conn, self.location.display, target_version, self._readonly)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return version

    def _connection(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            self.connect()
            conn = self._conn
        assert conn is not None  # noqa: S101 - connect() set it or raised
        return conn

    def write(self, rows: Sequence[RowValues]) -> None:
        """Insert ``rows`` and merge their trace summaries, in one transaction."""
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            # plain tuples bind ~1 µs/row faster than a NamedTuple subclass
            conn.executemany(_INSERT, map(tuple, rows))
            conn.executemany(_UPSERT, summaries(rows))
            conn.executemany(_SERVICES, services(rows))
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise

    def write_each(self, rows: Sequence[RowValues]) -> int:
        """Insert row by row, skipping those SQLite refuses; returns how many were."""
        conn = self._connection()
        refused = 0
        conn.execute("BEGIN IMMEDIATE")
        try:
            kept = []
            for row in rows:
                try:
                    conn.execute("SAVEPOINT one")
                    conn.execute(_INSERT, tuple(row))
                    conn.execute("RELEASE one")
                    kept.append(row)
                except _DATA_ERRORS:
                    conn.execute("ROLLBACK TO one")
                    conn.execute("RELEASE one")
                    refused += 1
            conn.executemany(_UPSERT, summaries(kept))
            conn.executemany(_SERVICES, services(kept))
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        return refused

    def is_data_error(self, error: BaseException) -> bool:
        """Integrity, data and binding errors (a value SQLite cannot store)."""
        return isinstance(error, _DATA_ERRORS)

    def count_spans(self) -> int:
        """How many spans the store holds."""
        return int(self._connection().execute("SELECT count(*) FROM spans").fetchone()[0])

    def delete_oldest(self, limit: int, before_ns: int | None) -> int:
        """Delete about ``limit`` spans of the oldest traces (see :class:`Backend`)."""
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            # The newest row's trace is kept: SQLite numbers a new row max(seq) + 1,
            # so keeping the maximum keeps seq -- the live-update cursor -- growing.
            newest = conn.execute(
                "SELECT trace_hex FROM spans WHERE seq = (SELECT max(seq) FROM spans)"
            ).fetchone()
            keep = newest[0] if newest else None
            deleted = delete_oldest_step(conn, "?", limit, before_ns, keep=keep)
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        return deleted

    def query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Run one statement and fetch all rows."""
        return self._connection().execute(sql, params).fetchall()

    def close(self) -> None:
        """Close the connection."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def forget(self) -> None:
        """In a forked child: drop the inherited connection without closing it.
        SQLite connections must not cross a fork; closing one in the child could
        disturb the file locks of the child's own new connection, so it is kept
        referenced (never closed) instead."""
        conn, self._conn = self._conn, None
        if conn is not None:
            _orphans.append(conn)


def _checked(pragmas: Mapping[str, str | int]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in pragmas.items():
        text = str(value)
        if not _PRAGMA_NAME.fullmatch(name) or not _PRAGMA_VALUE.fullmatch(text):
            raise ValueError(
                f"pragmas: {name}={value!r} is not a plain SQLite pragma setting "
                "(a lower-case name and a number or a word)"
            )
        out[name] = text
    return out


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):  # the caller discards it on failure
            conn.execute("ROLLBACK")


def _migrate(conn: sqlite3.Connection, where: str, target: int, readonly: bool) -> int:
    """Bring the schema to ``target``, all steps in one transaction."""
    version = _version(conn)
    if version > SCHEMA_VERSION:
        raise SchemaTooNewError(_too_new(where, version))
    if version >= target:
        return version
    if readonly:
        raise StoreError(
            f"{where} has store schema version {version} and is opened read-only; "
            f"open it once for writing to upgrade it to version {target}"
        )
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(META_TABLE_SQL)
        version = _version(conn)  # another process may have migrated meanwhile
        for step in MIGRATIONS[version:target]:
            for sql in step.sqlite:
                conn.execute(sql)
        if version < target:
            conn.execute(
                "INSERT INTO spanline_meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(target),),
            )
        conn.execute("COMMIT")
    except sqlite3.OperationalError as error:
        _rollback(conn)
        if "already exists" in str(error):
            raise StoreError(
                f"{where} is not a spanline store but already has a table spanline "
                f"needs ({error}); point the store at another file"
            ) from None
        raise
    except BaseException:
        _rollback(conn)
        raise
    return max(version, target)


def _version(conn: sqlite3.Connection) -> int:
    try:
        row = conn.execute(
            "SELECT value FROM spanline_meta WHERE key = 'schema_version'"
        ).fetchone()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return 0
        raise
    return int(row[0]) if row else 0


def _too_new(where: str, version: int) -> str:
    return (
        f"{where} has store schema version {version}; spanline {__version__} reads "
        f"versions up to {SCHEMA_VERSION}: upgrade spanline to use this store"
    )
