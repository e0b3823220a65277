"""Turning query arguments into checked values and parameterized SQL conditions.

Everything a caller passes is validated here with a message naming the argument
(:class:`ValueError`/:class:`TypeError`), and becomes either a bound parameter or a
fragment chosen from a fixed list -- user input never becomes SQL text.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spanline.core import ids
from spanline.store.row import KINDS, STATUSES, TYPES

__all__ = [
    "Conditions",
    "actor_filter",
    "duration_ns",
    "span_key",
    "time_ns",
    "trace_hex",
]

_HEX32 = re.compile(r"[0-9a-fA-F]{32}")  # used with fullmatch
_HEX16 = re.compile(r"[0-9a-fA-F]{16}")  # used with fullmatch
_MAX_TRACE_ID = 256
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")  # used with fullmatch


def trace_hex(trace_id: object) -> str:
    """The W3C hex id a trace is stored under, from any of its forms: 32 hex digits,
    a ``tr_`` id, or the external id a trace was started with (hashed exactly as
    ``spanline.start_trace(trace_id=...)`` does)."""
    if not isinstance(trace_id, str) or not trace_id.strip():
        raise ValueError(f"trace id must be a non-empty string, got {trace_id!r}")
    text = trace_id.strip()
    if len(text) > _MAX_TRACE_ID:
        raise ValueError(f"trace id is longer than {_MAX_TRACE_ID} characters: {text[:40]!r}…")
    if _HEX32.fullmatch(text):
        return text.lower()
    return ids.trace_hex(ids.trace_int_from_id(text))


def span_key(span_id: object) -> tuple[str, int | None]:
    """``(span_hex, start_ms)`` for a span id: an ``op_``/``hd_``/``sp_`` id carries
    its start millisecond (which makes the lookup an index range), 16 hex digits do
    not (``None``)."""
    if isinstance(span_id, str) and _HEX16.fullmatch(span_id.strip()):
        return span_id.strip().lower(), None
    if (
        isinstance(span_id, str)
        and ids.is_valid_id(span_id)
        and span_id[:3]
        in (
            "op_",
            "hd_",
            "sp_",
        )
    ):
        return f"{ids.decode_span_id(span_id):016x}", ids.b58decode(span_id[3:11])
    raise ValueError(
        f"span id {span_id!r} is neither an op_/hd_/sp_ id nor 16 hex digits (a W3C span id)"
    )


def time_ns(value: object, name: str) -> int | None:
    """A point in time as ns since the epoch: an ``int`` of ns, or a ``datetime``
    (a naive one is local time, as ``datetime.timestamp`` reads it)."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        whole = int(value.timestamp())
        return whole * 1_000_000_000 + value.microsecond * 1000
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError(
        f"{name} must be nanoseconds since the epoch (int) or a datetime, "
        f"got {type(value).__name__}"
    )


def duration_ns(value: object, name: str) -> int | None:
    """A duration as ns: an ``int`` of ns or a ``timedelta``."""
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        return (
            value.days * 86_400_000_000_000
            + value.seconds * 1_000_000_000
            + value.microseconds * 1000
        )
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError(f"{name} must be nanoseconds (int) or a timedelta, got {type(value).__name__}")


def actor_filter(actor: object) -> tuple[str, str | None]:
    """``(type, id or None)`` from ``"user:42"``, ``"user"``, ``("user", 42)`` or
    ``{"type": "user", "id": 42}`` (``name`` or ``source`` stand in for ``id``)."""
    if isinstance(actor, str) and actor.strip():
        kind, sep, who = actor.strip().partition(":")
        return kind, (who if sep else None)
    if isinstance(actor, tuple) and len(actor) == 2 and isinstance(actor[0], str):
        return actor[0], None if actor[1] is None else str(actor[1])
    if isinstance(actor, Mapping) and isinstance(actor.get("type"), str):
        who = actor.get("id", actor.get("name", actor.get("source")))
        return str(actor["type"]), None if who is None else str(who)
    raise ValueError(
        f"actor={actor!r}: use 'type:id' (e.g. 'user:42'), a type alone, "
        "a (type, id) tuple or a mapping with 'type'"
    )


