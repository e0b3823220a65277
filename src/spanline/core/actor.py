"""Actors: who caused a trace.

An actor is an opaque mapping with a required ``type`` (``user``, ``admin``, ``agent``,
``api_key``, ``webhook``, ``system`` are conventions, not rules).  spanline stores
every value as a string -- ``{"type": "user", "id": 42}`` becomes
``{"type": "user", "id": "42"}`` -- and otherwise keeps what it was given, so
conventions such as ``via``, ``on_behalf_of`` and ``impersonated_by`` round-trip
unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["Actor", "actor_label", "normalize_actor", "system"]

Actor = dict[str, str]
"""An actor as spanline stores it: string keys, string values, ``type`` present."""

_MAX_KEYS = 32
_MAX_VALUE = 1024


def _as_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def normalize_actor(actor: Mapping[str, object] | None) -> Actor | None:
    """Validate an actor and return it with string values.

    Raises ``ValueError`` when ``type`` is missing or empty, and ``TypeError`` when the
    actor is not a mapping; ``None`` values are dropped.
    """
    if actor is None:
        return None
    if not isinstance(actor, Mapping):
        raise TypeError(
            f"actor must be a mapping such as {{'type': 'user', 'id': 42}}, "
            f"got {type(actor).__name__}"
        )
    if len(actor) > _MAX_KEYS:
        raise ValueError(f"actor has {len(actor)} keys; at most {_MAX_KEYS} are allowed")
    result: Actor = {}
    for key, value in actor.items():
        if value is None:
            continue
        text = _as_text(value)
        if len(text) > _MAX_VALUE:
            raise ValueError(f"actor value for {key!r} is longer than {_MAX_VALUE} characters")
        result[_as_text(key)] = text
    if not result.get("type"):
        raise ValueError("actor needs a non-empty 'type', e.g. {'type': 'user', 'id': 42}")
    return result


def system(name: str | None = None) -> Actor:
    """The actor for background work: ``{"type": "system"}`` or with a ``name``."""
    return {"type": "system"} if name is None else {"type": "system", "name": _as_text(name)}


_MARKERS = ("via", "on_behalf_of", "impersonated_by")


def actor_label(actor: Mapping[str, str]) -> str:
    """Human-readable actor for trace strings: ``user:42``, ``system:payroll``,
    ``user:42 via support-bot``, ``admin:5 on_behalf_of 9``."""
    kind = actor.get("type", "?")
    who = actor.get("id") or actor.get("name") or actor.get("source")
    label = f"{kind}:{who}" if who else kind
    for marker in _MARKERS:
        value = actor.get(marker)
        if value:
            label += f" {marker} {value}"
    return label
