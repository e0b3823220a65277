"""OTLP protobuf wire encoding, written out by hand for speed.

Why not build ``opentelemetry-proto`` message objects?  ``bench/bench_otlp.py``
measured that path at 0.7-0.8x the OpenTelemetry SDK's own encoder: every attribute
becomes several Python-level message objects before serialization.  Here each span
becomes bytes directly: tags are constants, attribute keys are encoded once and
cached, and the resource and scope are encoded once per request.

The output is the same ``ExportTraceServiceRequest`` that
:func:`spanline.export.otlp_mapping.encode_request` builds -- the tests decode both
with ``opentelemetry-proto`` and compare them field by field -- so the mapping
(documented there and in ``docs/opentelemetry.md``) has one definition of meaning and two of
speed.  Field numbers are those of ``opentelemetry/proto/trace/v1/trace.proto`` and
``common/v1/common.proto``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from types import ModuleType
from typing import cast

from spanline import _native
from spanline._version import __version__
from spanline.core.context import Trace
from spanline.core.jsonsafe import jsonable
from spanline.core.span import _PREFIXES, Span
from spanline.export.record import resource_attributes, spanline_attributes

__all__ = ["ACCELERATED", "encode_request_bytes"]

_pack_double = struct.Struct("<d").pack
_pack_fixed64 = struct.Struct("<Q").pack
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_MAX_DEPTH = 16

_SMALL = [bytes([i]) if i < 128 else bytes([(i & 0x7F) | 0x80, i >> 7]) for i in range(16384)]


def _utf8(text: str) -> bytes:
    """UTF-8 bytes; a lone surrogate (from ``os.fsdecode`` of a non-UTF-8 name, say)
    becomes "?" instead of bytes every protobuf decoder would reject."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def _varint(value: int) -> bytes:
    if 0 <= value < 16384:
        return _SMALL[value]
    if value < 0:
        value += 1 << 64  # int64 two's complement, always 10 bytes
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return tag + _varint(len(payload)) + payload


# tags: (field number << 3) | wire type (0 varint, 1 fixed64, 2 length-delimited)
_T1_LEN = b"\x0a"  # field 1, length-delimited
_T2_LEN = b"\x12"
_T3_LEN = b"\x1a"
_T4_LEN = b"\x22"
_T5_LEN = b"\x2a"
_T6_LEN = b"\x32"
_T7_LEN = b"\x3a"
_ANY_BOOL_TRUE = b"\x10\x01"
_ANY_BOOL_FALSE = b"\x10\x00"
_ANY_INT = b"\x18"
_ANY_DOUBLE = b"\x21"
_SPAN_KIND = b"\x30"  # field 6, varint
_SPAN_START = b"\x39"  # field 7, fixed64
_SPAN_END = b"\x41"  # field 8, fixed64
_SPAN_ATTR = b"\x4a"  # field 9
_SPAN_EVENT = b"\x5a"  # field 11
_SPAN_STATUS = b"\x7a"  # field 15
_EVENT_TIME = b"\x09"  # field 1, fixed64
_STATUS_CODE = b"\x18"  # field 3, varint

_key_cache: dict[str, bytes] = {}
_KEY_CACHE_MAX = 4096


def _key(key: str) -> bytes:
    encoded = _key_cache.get(key)
    if encoded is None:
        encoded = _field(_T1_LEN, _utf8(key))
        if len(_key_cache) < _KEY_CACHE_MAX:
            _key_cache[key] = encoded
    return encoded


def _any(value: object, depth: int = 0) -> bytes:  # noqa: PLR0911 - one exit per type
    """The bytes of an ``AnyValue`` message (without its own tag/length)."""
    if isinstance(value, str):
        return _field(_T1_LEN, _utf8(value))
    if isinstance(value, bool):
        return _ANY_BOOL_TRUE if value else _ANY_BOOL_FALSE
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            return _ANY_INT + _varint(value)
        return _field(_T1_LEN, str(jsonable(value)).encode())
    if isinstance(value, float):
        return _ANY_DOUBLE + _pack_double(value)
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray):
        return _field(_T7_LEN, bytes(value))
    if depth < _MAX_DEPTH:
        if isinstance(value, Mapping):
            body = b"".join(_field(_T1_LEN, _kv(str(k), v, depth + 1)) for k, v in value.items())
            return _field(_T6_LEN, body)
        if isinstance(value, list | tuple | set | frozenset):
            body = b"".join(_field(_T1_LEN, _any(v, depth + 1)) for v in value)
            return _field(_T5_LEN, body)
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not break export
        text = f"<unrepresentable {type(value).__qualname__}>"
    return _field(_T1_LEN, _utf8(text))


