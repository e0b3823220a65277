"""SQL: a CLIENT span per statement -- the statement, never its parameters.

* ``spanline.instrument("psycopg")`` wraps ``execute``/``executemany`` of psycopg 3's
  ``Cursor`` and ``AsyncCursor`` (``Connection.execute`` goes through them);
* ``spanline.instrument("sqlite3")`` wraps ``sqlite3.connect`` so that connections
  come back as thin proxies whose cursors are traced (``sqlite3``'s own classes are
  written in C and cannot be wrapped in place; the proxies pass every other
  attribute through);
* :func:`traced_connection` wraps any other DB-API connection the same way.

Each span is named after the statement's first keyword (``SELECT``, ``INSERT`` …)
with ``db.system.name``, ``db.operation.name``, ``db.namespace`` (the database) and
``db.query.text`` -- the statement capped at 1,000 characters.  Bound parameters
never enter a span.  An exception marks the span ERROR with its type and the
database's error code (``error.type``, ``db.response.status_code``) but not its
message, which drivers fill with parameter values; it passes through unchanged.

A layer above the DB-API (the SQLAlchemy integration) that already traces a
statement sets :data:`OUTER_STATEMENT` while the driver runs it; the wrappers here
then add no second, nested span for the same statement.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from spanline.core import exception_text
from spanline.core.context import current
from spanline.core.span import Span, SpanKind, StatusCode

__all__ = [
    "MAX_STATEMENT",
    "OUTER_STATEMENT",
    "TARGETS",
    "mark_failed",
    "statement_span",
    "traced_connection",
]

MAX_STATEMENT = 1000

OUTER_STATEMENT: contextvars.ContextVar[Span | None] = contextvars.ContextVar(
    "spanline_outer_statement", default=None
)
"""The span of the statement a higher layer is tracing right now (``None`` when no
layer is): the DB-API wrappers run the driver call without a span of their own."""


def mark_failed(span: Span, error: BaseException) -> None:
    """ERROR with the driver's exception class and status code; the message is left
    out on purpose (drivers quote parameter values in it)."""
    kind = exception_text.qualified_name(type(error))
    span.set_attribute("error.type", kind)
    code = next(
        (
            getattr(error, name, None)
            for name in ("sqlstate", "pgcode", "sqlite_errorcode")
            if getattr(error, name, None) not in (None, "")
        ),
        None,
    )
    if isinstance(code, str | int) and not isinstance(code, bool):
        span.set_attribute("db.response.status_code", str(code))
    span.add_event("exception", {"exception.type": kind})
    span.set_status(StatusCode.ERROR, kind)


def _run(system: str, statement: object, namespace: str | None, call: Callable[[], Any]) -> Any:
    """``call()`` inside a statement span; a failure is marked by :func:`mark_failed`
    (type and code only) and re-raised unchanged."""
    span = statement_span(system, statement, namespace).start_detached(current.get())
    try:
        result = call()
    except BaseException as error:
        mark_failed(span, error)
        span.end()
        raise
    span.end()
    return result


async def _run_async(
    system: str, statement: object, namespace: str | None, call: Callable[[], Awaitable[Any]]
) -> Any:
    span = statement_span(system, statement, namespace).start_detached(current.get())
    try:
        result = await call()
    except BaseException as error:
        mark_failed(span, error)
        span.end()
        raise
    span.end()
    return result


def statement_span(system: str, statement: object, namespace: str | None = None) -> Span:
    """A CLIENT span for one statement (not started)."""
    text = statement.decode("utf-8", "replace") if isinstance(statement, bytes) else str(statement)
    words = text.split(None, 1)
    operation = words[0].upper() if words else ""
    attributes: dict[str, Any] = {
        "db.system.name": system,
        "db.operation.name": operation,
        "db.query.text": text[:MAX_STATEMENT],
    }
    if namespace:
        attributes["db.namespace"] = namespace
    return Span(operation or system, kind=SpanKind.CLIENT, attributes=attributes)


# -- psycopg 3 ---------------------------------------------------------------------------


def _psycopg_namespace(cursor: Any) -> str | None:
    try:
        return str(cursor.connection.info.dbname)
    except Exception:  # noqa: BLE001 - a closed or odd connection: no namespace
        return None


def _wrap_psycopg(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def execute_traced(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        if OUTER_STATEMENT.get() is not None:
            return original(self, query, *args, **kwargs)
        text, namespace = _query_text(query, self), _psycopg_namespace(self)
        return _run("postgresql", text, namespace, lambda: original(self, query, *args, **kwargs))

    return execute_traced


def _wrap_psycopg_async(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def execute_traced(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        if OUTER_STATEMENT.get() is not None:
            return await original(self, query, *args, **kwargs)
        text, namespace = _query_text(query, self), _psycopg_namespace(self)
        return await _run_async(
            "postgresql", text, namespace, lambda: original(self, query, *args, **kwargs)
        )

    return execute_traced


def _query_text(query: Any, cursor: Any) -> str:
    if isinstance(query, str | bytes):
        return query.decode("utf-8", "replace") if isinstance(query, bytes) else query
    as_string = getattr(query, "as_string", None)  # psycopg.sql.Composed
    if callable(as_string):
        with contextlib.suppress(Exception):  # fall back to the object's repr
            return str(as_string(cursor))
    return repr(query)


# -- generic DB-API proxies (sqlite3) ---------------------------------------------------


class TracedCursor:
    """A DB-API cursor whose ``execute``/``executemany`` are spans."""

    def __init__(self, cursor: Any, system: str, namespace: str | None) -> None:
        self._cursor = cursor
        self._system = system
        self._namespace = namespace

    def execute(self, operation: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one statement in a span."""
        if OUTER_STATEMENT.get() is not None:
            self._cursor.execute(operation, *args, **kwargs)
            return self
        call = functools.partial(self._cursor.execute, operation, *args, **kwargs)
        _run(self._system, operation, self._namespace, call)
        return self

    def executemany(self, operation: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a statement for many parameter sets in one span."""
        if OUTER_STATEMENT.get() is not None:
            self._cursor.executemany(operation, *args, **kwargs)
            return self
        call = functools.partial(self._cursor.executemany, operation, *args, **kwargs)
        _run(self._system, operation, self._namespace, call)
        return self

    def __iter__(self) -> Any:
        return iter(self._cursor)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class TracedConnection:
    """A DB-API connection whose cursors (and ``execute`` shortcuts) are traced."""

    def __init__(self, connection: Any, system: str, namespace: str | None = None) -> None:
        self._connection = connection
        self._system = system
        self._namespace = namespace

    def cursor(self, *args: Any, **kwargs: Any) -> TracedCursor:
        """A traced cursor."""
        return TracedCursor(self._connection.cursor(*args, **kwargs), self._system, self._namespace)

    def execute(self, operation: Any, *args: Any, **kwargs: Any) -> TracedCursor:
        """``connection.execute`` shortcut (sqlite3), traced."""
        return self.cursor().execute(operation, *args, **kwargs)  # type: ignore[no-any-return]

    def executemany(self, operation: Any, *args: Any, **kwargs: Any) -> TracedCursor:
        """``connection.executemany`` shortcut (sqlite3), traced."""
        return self.cursor().executemany(operation, *args, **kwargs)  # type: ignore[no-any-return]

    def __enter__(self) -> TracedConnection:
        self._connection.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        return self._connection.__exit__(*exc_info)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def traced_connection(connection: Any, system: str, namespace: str | None = None) -> Any:
    """Wrap any DB-API connection so its statements become spans."""
    return TracedConnection(connection, system, namespace)


def _wrap_sqlite_connect(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def connect_traced(database: Any, *args: Any, **kwargs: Any) -> Any:
        return TracedConnection(original(database, *args, **kwargs), "sqlite", str(database))

    return connect_traced


# integration name -> [(module, attribute owner, attribute, wrapper factory)]; an empty
# owner means a module-level function
TARGETS: dict[str, list[tuple[str, str, str, Callable[..., Any]]]] = {
    "psycopg": [
        ("psycopg", "Cursor", "execute", _wrap_psycopg),
        ("psycopg", "Cursor", "executemany", _wrap_psycopg),
        ("psycopg", "AsyncCursor", "execute", _wrap_psycopg_async),
        ("psycopg", "AsyncCursor", "executemany", _wrap_psycopg_async),
    ],
    "sqlite3": [("sqlite3", "", "connect", _wrap_sqlite_connect)],
}
