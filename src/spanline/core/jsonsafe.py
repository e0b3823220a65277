"""Turning arbitrary values into JSON-ready ones without ever raising.

Records, meta and context snapshots accept anything.  JSON types pass through (tuples
and sets become lists, mapping keys become strings); anything else is stored as its
``repr``.  Depth and size are capped so a huge or self-referencing value cannot stall
the application.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["jsonable"]

_MAX_DEPTH = 32
_MAX_ITEMS = 10_000
_PRIMITIVES = (str, int, bool, type(None))


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception as error:  # noqa: BLE001 - a broken __repr__ must not break tracing
        return f"<unrepresentable {type(value).__qualname__}: {type(error).__name__}>"


def jsonable(value: object, _depth: int = 0) -> Any:  # noqa: PLR0911 - one exit per type
    """Return a JSON-serializable copy of ``value`` (never raises)."""
    if isinstance(value, _PRIMITIVES):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _safe_repr(value)
    if _depth >= _MAX_DEPTH:
        return _safe_repr(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        try:
            for i, (key, item) in enumerate(value.items()):
                if i >= _MAX_ITEMS:
                    out["…"] = f"{len(value) - _MAX_ITEMS} more items"
                    break
                out[key if isinstance(key, str) else _safe_repr(key)] = jsonable(item, _depth + 1)
        except Exception:  # noqa: BLE001 - a mapping that fails to iterate
            return _safe_repr(value)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=_safe_repr) if isinstance(value, set | frozenset) else value
        return [jsonable(item, _depth + 1) for item in list(items)[:_MAX_ITEMS]]
    return _safe_repr(value)
