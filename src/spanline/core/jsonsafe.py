"""Turning arbitrary values into JSON-ready ones without ever raising or stalling.

Records, meta and context snapshots accept anything.  JSON types pass through (tuples
and sets become lists, mapping keys become strings); anything else is stored as its
``repr``.  One call visits at most ``MAX_NODES`` values in all (so a small value that
shares sub-structure many times over cannot take exponential time), nests at most
``MAX_DEPTH`` deep, marks self-references as ``"<cycle>"``, and turns integers too
large for JSON text into a short description.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_NODES", "jsonable"]

MAX_DEPTH = 32
MAX_NODES = 10_000
_MAX_INT_BITS = 4096  # well inside Python's int-to-text limit (4,300 digits)
_TRUNCATED = "…"


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception as error:  # noqa: BLE001 - a broken __repr__ must not break tracing
        return f"<unrepresentable {type(value).__qualname__}: {type(error).__name__}>"


class _Walk:
    __slots__ = ("budget", "path")

    def __init__(self) -> None:
        self.budget = MAX_NODES
        self.path: set[int] = set()

    def value(self, value: object, depth: int) -> Any:  # noqa: PLR0911 - one exit per type
        self.budget -= 1
        if isinstance(value, str | bool) or value is None:
            return value
        if isinstance(value, int):
            if value.bit_length() > _MAX_INT_BITS:
                return f"<int of {value.bit_length()} bits>"
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else _safe_repr(value)
        if self.budget <= 0:
            return _TRUNCATED
        if depth >= MAX_DEPTH:
            return _safe_repr(value)
        if isinstance(value, Mapping | list | tuple | set | frozenset):
            marker = id(value)
            if marker in self.path:
                return "<cycle>"
            self.path.add(marker)
            try:
                return self.container(value, depth)
            except Exception:  # noqa: BLE001 - a container that fails to iterate
                return _safe_repr(value)
            finally:
                self.path.discard(marker)
        return _safe_repr(value)

    def container(self, value: object, depth: int) -> Any:
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for key, item in value.items():
                if self.budget <= 0:
                    out[_TRUNCATED] = "truncated"
                    break
                out[key if isinstance(key, str) else _safe_repr(key)] = self.value(item, depth + 1)
            return out
        items: Any = value
        if isinstance(value, set | frozenset):
            items = sorted(value, key=_safe_repr)
        result: list[Any] = []
        for item in items:
            if self.budget <= 0:
                result.append(_TRUNCATED)
                break
            result.append(self.value(item, depth + 1))
        return result


def jsonable(value: object) -> Any:
    """Return a JSON-serializable copy of ``value`` (never raises, bounded work)."""
    try:
        return _Walk().value(value, 0)
    except Exception:  # noqa: BLE001 - belt and braces: recording never raises
        return _safe_repr(value)
