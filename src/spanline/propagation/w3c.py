"""W3C Trace Context (Level 2): ``traceparent`` and ``tracestate``, to the letter.

Parsing rules (they follow the specification's own test suite):

* header names are case-insensitive; two ``traceparent`` headers make the context
  invalid;
* version ``00`` is exactly ``00-<32 hex>-<16 hex>-<2 hex>``, lowercase; a higher
  version is read by its version-00 prefix and may only continue with ``-``;
  version ``ff``, all-zero ids and any other deviation are invalid;
* an invalid ``traceparent`` means a new trace, and its ``tracestate`` is dropped;
* ``tracestate`` headers are joined in order; empty members and optional white space
  around members are allowed; one invalid member, a duplicate key, or more than 32
  members discard the whole ``tracestate``;
* the trace-flags byte is passed on as received (bit 0 sampled, bit 1 -- Level 2 --
  random trace id), and new traces set the random bit: spanline's trace ids end in
  64 random bits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "FLAG_RANDOM",
    "FLAG_SAMPLED",
    "MAX_MEMBERS",
    "TraceParent",
    "format_traceparent",
    "format_tracestate",
    "header_values",
    "parse_traceparent",
    "parse_tracestate",
]

FLAG_SAMPLED = 0x01
FLAG_RANDOM = 0x02
MAX_MEMBERS = 32

_PARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_SIMPLE_KEY = r"[a-z][a-z0-9_\-*/]{0,255}"
_TENANT_KEY = r"[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13}"
_KEY = re.compile(f"(?:{_SIMPLE_KEY}|{_TENANT_KEY})")
# value: up to 256 printable ASCII characters except "," and "=", not ending in a space
_VALUE = re.compile(r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]")


@dataclass(frozen=True, slots=True)
class TraceParent:
    """A valid ``traceparent``: the caller's trace id, its span id and the flags."""

    version: int
    trace_id: int
    parent_id: int
    flags: int

    @property
    def sampled(self) -> bool:
        """The caller recorded this trace."""
        return bool(self.flags & FLAG_SAMPLED)


def header_values(carrier: object, name: str) -> list[str]:
    """Every value of header ``name`` (case-insensitive) in ``carrier``: a mapping of
    names to a value or a list of values, or an iterable of ``(name, value)`` pairs."""
    wanted = name.lower()
    pairs: Iterable[tuple[object, object]]
    if isinstance(carrier, Mapping):
        pairs = carrier.items()
    elif isinstance(carrier, Iterable):
        pairs = ((p[0], p[1]) for p in carrier if isinstance(p, tuple | list) and len(p) == 2)
    else:
        return []
    found: list[str] = []
    for key, value in pairs:
        if isinstance(key, str) and key.lower() == wanted:
            if isinstance(value, str):
                found.append(value)
            elif isinstance(value, list | tuple):
                found.extend(v for v in value if isinstance(v, str))
    return found


def parse_traceparent(values: list[str]) -> TraceParent | None:  # noqa: PLR0911 - one per rule
    """The ``traceparent`` in ``values`` (all received headers of that name), or
    ``None`` when it is missing, repeated or invalid."""
    if len(values) != 1:
        return None
    text = values[0].strip()
    match = _PARENT.match(text)
    if match is None:
        return None
    version = int(match.group(1), 16)
    if version == 0xFF:
        return None
    if version == 0 and len(text) != 55:
        return None
    if version > 0 and len(text) > 55 and text[55] != "-":
        return None
    trace_id = int(match.group(2), 16)
    parent_id = int(match.group(3), 16)
    if trace_id == 0 or parent_id == 0:
        return None
    return TraceParent(version, trace_id, parent_id, int(match.group(4), 16))


def parse_tracestate(values: list[str]) -> list[tuple[str, str]] | None:
    """The members of the ``tracestate`` headers, in order; ``None`` when the header is
    absent, or invalid as a whole (a bad member, a duplicate key, over 32 members)."""
    members: list[tuple[str, str]] = []
    seen: set[str] = set()
    for header in values:
        for raw in header.split(","):
            item = raw.strip(" \t")
            if not item:
                continue  # empty list members are allowed
            key, sep, value = item.partition("=")
            if not sep or not _KEY.fullmatch(key) or not _VALUE.fullmatch(value):
                return None
            if key in seen:
                return None
            seen.add(key)
            members.append((key, value))
    if not members or len(members) > MAX_MEMBERS:
        return None
    return members


def format_traceparent(trace_id: int, span_id: int, flags: int) -> str:
    """A version-00 ``traceparent`` value."""
    return f"00-{trace_id:032x}-{span_id:016x}-{flags & 0xFF:02x}"


def format_tracestate(members: list[tuple[str, str]]) -> str:
    """A ``tracestate`` value (at most 32 members, as received order)."""
    return ",".join(f"{k}={v}" for k, v in members[:MAX_MEMBERS])
