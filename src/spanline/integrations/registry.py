"""``spanline.instrument(...)`` / ``spanline.uninstrument(...)``: switch integrations on
and off.  An integration wraps a library's method (the application's code is not
touched); instrumenting twice does nothing, uninstrumenting restores the original."""

from __future__ import annotations

import importlib
import threading
from typing import Any

from spanline.integrations import http_client, sql
from spanline.integrations import redis as redis_integration

__all__ = ["instrument", "instrumented", "uninstrument"]

_lock = threading.Lock()
_originals: dict[tuple[str, str, str], Any] = {}
_active: set[str] = set()


_INTEGRATIONS: dict[str, list[tuple[str, str, str, Any]]] = {
    **http_client.INTEGRATIONS,
    "redis": redis_integration.TARGETS,
    **sql.TARGETS,
}


_HOOKED: dict[str, str] = {
    # integrations that install themselves (signals, event listeners, several classes):
    # the module, imported on first use, has ``install()`` and ``uninstall()``
    "threads": "spanline.integrations.threads",
    "celery": "spanline.integrations.celery",
    "rq": "spanline.integrations.rq",
    "sqlalchemy": "spanline.integrations.sqlalchemy",
    "pykka": "spanline.integrations.pykka",
    "flask": "spanline.integrations.flask",
}


def _targets(name: str) -> list[tuple[str, str, str, Any]]:
    targets = _INTEGRATIONS.get(name)
    if targets is None:
        known = ", ".join(sorted([*_INTEGRATIONS, *_HOOKED]))
        raise ValueError(f"unknown integration {name!r}; available: {known}")
    return targets


def _hooks(name: str) -> Any:
    return importlib.import_module(_HOOKED[name])


def instrument(*names: str) -> None:
    """Switch the named integrations on (``"urllib"``, ``"requests"``, ``"httpx"``,
    ``"redis"``, ``"psycopg"``, ``"sqlite3"``, ``"sqlalchemy"``, ``"threads"``,
    ``"celery"``, ``"rq"``, ``"pykka"``, ``"flask"``); ``ImportError`` names a library
    that is not installed."""
    with _lock:
        for name in names:
            if name in _active:
                continue
            if name in _HOOKED:
                _hooks(name).install()
                _active.add(name)
                continue
            for module, cls, method, wrapper in _targets(name):
                owner = http_client.load(module, cls)
                original = owner.__dict__[method]
                _originals[(module, cls, method)] = original
                setattr(owner, method, wrapper(original))
            _active.add(name)


def uninstrument(*names: str) -> None:
    """Switch the named integrations off, restoring the wrapped methods."""
    with _lock:
        for name in names:
            if name not in _active:
                continue
            if name in _HOOKED:
                _hooks(name).uninstall()
                _active.discard(name)
                continue
            for module, cls, method, _ in _targets(name):
                original = _originals.pop((module, cls, method), None)
                if original is not None:
                    setattr(http_client.load(module, cls), method, original)
            _active.discard(name)


def instrumented() -> set[str]:
    """The integrations switched on."""
    with _lock:
        return set(_active)
