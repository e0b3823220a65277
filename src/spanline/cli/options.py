"""What the commands share: the ``--store`` option, value parsing, error handling.

Errors a user can fix (a bad filter, an unknown trace, an unusable store) become a
:class:`click.ClickException`: one ``Error: …`` line on stderr, exit code 1, no
traceback.  Values are parsed here with messages naming the option.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from spanline.store import Store, StoreConfigError, StoreError, StoreLocation, resolve_store
from spanline.store import open as open_store

__all__ = [
    "AGE",
    "ATTRIBUTE",
    "MOMENT",
    "location_of",
    "opened",
    "store_option",
    "user_errors",
]

F = TypeVar("F", bound=Callable[..., Any])

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_AGE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d|w)\s*")


def store_option(function: F) -> F:
    """The ``--store`` option every store command takes."""
    return click.option(
        "--store",
        "store",
        metavar="PATH_OR_DSN",
        default=None,
        help="the store: a SQLite file or a postgresql:// URL "
        "(default: $SPANLINE_STORE, else ./spanline.db)",
    )(function)


def location_of(store: str | None) -> StoreLocation:
    """The resolved store location, or a clean error naming the value."""
    try:
        return resolve_store(store)
    except StoreConfigError as error:
        raise click.ClickException(str(error)) from None


@contextmanager
def user_errors(what: str = "") -> Iterator[None]:
    """Turn store and argument errors into one-line CLI errors (``what`` prefixes
    the message)."""
    try:
        yield
    except (StoreError, StoreConfigError, ValueError, TypeError, OSError) as error:
        text = str(error).strip() or type(error).__name__
        raise click.ClickException(f"{what}{text}") from None


@contextmanager
def opened(store: str | None) -> Iterator[Store]:
    """An existing store opened for reading (a missing SQLite file is an error,
    not a new empty store)."""
    location = location_of(store)
    with user_errors():
        handle = open_store(location, create=False)
    try:
        with user_errors():
            yield handle
    finally:
        handle.close()


class _Age(click.ParamType[datetime.timedelta]):
    """A span of time: ``90s``, ``15m``, ``2h``, ``7d``, ``1w``, ``250ms``."""

    name = "AGE"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime.timedelta:
        if isinstance(value, datetime.timedelta):
            return value
        found = _AGE.fullmatch(str(value))
        if not found:
            self.fail(
                f"{value!r} is not a span of time; write a number and a unit "
                "(ms, s, m, h, d, w), e.g. 15m or 7d",
                param,
                ctx,
            )
        seconds = float(found.group(1)) * _UNITS[found.group(2)]
        if seconds <= 0:
            self.fail(f"{value!r} must be longer than zero", param, ctx)
        return datetime.timedelta(seconds=seconds)


class _Moment(click.ParamType[datetime.datetime]):
    """A point in time: ISO 8601 (``2026-11-22T08:00``, naive = local time) or an
    age meaning that long ago (``15m``, ``2h``)."""

    name = "TIME"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime.datetime:
        if isinstance(value, datetime.datetime):
            return value
        text = str(value).strip()
        if _AGE.fullmatch(text):
            age = AGE.convert(text, param, ctx)
            return datetime.datetime.now(datetime.UTC) - age
        try:
            return datetime.datetime.fromisoformat(text)
        except ValueError:
            self.fail(
                f"{value!r} is not a time; use ISO 8601 (2026-11-22T08:00:00) "
                "or an age such as 15m, 2h, 7d (that long ago)",
                param,
                ctx,
            )


class _Attribute(click.ParamType[tuple[str, str]]):
    """``KEY=VALUE`` (the value matches a number or boolean it spells, too)."""

    name = "KEY=VALUE"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        key, sep, wanted = str(value).partition("=")
        if not sep or not key.strip():
            self.fail(f"{value!r} is not KEY=VALUE (e.g. http.route=/orders)", param, ctx)
        return key.strip(), wanted


AGE = _Age()
"""Click type for ``--max-age``-style values (a :class:`datetime.timedelta`)."""
MOMENT = _Moment()
"""Click type for ``--since``/``--until`` (a :class:`datetime.datetime`)."""
ATTRIBUTE = _Attribute()
"""Click type for ``--attr KEY=VALUE``."""