def _kv(key: str, value: object, depth: int = 0) -> bytes:
    """The bytes of a ``KeyValue`` message."""
    return _key(key) + _field(_T2_LEN, _any(value, depth))


def _attributes(tag: bytes, items: Iterable[tuple[str, object]]) -> bytes:
    """Repeated ``KeyValue`` fields; strings and small ints take an inline path."""
    out = []
    small = _SMALL
    cache = _key_cache
    for key, value in items:
        key_bytes = cache.get(key) or _key(key)
        kind = type(value)
        if kind is str:
            try:  # inline: the common case must not pay a call
                text = cast(str, value).encode()
            except UnicodeEncodeError:
                text = _utf8(cast(str, value))
            n = len(text)
            any_bytes = b"\x0a" + (small[n] if n < 16384 else _varint(n)) + text
        elif kind is int and 0 <= cast(int, value) < 16384:
            any_bytes = _ANY_INT + small[cast(int, value)]
        else:
            any_bytes = _any(value)
        n = len(any_bytes)
        kv = key_bytes + b"\x12" + (small[n] if n < 16384 else _varint(n)) + any_bytes
        n = len(kv)
        out.append(tag + (small[n] if n < 16384 else _varint(n)) + kv)
    return b"".join(out)


def _trace_shared(span: Span) -> tuple[bytes, bytes]:
    """What every span of a trace shares: the W3C trace id field, and the ``tr_`` id
    and actor attributes."""
    trace = span._trace
    actor = span.actor or {}
    return (
        b"\x0a\x10" + trace.id.to_bytes(16, "big"),
        _attributes(
            _SPAN_ATTR,
            [
                ("spanline.trace_id", span.trace_id),
                *((f"spanline.actor.{k}", v) for k, v in actor.items()),
            ],
        ),
    )


def _extras(span: Span) -> bytes:
    """The rarer parts of a span: records, meta, the chain (operations and handlers)
    and events."""
    parts = []
    if span._type or getattr(span, "_records", None) or getattr(span, "_meta", None):
        extra = _own_extras(span)
        if extra:
            parts.append(_attributes(_SPAN_ATTR, extra))
    for event in getattr(span, "_events", None) or ():
        body = (
            _EVENT_TIME
            + _pack_fixed64(event.timestamp_ns)
            + _field(_T2_LEN, _utf8(event.name))
            + _attributes(_T3_LEN, event.attributes.items())
        )
        parts.append(_field(_SPAN_EVENT, body))
    return b"".join(parts)


def _span(span: Span, per_trace: dict[object, tuple[bytes, bytes]]) -> bytes:
    trace = span._trace
    shared = per_trace.get(trace)
    if shared is None:
        shared = per_trace[trace] = _trace_shared(span)
    trace_field, trace_attributes = shared
    type_code = span._type
    up = span._parent
    parent = up._sid if type(up) is Span else int(getattr(up, "sid", 0))
    name = _utf8(span.name)
    n = len(name)
    ident = (span.id or "").encode()  # 23 ASCII characters
    parts: list[bytes] = [
        trace_field,
        b"\x12\x08" + span._sid.to_bytes(8, "big"),
        b"\x22\x08" + parent.to_bytes(8, "big") if parent else b"",
        b"\x2a" + (_SMALL[n] if n < 16384 else _varint(n)) + name,
        _SPAN_KIND + _SMALL[int(span.kind) + 1],
        _SPAN_START + _pack_fixed64(span._start),
        _SPAN_END + _pack_fixed64(span._end),
        _attributes(_SPAN_ATTR, list(span._attributes.items())) if span._attributes else b"",
        _ID_ATTRIBUTE_PREFIX + ident,
        _TYPE_ATTRIBUTES[type_code],
        trace_attributes,
    ]
    if (
        type_code
        or getattr(span, "_records", None)
        or getattr(span, "_meta", None)
        or getattr(span, "_events", None)
    ):
        parts.append(_extras(span))
    status = getattr(span, "_status", 0)
    if status:
        message = span.status_message or ""
        status_body = (
            (_field(_T2_LEN, _utf8(message)) if message else b"")
            + _STATUS_CODE
            + _SMALL[int(status)]
        )
        parts.append(_field(_SPAN_STATUS, status_body))
    else:
        parts.append(_EMPTY_STATUS)
    return b"".join(parts)


