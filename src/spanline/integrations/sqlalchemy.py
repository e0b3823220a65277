"""SQLAlchemy: a CLIENT span per statement SQLAlchemy sends -- never its parameters.

``spanline.instrument("sqlalchemy")`` listens to SQLAlchemy's public engine events
(``before_cursor_execute``, ``after_cursor_execute``, ``handle_error``) on the
``Engine`` class, so every engine -- created before or after, Core or ORM -- is
covered; ``spanline.uninstrument("sqlalchemy")`` removes the listeners.
:func:`instrument_engine` covers one engine only, without the global switch.

Each span is named and described as the DB-API integrations do (see
:mod:`spanline.integrations.sql`): ``db.operation.name``, ``db.query.text`` (the
statement as sent, with its placeholders, capped at 1,000 characters), plus
``db.system.name`` from the dialect (the OpenTelemetry name: ``postgresql``,
``sqlite``, ``mysql``, ``mariadb``, ``oracle.db``, ``microsoft.sql_server`` …,
``other_sql`` for dialects without one), ``db.namespace`` (the URL's database),
``server.address``/``server.port`` (the URL's host and port) and
``db.operation.batch.size`` for ``executemany``.

A failed statement is marked ERROR with ``error.type`` (the driver's exception
class) and ``db.response.status_code`` (the SQLSTATE or SQLite error code) -- but
not the driver's message, which may quote a parameter (``Key (card)=(…)``,
``invalid input syntax for type integer: "…"``).  The exception itself passes
through unchanged.

When a DB-API integration (``"psycopg"``, ``"sqlite3"``) is switched on too, the
statement gets one span, this one: the DB-API wrappers see
:data:`~spanline.integrations.sql.OUTER_STATEMENT` and add none of their own.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

from sqlalchemy import event
from sqlalchemy.engine import Engine

from spanline._log import report
from spanline.core.context import current
from spanline.core.span import Span
from spanline.integrations.sql import OUTER_STATEMENT, mark_failed, statement_span

__all__ = [
    "SYSTEMS",
    "install",
    "instrument_engine",
    "system_name",
    "uninstall",
    "uninstrument_engine",
]

SYSTEMS: dict[str, str] = {
    "postgresql": "postgresql",
    "sqlite": "sqlite",
    "mysql": "mysql",
    "mariadb": "mariadb",
    "oracle": "oracle.db",
    "mssql": "microsoft.sql_server",
    "cockroachdb": "cockroachdb",
    "redshift": "aws.redshift",
    "spanner": "gcp.spanner",
    "trino": "trino",
    "clickhouse": "clickhouse",
    "clickhousedb": "clickhouse",
    "hana": "sap.hana",
    "db2": "ibm.db2",
    "ibm_db_sa": "ibm.db2",
    "firebird": "firebirdsql",
    "teradatasql": "teradata",
    "hive": "hive",
}
"""SQLAlchemy dialect name -> OpenTelemetry ``db.system.name`` (others: ``other_sql``)."""

_lock = threading.Lock()
_installed = False


class _Running(NamedTuple):
    """The statement being traced in this context, and what it replaced."""

    span: Span
    context: object  # SQLAlchemy's ExecutionContext: before/after/error agree on it
    outer: Span | None  # OUTER_STATEMENT before this statement
    previous: _Running | None


_RUNNING: contextvars.ContextVar[_Running | None] = contextvars.ContextVar(
    "spanline_sqlalchemy_statement", default=None
)


def system_name(dialect: Any) -> str:
    """The ``db.system.name`` of a SQLAlchemy dialect."""
    name = str(getattr(dialect, "name", ""))
    if name == "mysql" and getattr(dialect, "is_mariadb", False) is True:
        return "mariadb"
    return SYSTEMS.get(name, "other_sql")


def _statement_span(conn: Any, statement: str, parameters: Any, executemany: bool) -> Span:
    url = conn.engine.url
    database = url.database
    span = statement_span(system_name(conn.dialect), statement, str(database) if database else None)
    if url.host:
        span.set_attribute("server.address", str(url.host))
        if url.port:
            span.set_attribute("server.port", int(url.port))
    if executemany and isinstance(parameters, list | tuple) and len(parameters) > 1:
        span.set_attribute("db.operation.batch.size", len(parameters))
    return span


def _before_cursor_execute(
    conn: Any,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    try:
        running = _RUNNING.get()
        if running is not None and running.context is context:
            return  # listening on the engine and on the Engine class: one span
        span = _statement_span(conn, statement, parameters, executemany)
        span.start_detached(current.get())
        _RUNNING.set(_Running(span, context, OUTER_STATEMENT.get(), running))
        OUTER_STATEMENT.set(span)
    except Exception as error:  # noqa: BLE001 - tracing never breaks the app
        report("sqlalchemy", "spanline: could not trace a SQLAlchemy statement: %r", error)


def _after_cursor_execute(
    conn: Any,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    _finish(context, None)


def _handle_error(exception_context: Any) -> None:
    _finish(
        getattr(exception_context, "execution_context", None),
        getattr(exception_context, "original_exception", None),
    )


def _finish(context: object, error: BaseException | None) -> None:
    try:
        running = _RUNNING.get()
        if running is None or running.context is not context:
            return
        _RUNNING.set(running.previous)
        OUTER_STATEMENT.set(running.outer)
        if error is not None:
            mark_failed(running.span, error)
        running.span.end()
    except Exception as problem:  # noqa: BLE001 - tracing never breaks the app
        report("sqlalchemy", "spanline: could not trace a SQLAlchemy statement: %r", problem)


def _target(engine: Any) -> Any:
    return getattr(engine, "sync_engine", engine)  # an AsyncEngine's events live there


def _listen(target: Any) -> None:
    for name, listener in _LISTENERS:
        event.listen(target, name, listener)


def _remove(target: Any) -> None:
    for name, listener in _LISTENERS:
        if event.contains(target, name, listener):
            event.remove(target, name, listener)


_LISTENERS: tuple[tuple[str, Callable[..., Any]], ...] = (
    ("before_cursor_execute", _before_cursor_execute),
    ("after_cursor_execute", _after_cursor_execute),
    ("handle_error", _handle_error),
)


def install() -> None:
    """Trace the statements of every engine (listeners on the ``Engine`` class);
    calling it again does nothing."""
    global _installed
    with _lock:
        if not _installed:
            _listen(Engine)
            _installed = True


def uninstall() -> None:
    """Remove the listeners :func:`install` added."""
    global _installed
    with _lock:
        _remove(Engine)
        _installed = False


def instrument_engine(engine: Any) -> None:
    """Trace the statements of this one engine (an ``Engine`` or ``AsyncEngine``);
    harmless when repeated or combined with :func:`install`."""
    target = _target(engine)
    with _lock:
        if not event.contains(target, "before_cursor_execute", _before_cursor_execute):
            _listen(target)


def uninstrument_engine(engine: Any) -> None:
    """Stop tracing an engine passed to :func:`instrument_engine`."""
    with _lock:
        _remove(_target(engine))
