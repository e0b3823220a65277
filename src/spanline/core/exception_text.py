"""What a span may say about an exception: database drivers' messages are withheld.

A database driver's message often quotes the values of the statement that failed:
PostgreSQL's ``Key (email)=(…) already exists``, ``invalid input syntax for type
integer: "…"``, and SQLAlchemy's ``[parameters: (…)]``.  The database spans of
:mod:`spanline.integrations.sql` never record them, but the same exception usually
travels on, through every span it leaves (a request, an operation, a job): each of
those would record its message and its stack trace's final line as any other.

So the message of an exception raised by a database library -- its class defined in
one of :data:`WITHHELD_MODULES` -- is left out wherever spanline records an
exception: the ``exception`` event has no ``exception.message``, its
``exception.stacktrace`` keeps every frame but prints only the class on that
exception's line (in a chain too: a ``ValueError`` raised ``from`` a driver error
keeps its own message), and the span's status description is the class name.  A
status description set while such an exception is being handled loses its message
too (:func:`scrub`).  The exception itself reaches the caller unchanged.  What code
copies out of it -- ``raise AppError(str(error))`` -- is that code's own message and
is recorded as such.
"""

from __future__ import annotations

import sys
import traceback

__all__ = [
    "WITHHELD_MODULES",
    "describe",
    "event_attributes",
    "is_withheld",
    "qualified_name",
    "scrub",
]

WITHHELD_MODULES: tuple[str, ...] = (
    "aiosqlite",
    "asyncmy",
    "asyncpg",
    "cx_Oracle",
    "django.db",  # re-raises the driver's error with the same arguments
    "mariadb",
    "MySQLdb",
    "mysql.connector",
    "oracledb",
    "peewee",
    "pg8000",
    "psycopg",
    "psycopg2",
    "psycopg_pool",
    "pymysql",
    "pyodbc",
    "sqlalchemy",
    "sqlite3",
    "tortoise",
)
"""Top-level packages (and modules) whose exceptions' messages never enter a span."""


def is_withheld(exception: BaseException) -> bool:
    """Whether ``exception``'s class comes from a database library (its message may
    quote statement values)."""
    return _withheld_type(type(exception))


def _withheld_type(cls: type) -> bool:
    module = getattr(cls, "__module__", None)
    return isinstance(module, str) and _withheld_path(module)


def _withheld_path(dotted: str) -> bool:
    """Whether a module name, or a class's qualified name, lies in WITHHELD_MODULES."""
    return any(dotted == name or dotted.startswith(name + ".") for name in WITHHELD_MODULES)


def qualified_name(cls: type) -> str:
    """``module.Qualname`` of an exception class (``Qualname`` alone for builtins and
    ``__main__``): the ``exception.type`` and ``error.type`` attributes."""
    module = cls.__module__
    if module in ("builtins", "__main__"):
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def describe(exception: BaseException) -> str:
    """The status description of a span that failed with ``exception``:
    ``Class: message``, or the class alone when the message is withheld or
    cannot be rendered."""
    name = type(exception).__qualname__
    if is_withheld(exception):
        return name
    try:
        return f"{name}: {exception}"
    except Exception:  # noqa: BLE001 - a broken __str__ must not break the app
        return name


def scrub(description: str) -> str:
    """A status description set while a withheld exception is being handled, minus
    that exception's message: OpenTelemetry's ``use_span`` and many instrumentations
    write ``f"{type(exc).__name__}: {exc}"``, code calling ``set_status`` often
    ``str(exc)``; such a description becomes the class name alone."""
    exception = sys.exception()
    if exception is None or not is_withheld(exception):
        return description
    try:
        message = str(exception)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break tracing
        return description
    return describe(exception) if message and message in description else description


def _withheld_node(item: traceback.TracebackException) -> bool:
    """Whether a rendered exception's class is withheld (3.13 deprecates reading the
    class back: its qualified name tells the module)."""
    if sys.version_info >= (3, 13):
        return _withheld_path(item.exc_type_str)
    return item.exc_type is not None and _withheld_type(item.exc_type)


def _stacktrace(exception: BaseException) -> str:
    """The traceback as Python prints it, minus the messages (and notes) of the
    database exceptions in its chain."""
    rendered = traceback.TracebackException.from_exception(exception, compact=True)
    seen: set[int] = set()
    pending = [rendered]
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if _withheld_node(item):
            if not hasattr(item, "_str"):
                # a Python that renders messages elsewhere: the frames alone
                return "".join(traceback.format_tb(exception.__traceback__))
            # TracebackException keeps the rendered message in ``_str`` (3.11-3.13)
            item._str = ""
            item.__notes__ = None
        pending.extend(x for x in (item.__cause__, item.__context__) if x is not None)
        pending.extend(getattr(item, "exceptions", None) or ())
    return "".join(rendered.format())


def event_attributes(exception: BaseException) -> dict[str, object]:
    """The attributes of an OpenTelemetry ``exception`` event for ``exception``:
    ``exception.type``, ``exception.message`` (unless withheld) and
    ``exception.stacktrace``."""
    cls = type(exception)
    event: dict[str, object] = {"exception.type": qualified_name(cls)}
    if not is_withheld(exception):
        try:
            event["exception.message"] = str(exception)
        except Exception:  # noqa: BLE001 - a broken __str__ must not break tracing
            event["exception.message"] = f"<unprintable {cls.__qualname__}>"
    event["exception.stacktrace"] = _stacktrace(exception)
    return event
