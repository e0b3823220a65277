"""Spans: the unit of recorded work.

A :class:`Span` is a context manager.  Entering it is the hot path, so it does only
this: read the current node, take the trace from it, draw a 64-bit id, read the clock,
set the ``ContextVar``.  Ids are kept as integers and rendered (``op_…``) only when
asked for; records and attributes are stored as given when they are plain JSON
scalars; serialization happens in :meth:`Span.to_dict`, off the hot path.

Operations (``op_``) and handlers (``hd_``) are spans too, with a different
:attr:`Span.type`, so one tree shows everything.  When a trace is not recorded
(``configure(enabled=False)``), operations and handlers are still pushed as frames --
the audit chain of ids, actor and ``trace_string()`` never turns off -- but no span is
linked, handed to processors or retained, and plain spans become the no-op span.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import IntEnum
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, ParamSpec, TypeVar

from spanline._log import logger, report
from spanline._native import load
from spanline.core import clock, config, exception_text, ids, snapshot
from spanline.core.actor import Actor
from spanline.core.context import Node, Trace, current
from spanline.core.jsonsafe import jsonable
from spanline.core.pipeline import PIPELINE

__all__ = [
    "HANDLER",
    "NOOP_SPAN",
    "OPERATION",
    "SPAN",
    "NoopSpan",
    "Span",
    "SpanEvent",
    "SpanKind",
    "StatusCode",
    "current_span",
    "record",
    "span",
    "span_with_attributes",
]

P = ParamSpec("P")
R = TypeVar("R")

_accel = load()

SPAN, OPERATION, HANDLER = 0, 1, 2
_PREFIXES = ("sp_", "op_", "hd_")
_TYPE_NAMES = ("span", "operation", "handler")
_SCALARS = (str, int, float, bool)


class SpanKind(IntEnum):
    """The OpenTelemetry span kind (same numbering as ``opentelemetry.trace.SpanKind``)."""

    INTERNAL = 0
    SERVER = 1
    CLIENT = 2
    PRODUCER = 3
    CONSUMER = 4


class StatusCode(IntEnum):
    """The OpenTelemetry status code (same numbering as OTLP)."""

    UNSET = 0
    OK = 1
    ERROR = 2


class SpanEvent(NamedTuple):
    """Something that happened at a point in time during a span."""

    name: str
    timestamp_ns: int
    attributes: dict[str, Any]


def new_trace(
    start_ns: int,
    trace_int: int = 0,
    external: str | None = None,
    actor: Actor | None = None,
    parent_sampled: bool | None = None,
) -> Trace:
    """A new trace, recorded if spanline is enabled and the sampler says so.

    ``trace_int=0`` generates an id whose ``tr_`` form carries ``start_ns``'s
    millisecond; ``parent_sampled`` is a remote caller's flag (for parent-based
    sampling), ``None`` when the trace starts here.
    """
    settings = config.settings
    recorded = settings.enabled
    if recorded and (parent_sampled is not None or not settings.sample_all):
        if not trace_int:
            trace_int = ids.new_trace_int(start_ns)
        recorded = settings.sampler.should_sample(trace_int, parent_sampled)
    return Trace(trace_int, external, actor, recorded, start_ns)


def _iso(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest // 1000).isoformat()


_STATUS_UNSET = StatusCode.UNSET
_STATUS_OK = StatusCode.OK
_STATUS_ERROR = StatusCode.ERROR


_MAX_NS = 2**64 - 1


def _timestamp(value: object, what: str) -> int:
    """A time in ns since the epoch; ``None`` means now.  Anything else that is not a
    non-negative integer (a float of seconds, say) is reported and replaced by now."""
    if value is None:
        return clock.now_ns()
    if type(value) is int and 0 < value <= _MAX_NS:
        return value
    report(
        f"timestamp:{what}",
        "spanline: %s must be integer nanoseconds since the epoch; got %r, using the current time",
        what,
        value,
        level=30,
    )
    return clock.now_ns()


class _Reentry:
    """Stands in for a span's token while the same span object is entered again."""

    __slots__ = ("outer",)

    def __init__(self, outer: object) -> None:
        self.outer = outer


if TYPE_CHECKING:
    _Lifecycle = object
