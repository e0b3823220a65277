"""What the writer and the query API need from a database: the backend interface.

Two implementations: :class:`~spanline.store.sqlite.SqliteBackend` and
:class:`~spanline.store.postgres.PostgresBackend`.  Threading rule: a backend
object is used by one thread at a time (the writer's thread, or a query API call
holding the store's lock); it never starts threads of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from spanline.core.location import StoreLocation
from spanline.store.row import RowValues

__all__ = ["Backend", "StoreError", "open_backend"]


class StoreError(RuntimeError):
    """The store cannot be opened, migrated or queried; the message says why."""


class Backend(Protocol):
    """One connection to the store, for writing or for queries."""

    location: StoreLocation
    placeholder: str
    """``?`` (SQLite) or ``%s`` (PostgreSQL)."""

    @property
    def connected(self) -> bool:
        """True while the connection is open."""

    def connect(self) -> int:
        """Open the connection and migrate the schema; returns the schema version.
        Raises :class:`StoreError` (or the driver's error) when that fails."""

    def write(self, rows: Sequence[RowValues]) -> None:
        """Insert ``rows`` and merge their trace summaries, in one transaction."""

    def write_each(self, rows: Sequence[RowValues]) -> int:
        """Insert the rows one by one in one transaction, skipping those the
        database refuses; returns how many were refused."""

    def is_data_error(self, error: BaseException) -> bool:
        """True when ``error`` is about the rows themselves (retrying cannot help)."""

    def count_spans(self) -> int:
        """How many spans the store holds."""

    def delete_oldest(self, limit: int, before_ns: int | None) -> int:
        """Delete about ``limit`` spans of the oldest traces (those that started
        before ``before_ns`` when given), in one short transaction; returns how many
        spans went (0: nothing left to delete)."""

    def query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Run one read-only statement (``?`` placeholders) and fetch all rows."""

    def close(self) -> None:
        """Close the connection (a later call to :meth:`connect` reopens it)."""

    def forget(self) -> None:
        """In a forked child: drop the inherited connection without touching it."""


def open_backend(location: StoreLocation, **options: Any) -> Backend:
    """The backend for ``location`` (not yet connected).  PostgreSQL needs
    ``psycopg`` (``pip install 'spanline[postgres]'``): without it this raises
    :class:`StoreError` saying so."""
    if location.kind == "sqlite":
        from spanline.store.sqlite import SqliteBackend

        return SqliteBackend(location, **options)
    try:
        from spanline.store.postgres import PostgresBackend
    except ImportError as error:
        raise StoreError(
            f"the PostgreSQL store {location.display} needs psycopg 3: "
            f"pip install 'spanline[postgres]' ({error})"
        ) from None
    return PostgresBackend(location, **options)
