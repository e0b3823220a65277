"""Identifiers: Dex-style prefixed ids and their W3C Trace Context twins.

Format (23 characters, sortable by time as plain strings)::

    op_ 2nFg7KxW  1Bq3yTgH8sLk
    ^^^ ^^^^^^^^  ^^^^^^^^^^^^
    |   |         12 base58 chars: a 64-bit number (the W3C span id for spans,
    |   |         the low 64 bits of the W3C trace id for traces)
    |   8 base58 chars: milliseconds since the Unix epoch
    prefix: tr_ op_ hd_ ev_ sp_

The alphabet is Bitcoin's base58, which is in ascending ASCII order, so fixed-width
numbers sort as strings.

Mapping to W3C (documented in docs/concepts.md):

* a span id's last 12 characters *are* its 64-bit W3C span id, base58-encoded;
* a generated ``tr_`` id maps one-to-one to the 128-bit W3C trace id
  ``(milliseconds << 80) | random64`` -- the top 48 bits hold the timestamp, the next
  16 bits are zero and the low 64 bits are random (so the W3C "random trace id" flag
  holds).  Any 128-bit id of that shape renders back to the same ``tr_`` id; any
  other (foreign) W3C id is kept as 32 lowercase hex digits.

Randomness comes from one generator seeded from ``os.urandom`` at import and
re-seeded in every child after ``fork``, so a forked worker never repeats its
parent's ids: the compiled helpers' xoshiro256** (``spanline/_csrc/random.c``, which
the compiled span lifecycle draws from without a call), else a
:class:`random.Random`.
"""

from __future__ import annotations

import functools
import hashlib
import os
import random
import re
from collections.abc import Callable

from spanline._native import compiled

__all__ = [
    "ALPHABET",
    "ID_LENGTH",
    "PREFIXES",
    "abbreviate",
    "b58decode",
    "b58encode",
    "decode_span_id",
    "format_id",
    "is_valid_id",
    "new_random64",
    "new_trace_int",
    "set_random_source",
    "trace_hex",
    "trace_id_from_int",
    "trace_int_from_id",
]

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
_PAIRS = tuple(a + b for a in ALPHABET for b in ALPHABET)  # 58**2 two-digit table
PREFIXES = ("tr_", "op_", "hd_", "ev_", "sp_")
ID_LENGTH = 23
_TS_CHARS = 8
_RAND_CHARS = 12
_MAX_MS = 58**_TS_CHARS
_MASK64 = (1 << 64) - 1
_ID_RE = re.compile(r"(tr|op|hd|ev|sp)_[1-9A-HJ-NP-Za-km-z]{20}")  # used with fullmatch
_HEX32_RE = re.compile(r"[0-9a-f]{32}")  # used with fullmatch

# Ids must be unique, not unpredictable: a seeded PRNG is the cheap, right tool here.
_accel = compiled()
_rng = random.Random()  # noqa: S311 - the pure-Python source, seeded below


def _reseed() -> None:
    _rng.seed(os.urandom(32))
    if _accel is not None:
        _accel.seed_random(os.urandom(32))


_reseed()
if hasattr(os, "register_at_fork"):  # pragma: no branch - absent only on Windows
    os.register_at_fork(after_in_child=_reseed)


_system_random64: Callable[[], int] = (
    _accel.random64 if _accel is not None else functools.partial(_rng.getrandbits, 64)
)

new_random64: Callable[[], int] = _system_random64
"""Return a random 64-bit integer (replaceable by :func:`set_random_source`).

It is a C-level call, no Python frame: callers write ``new_random64() or 1`` because
an all-zero id is invalid in W3C Trace Context (a 1 in 2**64 event).
"""


def set_random_source(source: Callable[[], int] | None) -> None:
    """Replace the random source for new ids (``None`` restores the default).

    The testing kit uses this for deterministic ids; the function must return an
    integer below ``2**64``.
    """
    global new_random64
    new_random64 = source if source is not None else _system_random64