def _choice(value: object, name: str, accepted: tuple[str, ...]) -> str:
    text = value.lower() if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(accepted):
        text = accepted[value]  # StatusCode / SpanKind members are ints
    if text not in accepted:
        raise ValueError(f"{name}={value!r} is invalid; use one of {', '.join(accepted)}")
    return text


@dataclass
class Conditions:
    """WHERE conditions and their parameters, built one checked filter at a time.
    ``dialect`` is ``"sqlite"`` or ``"postgresql"``; ``alias`` prefixes columns."""

    dialect: str
    alias: str = ""
    clauses: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, clause: str, *params: Any) -> None:
        """Add a condition written with ``?`` placeholders."""
        self.clauses.append(clause)
        self.params.extend(params)

    def col(self, name: str) -> str:
        """A column, qualified with the alias."""
        return f"{self.alias}{name}"

    def equals(self, column: str, value: object) -> None:
        """``column = value`` unless ``value`` is ``None``."""
        if value is not None:
            self.add(f"{self.col(column)} = ?", value)

    def status(self, value: object) -> None:
        """A span status (``unset``/``ok``/``error`` or a ``StatusCode``)."""
        if value is not None:
            self.add(f"{self.col('status')} = ?", _choice(value, "status", STATUSES))

    def kind(self, value: object) -> None:
        """A span kind (``server``, ``client`` … or a ``SpanKind``)."""
        if value is not None:
            self.add(f"{self.col('kind')} = ?", _choice(value, "kind", KINDS))

    def type(self, value: object) -> None:
        """A spanline span type (``span``/``operation``/``handler``)."""
        if value is not None:
            self.add(f"{self.col('type')} = ?", _choice(value, "type", TYPES))

    def between(self, column: str, low: int | None, high: int | None) -> None:
        """``low <= column < high`` (either bound optional)."""
        if low is not None:
            self.add(f"{self.col(column)} >= ?", low)
        if high is not None:
            self.add(f"{self.col(column)} < ?", high)

    def json_matches(self, column: str, wanted: Mapping[str, object] | None) -> None:
        """Each ``key = value`` of ``wanted`` holds in the JSON ``column``.  A string
        value that spells a number or a boolean also matches that number or boolean
        (so text typed in a search box finds ``http.status_code = 500``)."""
        if not wanted:
            return
        if not isinstance(wanted, Mapping):
            raise TypeError(f"{column} must be a mapping of key to value")
        for key, value in wanted.items():
            if not isinstance(key, str) or not key or '"' in key:
                raise ValueError(f"{column} key {key!r} must be a non-empty string without '\"'")
            if value is not None and not isinstance(value, str | int | float | bool):
                raise TypeError(
                    f"{column}[{key!r}] must be a string, number or boolean, "
                    f"got {type(value).__name__}"
                )
            candidates: list[object] = [value]
            if isinstance(value, str):
                if _NUMBER.fullmatch(value.strip()):
                    candidates.append(json.loads(value.strip()))
                elif value.strip() in ("true", "false"):
                    candidates.append(value.strip() == "true")
            self._json_any(column, key, candidates)

    def _json_any(self, column: str, key: str, candidates: list[object]) -> None:
        target = self.col(column)
        if self.dialect == "postgresql":
            # the columns are json (stored as sent, cheaper to write than jsonb):
            # the containment test converts the row's value when it is reached
            either = " OR ".join([f"{target}::jsonb @> ?::jsonb"] * len(candidates))
            self.add(f"({either})", *(json.dumps({key: c}) for c in candidates))
            return
        path = f'$."{key}"'
        tests: list[str] = []
        params: list[Any] = []
        for candidate in candidates:
            if candidate is None:
                tests.append(f"json_type({target}, ?) = 'null'")
                params.append(path)
            elif isinstance(candidate, bool):
                tests.append(f"json_type({target}, ?) = ?")
                params.extend([path, "true" if candidate else "false"])
            else:
                tests.append(f"json_extract({target}, ?) = ?")
                params.extend([path, candidate])
        self.add(f"({' OR '.join(tests)})", *params)

    def sql(self) -> str:
        """``WHERE …`` (or nothing)."""
        return f"WHERE {' AND '.join(self.clauses)} " if self.clauses else ""
