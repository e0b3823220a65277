"""Locks that survive ``os.fork``.

A lock held by another thread at the moment of a fork stays held for ever in the
child, where that thread does not exist: the first ``with lock`` there deadlocks.
Every lock spanline owns is renewed in the child through :func:`renew_after_fork`.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

__all__ = ["renew_after_fork"]


def renew_after_fork(owner: Any, attribute: str = "_lock") -> None:
    """After a fork, give ``owner.<attribute>`` a fresh ``threading.Lock`` in the child.

    ``owner`` may be an object (held weakly) or a module.
    """
    if not hasattr(os, "register_at_fork"):  # pragma: no cover - Windows
        return
    try:
        ref: Any = weakref.ref(owner)
    except TypeError:  # modules and other objects without weak references
        ref = lambda: owner  # noqa: E731 - a strong reference is fine for modules

    def renew() -> None:
        target = ref()
        if target is not None:
            setattr(target, attribute, threading.Lock())

    os.register_at_fork(after_in_child=renew)