def new_trace_int(start_ns: int) -> int:
    """A fresh 128-bit trace id: the start millisecond on top, 64 random bits below."""
    return ((start_ns // 1_000_000) << 80) | (new_random64() or 1)


def b58encode(value: int, width: int) -> str:
    """Encode a non-negative integer as exactly ``width`` base58 characters."""
    if value < 0:
        raise ValueError(f"cannot base58-encode a negative number: {value}")
    out: list[str] = []
    pairs = _PAIRS
    while width >= 2:
        value, rem = divmod(value, 3364)
        out.append(pairs[rem])
        width -= 2
    if width:
        value, rem = divmod(value, 58)
        out.append(ALPHABET[rem])
    if value:
        raise ValueError("value does not fit in the requested base58 width")
    return "".join(reversed(out))


def b58decode(text: str) -> int:
    """Decode base58 text (Bitcoin alphabet) to an integer; ``ValueError`` if invalid."""
    value = 0
    index = _INDEX
    for ch in text:
        digit = index.get(ch)
        if digit is None:
            raise ValueError(f"{ch!r} is not a base58 character")
        value = value * 58 + digit
    return value


_last_ms: tuple[int, str] = (-1, "")
"""The last millisecond rendered: spans exported together mostly share it."""


def format_id(prefix: str, start_ns: int, random64: int) -> str:
    """Render a prefixed id from a start time (ns since epoch) and a 64-bit number."""
    ms = start_ns // 1_000_000
    return _format_ms(prefix, ms if ms < _MAX_MS else _MAX_MS - 1, random64)


def _format_ms(prefix: str, ms: int, random64: int) -> str:
    global _last_ms
    cached_ms, text = _last_ms  # one tuple: threads never see a torn pair
    if cached_ms != ms:
        text = b58encode(ms, _TS_CHARS)
        _last_ms = (ms, text)
    return prefix + text + _b58_64(random64 & _MASK64)


_FOUR = 58**4


def _b58_64(value: int) -> str:
    """12 base58 characters of a 64-bit number, four at a time (three divisions
    instead of a loop: this runs for every exported span)."""
    pairs = _PAIRS
    rest, low = divmod(value, _FOUR)
    high, mid = divmod(rest, _FOUR)
    a, b = divmod(high, 3364)
    c, d = divmod(mid, 3364)
    e, f = divmod(low, 3364)
    return pairs[a] + pairs[b] + pairs[c] + pairs[d] + pairs[e] + pairs[f]


def is_valid_id(text: object, prefix: str | None = None) -> bool:
    """True when ``text`` is a well-formed spanline id (optionally with ``prefix``)."""
    if not isinstance(text, str) or _ID_RE.fullmatch(text) is None:
        return False
    if b58decode(text[-_RAND_CHARS:]) > _MASK64:
        return False
    return prefix is None or text.startswith(prefix)


def decode_span_id(text: str) -> int:
    """The 64-bit W3C span id carried in a span id's last 12 characters."""
    if not is_valid_id(text):
        raise ValueError(f"not a spanline id: {text!r}")
    return b58decode(text[-_RAND_CHARS:])


def trace_id_from_int(value: int) -> str:
    """Render a 128-bit W3C trace id: the ``tr_`` form when it has that shape, else hex."""
    ms = value >> 80
    middle = (value >> 64) & 0xFFFF
    low = value & _MASK64
    if middle == 0 and 0 < ms < _MAX_MS and low:
        return _format_ms("tr_", ms, low)
    return f"{value:032x}"


def trace_int_from_id(trace_id: str) -> int:
    """The 128-bit W3C trace id for any trace id string.

    * ``tr_`` ids decode to ``(milliseconds << 80) | random64``;
    * 32 hex digits (a W3C id received from elsewhere) are taken as they are;
    * any other external id (a request id, say) is hashed with BLAKE2b to 128 bits,
      so every service that sees the same external id derives the same W3C id.
    """
    if trace_id.startswith("tr_") and is_valid_id(trace_id, "tr_"):
        ms = b58decode(trace_id[3 : 3 + _TS_CHARS])
        value = (ms << 80) | b58decode(trace_id[-_RAND_CHARS:])
        if value:  # the all-zero id is invalid in W3C: such a text is hashed below
            return value
    lowered = trace_id.lower()
    if _HEX32_RE.fullmatch(lowered) and lowered != "0" * 32:
        return int(lowered, 16)
    digest = hashlib.blake2b(trace_id.encode("utf-8", "surrogatepass"), digest_size=16)
    return int.from_bytes(digest.digest(), "big") or 1


def trace_hex(value: int) -> str:
    """32 lowercase hex digits of a 128-bit trace id."""
    return f"{value:032x}"


def abbreviate(ids: list[str], length: int = 6) -> list[str]:
    """Short forms ``prefix + last N chars`` that still tell every id in ``ids`` apart.

    The last characters come from the random part, so two operations started in the
    same millisecond still differ; on the rare collision the colliding ids grow until
    they are distinct.
    """
    result = list(ids)
    width = length
    pending = set(range(len(ids)))
    while pending:
        shorts: dict[str, list[int]] = {}
        for i in pending:
            ident = ids[i]
            cut = ident[:3] + ident[-width:] if len(ident) > 3 + width else ident
            result[i] = cut
            shorts.setdefault(cut, []).append(i)
        pending = {
            i for group in shorts.values() if len({ids[j] for j in group}) > 1 for i in group
        }
        width += 2
        if width >= ID_LENGTH:
            for i in pending:
                result[i] = ids[i]
            break
    return result
