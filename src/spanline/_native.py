"""The optional compiled helpers (``spanline._accel``), when they were built.

``hatch_build.py`` compiles them at install time if a C compiler is present.  Each
helper has a pure-Python equivalent, which spanline uses when the module is missing
or ``SPANLINE_NO_ACCEL`` is set (``1``/``true``/``yes``/``on``, read at import).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

__all__ = ["compiled", "load"]


def compiled() -> ModuleType | None:
    """The compiled module as imported, not yet configured, or ``None`` (not built,
    or switched off).  For modules that :func:`load` itself imports."""
    if os.environ.get("SPANLINE_NO_ACCEL", "").strip().lower() in {"1", "true", "yes", "on"}:
        return None
    try:
        return importlib.import_module("spanline._accel")
    except ImportError:
        return None


def load() -> ModuleType | None:
    """The compiled module, configured, or ``None`` (not built, or switched off)."""
    module = compiled()
    if module is None:
        return None
    from spanline.core import context, ids

    module.trace_configure(context.Trace, context, ids)
    return module
