"""spanline spans as store rows.

Runs on the exporter's thread, never the application's, and is the first half of the
ingest path, so it is written for speed: a whole batch is converted in one call that
shares the work its spans have in common -- each trace's ids and actor are rendered
once, a parent's id is rendered once for all its children (and reused when the
parent itself is converted), and each operation's frame chain extends its parent's
(memoized), so a deep tree costs one frame per operation, not one per ancestor.  It
reads the span's slots directly (the public properties allocate empty containers).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType
from typing import Any, cast

from spanline import _native
from spanline._log import report
from spanline.core import ids
from spanline.core.context import Node, Trace
from spanline.core.span import Span
from spanline.store.row import KINDS, STATUSES, TYPES, SpanRow, json_text

__all__ = ["row_from_span", "row_tuples", "rows_from_spans"]

_TraceInfo = tuple[str, str, str | None, str | None, str | None, str | None]
_PREFIXES = ("sp_", "op_", "hd_")  # by span type, as in spanline.core.span
_format_id = ids.format_id
_new_row = tuple.__new__


class _Batch:
    """What the spans of one batch share: traces, rendered ids, frame chains."""

    __slots__ = ("frames", "ids", "traces")

    def __init__(self) -> None:
        self.traces: dict[Trace, _TraceInfo] = {}
        self.ids: dict[Span, tuple[str, str]] = {}
        self.frames: dict[Node, str] = {}


def rows_from_spans(spans: Iterable[Span], service: str | None = None) -> list[SpanRow]:
    """Rows for finished spans (unfinished ones are skipped); ``service`` is the
    ``service.name`` written on each row.  A span that cannot be converted is left
    out and reported, the others are kept."""
    if _accel is not None:
        return cast("list[SpanRow]", _rows_compiled(spans, service, SpanRow))
    return _rows_python(spans, service)


def row_tuples(spans: Iterable[Span], service: str | None = None) -> list[tuple[Any, ...]]:
    """Like :func:`rows_from_spans`, as plain tuples in column order: what the store
    writer binds (SQLite binds a plain tuple faster than a ``SpanRow``)."""
    if _accel is not None:
        return cast("list[tuple[Any, ...]]", _rows_compiled(spans, service, None))
    return [tuple(row) for row in _rows_python(spans, service)]


def _rows_python(spans: Iterable[Span], service: str | None) -> list[SpanRow]:
    batch = _Batch()
    rows: list[SpanRow] = []
    append = rows.append
    for span in spans:
        try:
            if span._end:
                append(_row(span, service, batch))
        except Exception as error:  # noqa: BLE001 - one bad span must not lose the batch
            _report_skipped(span, error)
    return rows


def _report_skipped(span: object, error: BaseException) -> None:
    report(
        "store-convert",
        "spanline: span %r could not be converted for the store and is skipped: %r",
        getattr(span, "name", "?"),
        error,
        level=30,
    )


def _rows_compiled(spans: Iterable[Span], service: str | None, row_type: type | None) -> Any:
    """The compiled converter (``spanline/_csrc/rows.c``), with this module's
    functions for what it leaves to Python: unusual traces, JSON of non-flat
    values, events, and whole rows it cannot build."""
    batch = _Batch()

    def trace_info(trace: Trace) -> _TraceInfo:
        return _trace_info(trace, batch.traces)

    def fallback(span: Span) -> tuple[Any, ...] | None:
        try:
            if not span._end:
                return None
            row = _row(span, service, batch)
        except Exception as error:  # noqa: BLE001 - one bad span must not lose the batch
            _report_skipped(span, error)
            return None
        return row if row_type is SpanRow else tuple(row)

    assert _accel is not None  # noqa: S101 - only called when the module loaded
    return _accel.rows_from_spans(
        spans, service, trace_info, json_text, _events_json, fallback, row_type
    )


def row_from_span(span: Span, service: str | None = None) -> SpanRow:
    """One finished span as a row (``ValueError`` if it has not ended)."""
    if not span.end_ns:
        raise ValueError(f"span {span.name!r} has not ended; only finished spans are stored")
    return _row(span, service, _Batch())


def _trace_info(trace: Trace, cache: dict[Trace, _TraceInfo]) -> _TraceInfo:
    info = cache.get(trace)
    if info is None:
        actor = trace.actor
        actor_frame: dict[str, str] | None = None
        if actor:
            who = {k: v for k, v in actor.items() if k not in ("type", "actor_type")}
            actor_frame = {"type": "actor", "actor_type": actor["type"], **who}
        info = cache[trace] = (
            trace.text,
            trace.hex,
            actor.get("type") if actor else None,
            (actor.get("id") or actor.get("name") or actor.get("source")) if actor else None,
            json_text(actor),
            json_text(actor_frame),
        )
    return info


def _chain(node: Node, batch: _Batch) -> str:
    """The operation/handler frames from the trace's boundary down to ``node``, as
    comma-separated JSON objects (memoized per node: siblings share the prefix)."""
    memo = batch.frames
    pending: list[Node] = []
    link: Node | None = node
    while link is not None and link not in memo:
        pending.append(link)
        link = link._parent
    text = memo[link] if link is not None else ""
    for item in reversed(pending):
        if type(item) is Span:
            frame = (
                {"type": TYPES[item._type], "id": _ids(item, batch)[0], "name": item.name}
                if item._type
                else None
            )
        else:
            frame = item.frame()
        if frame is not None:
            encoded = json_text(frame) or "{}"
            text = f"{text},{encoded}" if text else encoded
        memo[item] = text
    return text


def _ids(span: Span, batch: _Batch) -> tuple[str, str]:
    """A span's (id, hex id), rendered once per batch (for itself, its children
    and the frame chains below it)."""
    found = batch.ids.get(span)
    if found is None:
        sid = span._sid
        found = batch.ids[span] = (
            _format_id(_PREFIXES[span._type], span._start, sid),
            f"{sid:016x}",
        )
    return found


def _row(span: Span, service: str | None, batch: _Batch) -> SpanRow:
    info = batch.traces.get(span._trace)
    if info is None:
        info = _trace_info(span._trace, batch.traces)
    trace_text, trace_hex, actor_type, actor_id, actor_json, actor_frame = info
    parent = span._parent
    parent_id: str | None
    parent_hex: str | None
    if type(parent) is Span:
        parent_id, parent_hex = _ids(parent, batch)
    else:
        parent_sid = int(getattr(parent, "sid", 0))
        parent_hex = f"{parent_sid:016x}" if parent_sid else None
        parent_id = getattr(parent, "id", None)
    kind = span._type
    sid = span._sid
    start = span._start
    end = span._end
    own = batch.ids.get(span)  # rendered already when one of its children came first
    span_id, span_hex = own or (_format_id(_PREFIXES[kind], start, sid), f"{sid:016x}")
    frames_json = None
    if kind:  # an operation or handler: store its frame chain, actor first
        chain = _chain(span, batch)
        frames_json = f"[{actor_frame},{chain}]" if actor_frame else f"[{chain}]"
    # The slots below stay unset on most spans; reading an unset slot raises
    # internally, so one ``__getstate__``-free probe per slot is the price.
    attributes = span._attributes
    records = getattr(span, "_records", None)
    meta = getattr(span, "_meta", None)
    events = getattr(span, "_events", None)
    status = getattr(span, "_status", 0)
    return _new_row(
        SpanRow,
        (
            trace_hex,
            span_hex,
            parent_hex,
            trace_text,
            span_id,
            parent_id,
            span.name,
            TYPES[kind],
            KINDS[span.kind],
            STATUSES[status],
            getattr(span, "_status_message", None) if status else None,
            start,
            end,
            end - start,
            service,
            actor_type,
            actor_id,
            actor_json,
            frames_json,
            json_text(attributes) if attributes else None,
            json_text(records) if records else None,
            json_text(meta) if meta else None,
            _events_json(span) if events else None,
        ),
    )


def _events_json(span: Span) -> str | None:
    return json_text(
        [
            {"name": e.name, "timestamp_ns": e.timestamp_ns, "attributes": e.attributes}
            for e in getattr(span, "_events", None) or ()
        ]
    )


def _load_accelerator() -> ModuleType | None:
    """The compiled converter (:mod:`spanline._native`), configured, or ``None``."""
    module = _native.load()
    if module is not None:
        module.rows_configure(
            Span, Trace, TYPES, KINDS, STATUSES, tuple(prefix.encode() for prefix in _PREFIXES)
        )
    return module


_accel = _load_accelerator()
