"""Settings, resolved in one place: argument, then environment variable, then default.

Every variable is listed in ``docs/configuration.md``.  An invalid value is a
:class:`ConfigError` naming the variable and the accepted values, raised by
:func:`configure`; at import time (where raising would break the host application)
the same message is logged as a warning and the default is used.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import TypeVar

from spanline._log import logger
from spanline.core.pipeline import PIPELINE

__all__ = ["ConfigError", "Settings", "configure", "reset_settings", "settings"]

T = TypeVar("T")
_UNSET: object = object()


class ConfigError(ValueError):
    """A setting has a value spanline cannot accept; the message names it."""


@dataclass(slots=True)
class Settings:
    """The active settings (read them from :data:`settings`; change them with
    :func:`configure`)."""

    enabled: bool = True
    """Record spans.  When false, ids, frames, actor and trace strings still work."""
    ring_size: int = 1000
    """How many completed root spans ``spanline.tracer.completed`` keeps."""
    payload_secret: str | None = None
    """When set, ``dump()`` signs job payloads and ``restore()`` rejects unsigned or
    altered ones (HMAC-SHA256)."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(
        f"{name}={raw!r} is not a boolean; use one of true/false, 1/0, yes/no, on/off"
    )


def _parse_ring(name: str, raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer; use a whole number >= 0") from None
    return _check_ring(name, value)


def _check_ring(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name}={value!r} is invalid; use a whole number >= 0")
    return value


def _parse_secret(name: str, raw: str) -> str | None:
    return raw or None


def _check_secret(name: str, value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    raise ConfigError(f"{name} must be a string, got {type(value).__name__}")


def _check_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{name}={value!r} is invalid; use True or False")


# setting -> (environment variable, parser from text, validator of an argument)
_SOURCES: dict[str, tuple[str, Callable[[str, str], object], Callable[[str, object], object]]] = {
    "enabled": ("SPANLINE_ENABLED", _parse_bool, _check_bool),
    "ring_size": ("SPANLINE_RING_SIZE", _parse_ring, _check_ring),
    "payload_secret": ("SPANLINE_PAYLOAD_SECRET", _parse_secret, _check_secret),
}
ENVIRONMENT_VARIABLES: tuple[str, ...] = tuple(src[0] for src in _SOURCES.values())


def _resolve(arguments: Mapping[str, object], environ: Mapping[str, str], strict: bool) -> Settings:
    resolved = Settings()
    for field in fields(Settings):
        env_name, parse, check = _SOURCES[field.name]
        value = arguments.get(field.name, _UNSET)
        try:
            if value is not _UNSET:
                setattr(resolved, field.name, check(f"configure({field.name}=...)", value))
            elif env_name in environ:
                setattr(resolved, field.name, parse(env_name, environ[env_name]))
        except ConfigError as error:
            if strict:
                raise
            logger.log(
                logging.WARNING,
                "spanline: %s; using the default %r",
                error,
                getattr(resolved, field.name),
            )
    return resolved


settings: Settings = _resolve({}, os.environ, strict=False)
"""The settings in force (module-level so the hot path reads one attribute)."""
PIPELINE.set_ring_size(settings.ring_size)


def _apply(new: Settings) -> Settings:
    for field in fields(Settings):
        setattr(settings, field.name, getattr(new, field.name))
    PIPELINE.set_ring_size(settings.ring_size)
    return settings


def configure(
    *, enabled: bool | None = None, ring_size: int | None = None, payload_secret: str | None = None
) -> Settings:
    """Set spanline's settings; arguments win over environment variables.

    An argument left as ``None`` falls back to its environment variable, then to the
    default.  Changes apply to traces started afterwards.  Raises :class:`ConfigError`
    for an invalid argument or environment value.
    """
    given = {
        k: v
        for k, v in {
            "enabled": enabled,
            "ring_size": ring_size,
            "payload_secret": payload_secret,
        }.items()
        if v is not None
    }
    return _apply(_resolve(given, os.environ, strict=True))


def reset_settings() -> Settings:
    """Back to environment variables and defaults (used between tests)."""
    return _apply(_resolve({}, os.environ, strict=False))
