"""The store's input and output form: one finished span as one flat row.

A :class:`SpanRow` does not need a :class:`spanline.Span`: rows converted from
spanline spans (:mod:`spanline.store.convert`), from decoded OTLP
(:mod:`spanline.store.otlp`) or built by hand are written alike.  The JSON columns
(``actor``, ``frames``, ``attributes``, ``records``, ``meta``, ``events``) hold JSON
text or ``None`` for "empty"; :func:`json_text` makes that text from any value
without raising.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from spanline.core.jsonsafe import jsonable

__all__ = ["COLUMNS", "KINDS", "STATUSES", "TYPES", "RowValues", "SpanRow", "json_text"]

KINDS = ("internal", "server", "client", "producer", "consumer")
"""Span kinds as stored (OpenTelemetry's, lower case)."""
STATUSES = ("unset", "ok", "error")
"""Statuses as stored."""
TYPES = ("span", "operation", "handler")
"""spanline span types as stored (spans from other tracers are ``span``)."""


class SpanRow(NamedTuple):
    """One finished span, in column order.

    Ids: ``trace_hex`` (32 hex digits) and ``span_hex``/``parent_hex`` (16) are the
    W3C ids that Jaeger or Tempo show; ``trace_id`` is the ``tr_…`` form (or the
    external id a trace was started with), ``span_id``/``parent_id`` the
    ``op_``/``hd_``/``sp_`` form.  Times are integer nanoseconds since the epoch.
    """

    trace_hex: str
    span_hex: str
    parent_hex: str | None
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    type: str
    kind: str
    status: str
    status_message: str | None
    start_ns: int
    end_ns: int
    duration_ns: int
    service: str | None
    actor_type: str | None
    actor_id: str | None
    actor: str | None
    frames: str | None
    attributes: str | None
    records: str | None
    meta: str | None
    events: str | None

    def to_dict(self) -> dict[str, Any]:
        """The row with its JSON columns decoded (``{}``/``[]``/``None`` when empty):
        the JSON twin of a row for viewers and ``--json`` output."""
        data = self._asdict()
        for key in ("attributes", "records", "meta"):
            data[key] = json.loads(data[key]) if data[key] else {}
        for key in ("frames", "events"):
            data[key] = json.loads(data[key]) if data[key] else []
        data["actor"] = json.loads(data["actor"]) if data["actor"] else None
        return data


COLUMNS: tuple[str, ...] = SpanRow._fields
"""The span columns, in the order of :class:`SpanRow`."""

RowValues = tuple[Any, ...]
"""A row's values in :data:`COLUMNS` order: a :class:`SpanRow`, or the plain tuple
the writer binds (SQLite binds plain tuples faster)."""

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def json_text(value: object) -> str | None:
    """``value`` as compact JSON text, ``None`` when it is empty or ``None``.

    Never raises: values JSON cannot hold (objects, non-finite floats, cycles) are
    stored as their ``repr``/name, as :func:`spanline.core.jsonsafe.jsonable` does --
    so the text is valid for PostgreSQL ``jsonb`` too.
    """
    if not value:
        return None
    try:
        return _encode(value)
    except (TypeError, ValueError, RecursionError):
        return _encode(jsonable(value))  # finite floats, str keys, no cycles
