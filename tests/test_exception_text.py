"""Database libraries' exception messages never enter a span, wherever the exception
goes: real sqlite3 errors (PostgreSQL and SQLAlchemy: tests/test_sqlalchemy.py)."""

from __future__ import annotations

import json
import sqlite3

import pytest

import spanline
from spanline import StatusCode
from spanline.core import exception_text
from spanline.testing import Capture

SECRET = "card-4242-never-in-a-span"


def _sqlite_error() -> sqlite3.Error:
    conn = sqlite3.connect(":memory:")
    # a statement built by string formatting: the message quotes the value
    with pytest.raises(sqlite3.OperationalError, match=SECRET) as raised:
        conn.execute(f"INSERT INTO t VALUES ('{SECRET})")  # unterminated
    conn.close()
    return raised.value


def _lookup() -> None:
    with spanline.span("lookup"):
        try:
            raise _sqlite_error()
        except sqlite3.Error:
            raise KeyError("card not found") from None  # suppressed: not printed at all


def _retry() -> None:
    with spanline.span("retry"):
        try:
            raise _sqlite_error()
        except sqlite3.Error:
            raise RuntimeError("gave up after 3 tries")  # noqa: B904 - implicit chaining


def _exported(capture: Capture) -> str:
    return json.dumps([s.to_dict() for s in capture.spans])


def test_a_driver_error_leaving_a_span_keeps_its_type_and_frames_only(
    spanline_capture: Capture,
) -> None:
    error = _sqlite_error()
    with pytest.raises(sqlite3.OperationalError) as raised, spanline.span("import"):
        raise error
    assert raised.value is error  # passed through as is
    assert SECRET in str(raised.value)
    (span,) = spanline_capture.spans
    assert span.status == StatusCode.ERROR
    assert span.status_message == "OperationalError"
    (event,) = span.events
    assert event.attributes["exception.type"] == "sqlite3.OperationalError"
    assert "exception.message" not in event.attributes
    trace = str(event.attributes["exception.stacktrace"])
    assert trace.startswith("Traceback (most recent call last):")
    assert "raise error" in trace
    assert "conn.execute(" in trace
    assert trace.endswith("\nsqlite3.OperationalError\n")
    assert SECRET not in _exported(spanline_capture)


def test_other_exceptions_in_the_chain_keep_their_messages(spanline_capture: Capture) -> None:
    with pytest.raises(KeyError):
        _lookup()
    with pytest.raises(RuntimeError):
        _retry()
    lookup, retry = spanline_capture.spans
    assert lookup.events[0].attributes["exception.message"] == "'card not found'"
    assert "sqlite3" not in str(lookup.events[0].attributes["exception.stacktrace"])
    assert retry.status_message == "RuntimeError: gave up after 3 tries"
    trace = str(retry.events[0].attributes["exception.stacktrace"])
    assert "\nsqlite3.OperationalError\n" in trace
    assert "During handling of the above exception" in trace
    assert trace.endswith("RuntimeError: gave up after 3 tries\n")
    assert SECRET not in _exported(spanline_capture)


def test_exception_groups_and_notes(spanline_capture: Capture) -> None:
    error = _sqlite_error()
    error.add_note(f"while importing {SECRET}")  # notes may quote values too
    plain = ValueError("row 7 is short")
    plain.add_note("line 7")
    with pytest.raises(ExceptionGroup), spanline.span("batch"):
        raise ExceptionGroup("2 rows failed", [error, plain])
    (span,) = spanline_capture.spans
    event = span.events[0].attributes
    assert event["exception.message"] == "2 rows failed (2 sub-exceptions)"
    trace = str(event["exception.stacktrace"])
    assert "| sqlite3.OperationalError\n" in trace
    assert "| ValueError: row 7 is short\n" in trace
    assert "| line 7\n" in trace
    assert SECRET not in _exported(spanline_capture)


class _BrokenError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no")


@pytest.mark.parametrize(
    ("module", "withheld"),
    [
        ("sqlite3", True),
        ("psycopg", True),
        ("psycopg.errors", True),
        ("psycopg_pool", True),
        ("sqlalchemy.exc", True),
        ("mysql.connector.errors", True),
        ("django.db.utils", True),
        ("pg8000.exceptions", True),
        ("psycopgx", False),  # a prefix of the name only: someone else's package
        ("mysql", False),
        ("myapp.db", False),
        ("builtins", False),
    ],
)
def test_which_modules_are_withheld(module: str, withheld: bool) -> None:
    cls = type("Failure", (Exception,), {"__module__": module})
    error = cls(SECRET)
    assert exception_text.is_withheld(error) is withheld
    assert (SECRET in exception_text.describe(error)) is not withheld
    assert ("exception.message" in exception_text.event_attributes(error)) is not withheld


def test_odd_exceptions_are_still_described() -> None:
    broken = _BrokenError()
    assert exception_text.describe(broken) == "_BrokenError"
    attributes = exception_text.event_attributes(broken)
    assert attributes["exception.message"] == "<unprintable _BrokenError>"
    odd = type("Odd", (Exception,), {})
    odd.__module__ = None  # type: ignore[assignment]
    assert exception_text.is_withheld(odd("x")) is False


def test_a_status_set_while_handling_a_driver_error_loses_its_message(
    spanline_capture: Capture,
) -> None:
    with spanline.span("import") as span:
        try:
            raise _sqlite_error()
        except sqlite3.Error as error:
            span.set_status(StatusCode.ERROR, f"import failed: {error}")
    with spanline.span("parse") as other:
        try:
            raise ValueError("row 7 is short")
        except ValueError as error:
            other.set_status(StatusCode.ERROR, f"parse failed: {error}")
    with spanline.span("later") as later:
        later.set_status(StatusCode.ERROR, "no exception being handled")
    first, second, third = spanline_capture.spans
    assert first.status_message == "OperationalError"
    assert second.status_message == "parse failed: row 7 is short"
    assert third.status_message == "no exception being handled"
    assert SECRET not in _exported(spanline_capture)
