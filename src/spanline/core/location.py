"""Where the recording store lives: a SQLite file (the default) or a PostgreSQL
database.  (In the core, with no import of the store layer, because the ``store``
setting is checked with it when the configuration loads.)

Resolved like every spanline setting -- argument, then ``configure(store=...)``, then
``SPANLINE_STORE``, then the default ``./spanline.db`` -- and checked here, so a bad value is a
:class:`StoreConfigError` that names the culprit and says what is accepted:

* a path (``./spanline.db``, ``/var/lib/app/traces.db``) or ``sqlite:///path``:
  a SQLite file;
* ``postgresql://user@host:5432/dbname`` (or ``postgres://``): a PostgreSQL
  database; an optional ``schema=NAME`` query parameter (spanline's own, removed
  before connecting) puts the tables in that schema instead of ``public``.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_STORE",
    "ENVIRONMENT_VARIABLE",
    "StoreConfigError",
    "StoreLocation",
    "parse_location",
    "resolve_store",
]

DEFAULT_STORE = "./spanline.db"
ENVIRONMENT_VARIABLE = "SPANLINE_STORE"
_SCHEMA = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")  # used with fullmatch
_POSTGRES = ("postgresql://", "postgres://")


class StoreConfigError(ValueError):
    """The store location cannot be used; the message names it and what is accepted."""


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """A resolved store: ``kind`` is ``"sqlite"`` or ``"postgresql"``; ``target`` is
    the file path or the connection URL (without spanline's ``schema`` parameter);
    ``schema`` is the PostgreSQL schema (``"public"`` unless given)."""

    kind: str
    target: str
    schema: str = "public"

    @property
    def display(self) -> str:
        """The location for messages and stats: a PostgreSQL password is hidden."""
        if self.kind == "sqlite":
            return self.target
        parts = urllib.parse.urlsplit(self.target)
        netloc = parts.netloc
        if parts.password is not None:
            netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
        shown = urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=""))
        return shown if self.schema == "public" else f"{shown} (schema {self.schema})"


def resolve_store(
    store: str | os.PathLike[str] | StoreLocation | None = None,
    *,
    schema: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> StoreLocation:
    """The store to use: ``store`` if given, else ``spanline.configure(store=...)``,
    else ``SPANLINE_STORE``, else ``./spanline.db``.  ``schema`` (PostgreSQL only)
    overrides a ``schema=`` in the URL.  Raises :class:`StoreConfigError` naming the
    culprit.  (An explicit ``environ`` skips the configured store: it is for tests of
    the environment variable.)"""
    if isinstance(store, StoreLocation):
        return store if schema is None else _with_schema(store, schema, "schema")
    env = os.environ if environ is None else environ
    configured = None
    if store is None and environ is None:
        # imported here: config checks store locations with this module while it loads
        from spanline.core.config import configured_store

        configured = configured_store()
    if store is not None:
        origin = "store"
        raw: object = store
    elif configured is not None:
        origin, raw = "configure(store=...)", configured
    elif env.get(ENVIRONMENT_VARIABLE, "").strip():
        origin, raw = ENVIRONMENT_VARIABLE, env[ENVIRONMENT_VARIABLE].strip()
    else:
        origin, raw = "the default", DEFAULT_STORE
    if isinstance(raw, os.PathLike):
        raw = os.fspath(raw)
    if not isinstance(raw, str) or not raw.strip():
        raise StoreConfigError(
            f"{origin}={raw!r} is not a store location; use a SQLite file path "
            "or a postgresql:// URL"
        )
    location = parse_location(origin, raw.strip())
    return location if schema is None else _with_schema(location, schema, "schema")


def parse_location(origin: str, text: str) -> StoreLocation:
    """``text`` as a store location; a :class:`StoreConfigError` names ``origin``
    (the argument or variable the text came from) and what is accepted."""
    lowered = text.lower()
    if lowered.startswith(_POSTGRES):
        return _parse_postgres(origin, text)
    if lowered.startswith("sqlite:"):
        path = text[len("sqlite:") :]
        if path.startswith("///"):
            path = path[2:]  # sqlite:///abs/path -> /abs/path
        elif path.startswith("//"):
            raise StoreConfigError(
                f"{origin}={text!r}: a SQLite URL has no host; write sqlite:///path/to/file.db"
            )
        if not path:
            raise StoreConfigError(f"{origin}={text!r} names no file")
        return StoreLocation("sqlite", str(Path(path)))
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", text):
        scheme = text.split("://", 1)[0]
        raise StoreConfigError(
            f"{origin}={text!r}: {scheme!r} stores are not supported; use a SQLite file "
            "path (or sqlite:///path) or a postgresql:// URL"
        )
    if text == ":memory:":
        raise StoreConfigError(
            f"{origin}={text!r}: an in-memory SQLite database cannot be shared by the "
            "writer thread and readers; use a file path"
        )
    return StoreLocation("sqlite", text)


def _parse_postgres(origin: str, text: str) -> StoreLocation:
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as error:
        raise StoreConfigError(f"{origin}: {error} in the PostgreSQL URL") from None
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    schema = "public"
    kept = []
    for key, value in query:
        if key == "schema":
            schema = value
        else:
            kept.append((key, value))
    target = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(kept)))
    return _with_schema(StoreLocation("postgresql", target), schema, f"{origin} (schema=)")


def _with_schema(location: StoreLocation, schema: str, origin: str) -> StoreLocation:
    if location.kind != "postgresql":
        raise StoreConfigError(f"{origin}: a schema applies to PostgreSQL stores only")
    if not isinstance(schema, str) or not _SCHEMA.fullmatch(schema):
        raise StoreConfigError(
            f"{origin}={schema!r} is not a valid schema name; use letters, digits and "
            "underscores (at most 63, not starting with a digit)"
        )
    return StoreLocation(location.kind, location.target, schema)
