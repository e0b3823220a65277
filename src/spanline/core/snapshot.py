"""Context snapshots: what a pipeline stage added, changed and removed.

``span(name, context=ctx)`` copies ``ctx`` when the span starts and compares it with
the live object when the span ends.  The copy is deep (so in-place changes to nested
values count as changes); a value that cannot be deep-copied is compared by identity.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from spanline.core.jsonsafe import jsonable

__all__ = ["as_mapping", "delta", "take"]


def as_mapping(context: object) -> Mapping[str, Any]:
    """Read a context: a mapping, an object with ``to_dict()``, or its ``vars()``."""
    if isinstance(context, Mapping):
        return context
    to_dict = getattr(context, "to_dict", None)
    if callable(to_dict):
        result = to_dict()
        if isinstance(result, Mapping):
            return result
    try:
        return vars(context)
    except TypeError:
        return {}


def take(context: object) -> dict[str, Any]:
    """A private copy of the context's current state."""
    current = dict(as_mapping(context))
    try:
        return copy.deepcopy(current)
    except Exception:  # noqa: BLE001 - uncopyable values are compared by identity
        return current


def delta(before: Mapping[str, Any], context: object) -> dict[str, Any]:
    """Records describing the change: ``context`` (after), ``added``, ``changed``,
    ``removed`` (sorted key lists)."""
    after = as_mapping(context)
    changed = []
    for key in before.keys() & after.keys():
        try:
            different = bool(before[key] != after[key])
        except Exception:  # noqa: BLE001 - a value whose __eq__ fails counts as changed
            different = True
        if different:
            changed.append(key)
    return {
        "context": jsonable(after),
        "added": sorted(map(str, after.keys() - before.keys())),
        "changed": sorted(map(str, changed)),
        "removed": sorted(map(str, before.keys() - after.keys())),
    }
