"""Routing lifecycle events to backends, with a switch and a sampling rate per route.

::

    router = spanline.EventRouter()
    router.route("task.*", spanline.TraceBackend.instance(), sampling_rate=0.1)
    router.route("step.*", spanline.TraceBackend.instance())
    router.publish("task.started", {"task_id": 7})

Sampling is decided per *subject*, not per event: the payload's outermost id
(``task_id``, else ``step_id``, else ``operation_id``) is hashed, so a task's
``.started`` and ``.completed`` -- and its steps -- are kept or dropped together, and
every process agrees.  Routing never raises.
"""

from __future__ import annotations

import fnmatch
import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from spanline._fork import renew_after_fork
from spanline.backend.trace_backend import ID_KEYS

__all__ = ["EventBackend", "EventRouter", "Route"]


class EventBackend(Protocol):
    """Anything with ``handle_event(name, payload) -> bool``."""

    def handle_event(self, event_name: str, payload: Mapping[str, Any] | None = None) -> bool:
        """Take one event; ``False`` if it could not be used."""


@dataclass
class Route:
    """Events whose name matches ``pattern`` (shell-style) go to ``backend``."""

    pattern: str
    backend: EventBackend
    enabled: bool = True
    sampling_rate: float = 1.0


class EventRouter:
    """Sends each event to every enabled route that matches it and samples it in."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        renew_after_fork(self)
        self._routes: tuple[Route, ...] = ()

    def route(
        self,
        pattern: str,
        backend: EventBackend,
        *,
        enabled: bool = True,
        sampling_rate: float = 1.0,
    ) -> Route:
        """Add a route; ``sampling_rate`` from 0 to 1 (``ValueError`` otherwise)."""
        if not 0 <= sampling_rate <= 1:
            raise ValueError(f"sampling_rate must be from 0 to 1, got {sampling_rate!r}")
        if not callable(getattr(backend, "handle_event", None)):
            raise TypeError(f"{type(backend).__name__} has no handle_event()")
        added = Route(pattern, backend, enabled, sampling_rate)
        with self._lock:
            self._routes = (*self._routes, added)
        return added

    def routes(self) -> tuple[Route, ...]:
        """The routes, in the order they were added (toggle ``enabled`` on them)."""
        return self._routes

    @staticmethod
    def _sampled(rate: float, event_name: str, payload: Mapping[str, Any]) -> bool:
        if rate >= 1:
            return True
        if rate <= 0:
            return False
        # the outermost id (the task): a task's steps are kept or dropped with it
        subject = next(
            (str(payload[k]) for k in reversed(ID_KEYS) if payload.get(k) is not None),
            event_name,
        )
        digest = hashlib.blake2b(subject.encode("utf-8", "replace"), digest_size=8).digest()
        return int.from_bytes(digest, "big") < rate * 2**64

    def publish(self, event_name: str, payload: Mapping[str, Any] | None = None) -> int:
        """Deliver the event; returns how many backends accepted it."""
        data: Mapping[str, Any] = payload if isinstance(payload, Mapping) else {}
        accepted = 0
        for route in self._routes:
            try:
                if (
                    route.enabled
                    and fnmatch.fnmatchcase(event_name, route.pattern)
                    and self._sampled(route.sampling_rate, event_name, data)
                    and route.backend.handle_event(event_name, payload)
                ):
                    accepted += 1
            except Exception:  # noqa: BLE001, S112 - one backend must not stop the others
                continue
        return accepted