else:
    # the compiled __init__/__enter__/__exit__ (spanline/_csrc/span.c), when built:
    # Span's own Python methods are removed below so that these are found, and are
    # called by them for every case but the common one
    _Lifecycle = _accel.SpanLifecycle if _accel is not None else object


class Span(Node, _Lifecycle):
    """A span, operation or handler: a timed, named piece of work in a trace.

    Use ``with spanline.span(name) as s:`` (or ``@spanline.span(name)``); the
    constructor does not start anything.
    """

    __slots__ = (
        "_attributes",
        "_children",
        "_end",
        "_events",
        "_meta",
        "_records",
        "_sid",
        "_snap",
        "_start",
        "_status",
        "_status_message",
        "_token",
        "_type",
        "kind",
        "name",
    )

    # Declared for type checkers; assigned lazily (see __init__).
    _records: dict[str, Any]
    _events: list[SpanEvent]
    _meta: dict[str, Any]
    _status: StatusCode
    _status_message: str | None
    _token: Any
    _sid: int

    def __init__(
        self,
        name: str,
        meta: Mapping[str, Any] | None = None,
        context: object = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
        type_: int = SPAN,
    ) -> None:
        # Only what the hot path reads is assigned here; the rarely used slots
        # (records, events, meta, status) stay empty until written, and readers use
        # getattr defaults.  Each assignment saved is ~15 ns per span.
        if type(name) is not str:
            _bad_name(name)
        self.name = name
        self._type = type_
        self.kind = kind
        self._start = 0
        self._end = 0
        self._children: list[Span] | None = None
        self._snap: tuple[object, dict[str, Any]] | None = None
        self._attributes: dict[str, Any] | None = None
        if meta or attributes or context is not None:
            self._init_extras(meta, attributes, context)

    def _init_extras(
        self, meta: Mapping[str, Any] | None, attributes: Mapping[str, Any] | None, context: object
    ) -> None:
        if meta:
            self._meta = dict(meta)
        if attributes:
            self.set_attributes(attributes)
        if context is not None:
            self._snap = (context, {})

    # ------------------------------------------------------------------ hot path

    def __enter__(self) -> Span | NoopSpan:  # noqa: PLR0912 - inlined on purpose (hot path)
        if self._start:
            return self._reentered()
        parent = current.get()
        if parent is None:
            settings = config.settings
            enabled = settings.enabled
            if not enabled and self._type == SPAN:
                self._token = None
                return NOOP_SPAN
            start = clock.now_ns()
            if enabled and not settings.sample_all:
                trace = new_trace(start)  # the sampler decides (needs the id now)
            elif PIPELINE.hooks:
                # an exporter will read the id: drawing it here (a shift and one C
                # call) is cheaper than the locked lazy draw on the export thread
                trace = Trace(
                    ((start // 1_000_000) << 80) | (ids.new_random64() or 1),
                    None,
                    None,
                    enabled,
                    start,
                )
            else:
                trace = Trace(0, None, None, enabled, start)  # id drawn on first read
        else:
            trace = parent._trace
            if not trace.recorded and self._type == SPAN:
                self._token = None
                return NOOP_SPAN
            start = clock.now_ns()
        self._trace = trace
        self._parent = parent
        self._sid = ids.new_random64() or 1
        self._start = start
        self._token = current.set(self)
        if trace.recorded:
            if type(parent) is Span:
                siblings = parent._children
                if siblings is None:
                    parent._children = [self]
                else:
                    siblings.append(self)
            if self._snap is not None:
                self._open_snapshot()
            if PIPELINE.hooks:
                PIPELINE.start(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token = self._token
        if token is None:
            return
        if type(token) is _Reentry:  # closing a nested entry of this same span
            self._token = token.outer
            return
        self._token = None
        if self._trace.recorded:
            if exc is not None and exc_type is not GeneratorExit:
                self._fail(exc)
            if self._snap is not None:
                self._close_snapshot()
            self._end = clock.now_ns()
            try:
                current.reset(token)
            except ValueError:
                self._foreign_context()
            if PIPELINE.hooks:
                PIPELINE.end(self)
            if type(self._parent) is not Span:
                PIPELINE.ring.append(self)
        else:
            try:
                current.reset(token)
            except ValueError:
                self._foreign_context()

    # ------------------------------------------------- detached (event-driven) spans

    def start_detached(self, parent: Node | None = None, start_ns: int | None = None) -> Span:
        """Start without becoming current: for spans opened and closed by events
        rather than a ``with`` block.  ``parent`` (a span, or any node of a context
        chain such as a remote parent) links it into a trace; ``None`` starts a new
        trace.  Finish it with :meth:`end`.  Returns the span."""
        if self._start:
            return self
        start = _timestamp(start_ns, "start time")
        trace = parent._trace if parent is not None else new_trace(start)
        self._trace = trace
        self._parent = parent
        self._sid = ids.new_random64() or 1
        self._start = start
        self._token = None
        if trace.recorded:
            if type(parent) is Span:
                if parent._children is None:
                    parent._children = [self]
                else:
                    parent._children.append(self)
            if PIPELINE.hooks:
                PIPELINE.start(self)
        return self

    def end(self, end_ns: int | None = None, error: BaseException | str | None = None) -> None:
        """Finish a span started with :meth:`start_detached` (a second call does
        nothing); ``error`` marks it ERROR with that exception or description."""
        if not self._start or self._end or self._token is not None:
            return
        if not self._trace.recorded:
            self._end = self._start
            return
        if isinstance(error, BaseException):
            self._fail(error)
        elif error:
            self.set_status(StatusCode.ERROR, error)
        self._end = max(self._start, _timestamp(end_ns, "end time"))
        if PIPELINE.hooks:
            PIPELINE.end(self)
        if type(self._parent) is not Span:
            PIPELINE.ring.append(self)

    def _reentered(self) -> NoopSpan:
        # The matching __exit__ must undo only this entry, never the first one.
        report(
            "reentered",
            "spanline: span %r was entered twice; the second entry records nothing",
            self.name,
            level=30,
        )
        self._token = _Reentry(self._token)
        return NOOP_SPAN

    def _foreign_context(self) -> None:
        # Closed from another context (a generator finished elsewhere): the span
        # still ends; that other context's chain is not ours to repair.
        logger.debug("spanline: span %r ended outside the context it started in", self.name)

    # ------------------------------------------------------------- decorating

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Use the span as a decorator: each call of ``fn`` runs in a new span."""
        from spanline.core.decorate import traced

        name, type_, kind = self.name, self._type, self.kind
        meta = getattr(self, "_meta", None)
        attributes = self._attributes
        context = None if self._snap is None else self._snap[0]
        return traced(fn, lambda: Span(name, meta, context, kind, attributes, type_))

    # ------------------------------------------------------------- writing

    def record(self, key: str, value: object) -> None:
        """Write ``key = value`` onto the span (any value; non-JSON ones as ``repr``)."""
        if self._end:
            return
        records = getattr(self, "_records", None)
        if records is None:
            records = self._records = {}
        records[str(key)] = value if type(value) in _SCALARS or value is None else jsonable(value)

    def set_attribute(self, key: str, value: object) -> None:
        """Set an OpenTelemetry-style attribute (scalars, lists and maps of them)."""
        if self._end:
            return
        if type(key) is not str:
            report(
                "attribute-key",
                "spanline: attribute keys must be strings; ignored %r",
                key,
                level=30,
            )
            return
        attributes = self._attributes
        if attributes is None:
            attributes = self._attributes = {}
        attributes[key] = value if type(value) in _SCALARS else jsonable(value)

    def set_attributes(self, attributes: Mapping[str, object]) -> None:
        """Set several attributes at once."""
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(
        self,
        name: str,
        attributes: Mapping[str, object] | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Add a point-in-time event (``timestamp`` in ns since the epoch; default now)."""
        if self._end:
            return
        events = getattr(self, "_events", None)
        if events is None:
            events = self._events = []
        events.append(
            SpanEvent(
                str(name),
                _timestamp(timestamp, "add_event(timestamp=...)"),
                jsonable(dict(attributes)) if attributes else {},
            )
        )

    def record_exception(
        self, exception: BaseException, attributes: Mapping[str, object] | None = None
    ) -> None:
        """Add an ``exception`` event per the OpenTelemetry semantic conventions; a
        database library's message is left out (:mod:`spanline.core.exception_text`)."""
        event = exception_text.event_attributes(exception)
        if attributes:
            event.update(attributes)
        self.add_event("exception", event)

    def set_status(self, status: StatusCode, description: str | None = None) -> None:
        """Set the status; ``OK`` is final, a description is kept only with ``ERROR``."""
        if self._end or self.status == StatusCode.OK:
            return
        if description and status == StatusCode.ERROR:
            description = exception_text.scrub(description)
        self._status = StatusCode(status)
        self._status_message = description if status == StatusCode.ERROR else None

    def update_name(self, name: str) -> None:
        """Rename the span (e.g. once an HTTP route is known); a non-string is ignored."""
        if type(name) is not str:
            report(
                "update-name", "spanline: span names must be strings; ignored %r", name, level=30
            )
            return
        if not self._end:
            self.name = name

    def is_recording(self) -> bool:
        """True while the span records data (started, not ended, trace recorded)."""
        return bool(self._start) and not self._end and self._trace.recorded

    def _fail(self, exc: BaseException) -> None:
        # Recording must never replace the user's exception with one of ours -- not
        # even deep in a recursion, where formatting the traceback can itself fail.
        try:
            if self.status != _STATUS_OK:
                self._status = _STATUS_ERROR
                self._status_message = exception_text.describe(exc)
            self.record_exception(exc)
        except Exception as error:  # noqa: BLE001 - tracing never breaks the app
            report(
                "record-exception",
                "spanline: could not record %r on span %r: %r",
                type(exc),
                self.name,
                error,
                level=30,
            )

    def _open_snapshot(self) -> None:
        assert self._snap is not None  # noqa: S101 - checked by the only caller
        live = self._snap[0]
        try:
            self._snap = (live, snapshot.take(live))
        except Exception as error:  # noqa: BLE001 - a strange context must not break the app
            self._snap = None
            report(
                "snapshot",
                "spanline: could not read the context of span %r: %r",
                self.name,
                error,
                level=30,
            )

    def _close_snapshot(self) -> None:
        assert self._snap is not None  # noqa: S101 - checked by the only caller
        live, before = self._snap
        self._snap = None
        try:
            changes = snapshot.delta(before, live)
        except Exception as error:  # noqa: BLE001 - a strange context must not break the app
            report(
                "snapshot",
                "spanline: could not compare context of span %r: %r",
                self.name,
                error,
                level=30,
            )
            return
        records = getattr(self, "_records", None)
        if records is None:
            records = self._records = {}
        records.update(changes)

    # ------------------------------------------------------------- reading

    @property
    def type(self) -> str:
        """``"span"``, ``"operation"`` or ``"handler"``."""
        return _TYPE_NAMES[self._type]

    @property
    def id(self) -> str | None:
        """``sp_…``/``op_…``/``hd_…`` (``None`` before the span starts)."""
        if not self._start:
            return None
        return ids.format_id(_PREFIXES[self._type], self._start, self._sid)

    @property
    def span_id(self) -> int:
        """The 64-bit W3C span id (0 before the span starts)."""
        return self._sid if self._start else 0

    @property
    def span_hex(self) -> str:
        """The W3C span id as 16 lowercase hex digits."""
        return f"{self.span_id:016x}"

    @property
    def trace_id(self) -> str | None:
        """``tr_…`` or the external trace id (``None`` before the span starts)."""
        return self._trace.text if self._start else None

    @property
    def trace_hex(self) -> str | None:
        """The W3C trace id as 32 lowercase hex digits."""
        return self._trace.hex if self._start else None

    @property
    def actor(self) -> dict[str, str] | None:
        """The trace's actor (a copy), or ``None``."""
        actor = self._trace.actor if self._start else None
        return dict(actor) if actor else None

    @property
    def parent(self) -> Span | None:
        """The parent span in this process, or ``None`` for a local root."""
        parent = self._parent if self._start else None
        return parent if type(parent) is Span else None

    @property
    def parent_id(self) -> str | None:
        """The parent's id, including a parent that ran in another process."""
        parent = self._parent if self._start else None
        if type(parent) is Span:
            return parent.id
        return getattr(parent, "id", None)

    @property
    def parent_span_id(self) -> int:
        """The parent's 64-bit W3C span id (0 for a trace root)."""
        parent = self._parent if self._start else None
        if type(parent) is Span:
            return parent._sid
        return int(getattr(parent, "sid", 0))

    @property
    def children(self) -> list[Span]:
        """Child spans in this process, in start order."""
        children = self._children
        if children is None:
            children = self._children = []
        return children

    @property
    def records(self) -> dict[str, Any]:
        """Values written with :meth:`record` / :func:`spanline.record`."""
        records = getattr(self, "_records", None)
        if records is None:
            records = self._records = {}
        return records

    @property
    def meta(self) -> dict[str, Any]:
        """Metadata given when the span was created."""
        meta = getattr(self, "_meta", None)
        if meta is None:
            meta = self._meta = {}
        return meta

    @property
    def attributes(self) -> dict[str, Any]:
        """OpenTelemetry-style attributes."""
        attributes = self._attributes
        if attributes is None:
            attributes = self._attributes = {}
        return attributes

    @property
    def events(self) -> list[SpanEvent]:
        """Point-in-time events, exceptions included."""
        events = getattr(self, "_events", None)
        if events is None:
            events = self._events = []
        return events

    @property
    def status(self) -> StatusCode:
        """UNSET, OK or ERROR."""
        return getattr(self, "_status", _STATUS_UNSET)

    @property
    def status_message(self) -> str | None:
        """The description that came with an ERROR status."""
        return getattr(self, "_status_message", None)

    @property
    def start_ns(self) -> int:
        """Start time in ns since the epoch (0 before start)."""
        return self._start

    @property
    def end_ns(self) -> int:
        """End time in ns since the epoch (0 while running)."""
        return self._end

    @property
    def started_at(self) -> datetime | None:
        """Start time as an aware UTC datetime."""
        return datetime.fromtimestamp(self._start / 1e9, UTC) if self._start else None

    @property
    def finished_at(self) -> datetime | None:
        """End time as an aware UTC datetime (``None`` while running)."""
        return datetime.fromtimestamp(self._end / 1e9, UTC) if self._end else None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (``None`` while running)."""
        return (self._end - self._start) / 1e9 if self._end else None

    @property
    def ended(self) -> bool:
        """True once the span has ended."""
        return bool(self._end)

    def to_dict(self) -> dict[str, Any]:
        """The span and its children as a JSON-ready nested dict.

        Times are ISO 8601 (UTC), ``duration`` is in seconds, children are in start
        order; the local root also carries the trace's ``actor``.  Built without
        recursion, so a tree of any depth serializes.
        """
        root = self._own_dict()
        pending: list[tuple[Span, dict[str, Any]]] = [(self, root)]
        while pending:
            span, data = pending.pop()
            children = sorted(span._children or (), key=lambda c: c._start)
            data["children"] = [child._own_dict() for child in children]
            pending.extend(zip(children, data["children"], strict=True))
        return root

    def _own_dict(self) -> dict[str, Any]:
        parent = self._parent if self._start else None
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "kind": self.kind.name.lower(),
            "status": self.status.name.lower(),
            "trace_id": self.trace_id,
            "parent_id": self.parent_id,
            "w3c_trace_id": self.trace_hex,
            "w3c_span_id": self.span_hex,
            "started_at": _iso(self._start) if self._start else None,
            "finished_at": _iso(self._end) if self._end else None,
            "duration": round((self._end - self._start) / 1e9, 9) if self._end else None,
        }
        if self.status_message:
            data["status_message"] = self.status_message
        if self._start and type(parent) is not Span and self._trace.actor:
            data["actor"] = dict(self._trace.actor)
        data["meta"] = jsonable(getattr(self, "_meta", None) or {})
        data["attributes"] = jsonable(self._attributes or {})
        data["records"] = jsonable(getattr(self, "_records", None) or {})
        data["events"] = [
            {"name": e.name, "timestamp": _iso(e.timestamp_ns), "attributes": e.attributes}
            for e in getattr(self, "_events", None) or ()
        ]
        return data

    def frame(self) -> dict[str, str] | None:
        if self._type == SPAN:
            return None
        return {"type": _TYPE_NAMES[self._type], "id": self.id or "", "name": self.name}

    def __repr__(self) -> str:
        state = "ended" if self._end else ("running" if self._start else "not started")
        return f"<Span {self.name!r} {self.id or ''} {state}>"


class NoopSpan:
    """The span you get when nothing is recording: every method does nothing.

    :func:`current_span` returns it instead of ``None``, so instrumentation needs no
    guards.
    """

    __slots__ = ()

    name = ""
    id = None
    type = "span"
    kind = SpanKind.INTERNAL
    trace_id = None
    trace_hex = None
    parent = None
    parent_id = None
    span_id = 0
    parent_span_id = 0
    status = StatusCode.UNSET
    status_message = None
    started_at = None
    finished_at = None
    duration = None
    start_ns = 0
    end_ns = 0
    ended = False
    actor = None

    @property
    def children(self) -> list[Span]:
        """Always empty."""
        return []

    @property
    def records(self) -> dict[str, Any]:
        """Always empty (a fresh dict each time)."""
        return {}

    meta = records
    attributes = records

    @property
    def events(self) -> list[SpanEvent]:
        """Always empty."""
        return []

    def __enter__(self) -> NoopSpan:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def record(self, key: str, value: object) -> None:
        """Do nothing."""

    def set_attribute(self, key: str, value: object) -> None:
        """Do nothing."""

    def set_attributes(self, attributes: Mapping[str, object]) -> None:
        """Do nothing."""

    def add_event(
        self,
        name: str,
        attributes: Mapping[str, object] | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Do nothing."""

    def record_exception(
        self, exception: BaseException, attributes: Mapping[str, object] | None = None
    ) -> None:
        """Do nothing."""

    def set_status(self, status: StatusCode, description: str | None = None) -> None:
        """Do nothing."""

    def update_name(self, name: str) -> None:
        """Do nothing."""

    def is_recording(self) -> bool:
        """Always ``False``."""
        return False

    def to_dict(self) -> dict[str, Any]:
        """An empty dict."""
        return {}

    def __repr__(self) -> str:
        return "<NoopSpan>"


NOOP_SPAN = NoopSpan()
"""The one no-op span."""


def _bad_name(name: object) -> None:
    if callable(name):
        raise TypeError(
            "spanline.span needs a name: write @spanline.span('name') "
            "(or @spanline.operation for a bare decorator)"
        )
    raise TypeError(f"span name must be a string, got {type(name).__name__}")


def span_with_attributes(name: str, kind: SpanKind, attributes: dict[str, Any]) -> Span:
    """A span that takes ``attributes`` as they are: for integrations that build a
    fresh dict of string/number values per request, skipping the per-key checks of
    :meth:`Span.set_attribute` (the dict is owned by the span from here on)."""
    created = Span(name, kind=kind)
    created._attributes = attributes
    return created


span = Span
"""``with spanline.span(name, meta=..., context=...) as s:`` or ``@spanline.span(name)``.

``span`` *is* the :class:`Span` class (no factory function: one Python call fewer on
the hot path).  ``meta`` is stored as given; ``context`` (a mapping or object) is
snapshotted at start and its ``context``/``added``/``changed``/``removed`` are written
to the records at the end; ``kind`` and ``attributes`` follow OpenTelemetry.
"""


def current_span() -> Span | NoopSpan:
    """The innermost recording span, or the no-op span -- never ``None``."""
    node = current.get()
    if type(node) is Span and node._trace.recorded:
        return node
    return NOOP_SPAN


def record(key: str, value: object) -> None:
    """Write ``key = value`` onto the current span (nothing if none is recording)."""
    node = current.get()
    if type(node) is Span:
        node.record(key, value)


if _accel is not None:
    # Hand __init__/__enter__/__exit__ to the compiled base class; the Python
    # methods stay the definition, called by the C ones for every uncommon case.
    _PY_METHODS = Span.__init__, Span.__enter__, Span.__exit__
    for _method in ("__init__", "__enter__", "__exit__"):
        delattr(Span, _method)
    _accel.span_configure(
        Span,
        Node,
        Trace,
        _Reentry,
        current,
        config,
        clock,
        ids,
        PIPELINE,
        SpanKind.INTERNAL,
        *_PY_METHODS,
    )