_EMPTY_STATUS = b"\x7a\x00"
# "spanline.id" KeyValue field up to the id's bytes: a 23-character id always makes
# the same lengths (AnyValue 25 bytes, KeyValue 40 bytes).
_ID_ATTRIBUTE_PREFIX = _SPAN_ATTR + bytes([40]) + _key("spanline.id") + b"\x12\x19\x0a\x17"
_TYPE_ATTRIBUTES = tuple(
    _attributes(_SPAN_ATTR, [("spanline.type", name)]) for name in ("span", "operation", "handler")
)


def _own_extras(span: Span) -> list[tuple[str, object]]:
    """The per-span part of :func:`spanline_attributes` after id, type, trace and actor
    (which ``_span`` encodes itself, in the same order)."""
    items = (
        spanline_attributes(span)
        if (span.type != "span" or getattr(span, "_records", None) or getattr(span, "_meta", None))
        else []
    )
    return [
        (k, v)
        for k, v in items
        if k not in _ENCODED_SEPARATELY and not k.startswith("spanline.actor.")
    ]


_ENCODED_SEPARATELY = frozenset({"spanline.id", "spanline.trace_id", "spanline.type"})


_SCOPE = _field(_T1_LEN, _field(_T1_LEN, b"spanline") + _field(_T2_LEN, __version__.encode()))


def _spans_python(spans: Sequence[Span], skipped: list[Span] | None) -> bytes:
    per_trace: dict[object, tuple[bytes, bytes]] = {}
    encoded = []
    for span in spans:
        try:
            encoded.append(_field(_T2_LEN, _span(span, per_trace)))
        except Exception:  # noqa: BLE001 - one bad span must not lose the batch
            if skipped is not None:
                skipped.append(span)
    return b"".join(encoded)


def _spans_compiled(spans: Sequence[Span], skipped: list[Span] | None) -> bytes:
    per_trace: dict[object, tuple[bytes, bytes]] = {}
    assert _accel is not None  # noqa: S101 - only chosen when the module loaded

    def fallback(span: Span) -> bytes:
        return _span(span, per_trace)

    return cast(bytes, _accel.encode_spans(spans, _trace_shared, _extras, fallback, skipped))


def _load_accelerator() -> ModuleType | None:
    """The compiled encoder (:mod:`spanline._native`), configured, or ``None``."""
    module = _native.load()
    if module is not None:
        module.otlp_configure(
            Span,
            Trace,
            _TYPE_ATTRIBUTES,
            tuple(p.encode() for p in _PREFIXES),
            _ID_ATTRIBUTE_PREFIX,
            _any,
        )
    return module


_accel = _load_accelerator()
ACCELERATED = _accel is not None
"""Whether the compiled span encoder is in use (see ``docs/opentelemetry.md``)."""


def encode_request_bytes(
    spans: Sequence[Span], resource: Mapping[str, str], skipped: list[Span] | None = None
) -> bytes:
    """A serialized ``ExportTraceServiceRequest``: one resource, one scope, ``spans``.

    A span that cannot be encoded is left out (and appended to ``skipped``) so that
    it never costs the rest of the batch."""
    resource_field = _field(_T1_LEN, _attributes(_T1_LEN, resource_attributes(resource).items()))
    encode = _spans_compiled if _accel is not None else _spans_python
    spans_body = encode(spans, skipped)
    # The envelopes' lengths are computed, not measured on built parts: the span
    # bytes (~400 per span) are copied once, by the join, instead of once per level.
    scope_head = _T2_LEN + _varint(len(_SCOPE) + len(spans_body))
    resource_spans_len = len(resource_field) + len(scope_head) + len(_SCOPE) + len(spans_body)
    return b"".join(
        (_T1_LEN, _varint(resource_spans_len), resource_field, scope_head, _SCOPE, spans_body)
    )
