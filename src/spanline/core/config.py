"""Settings, resolved in one place: argument, then environment variable, then default.

Every variable is listed in ``docs/configuration.md``.  An invalid value is a
:class:`ConfigError` naming the variable and the accepted values, raised by
:func:`configure`; at import time (where raising would break the host application)
the same message is logged as a warning and the default is used.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TypeVar

from spanline._log import logger
from spanline.core.pipeline import PIPELINE
from spanline.core.sampling import (
    SAMPLER_NAMES,
    AlwaysOn,
    ParentBased,
    Sampler,
    TraceIdRatio,
    sampler_from_name,
)

__all__ = [
    "ConfigError",
    "OtlpOptions",
    "Settings",
    "configure",
    "otlp_options",
    "reset_settings",
    "settings",
]

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
    ring_size: int = 100
    """How many completed root spans ``spanline.tracer.completed`` keeps."""
    payload_secret: str | None = None
    """When set, ``dump()`` signs job payloads and ``restore()`` rejects unsigned or
    altered ones (HMAC-SHA256)."""
    service_name: str | None = None
    """``service.name`` on exported spans (default ``unknown_service:<executable>``)."""
    resource_attributes: dict[str, str] = dataclasses.field(default_factory=dict)
    """Extra resource attributes on exported spans."""
    sampler: Sampler = dataclasses.field(default_factory=lambda: ParentBased(AlwaysOn()))
    """Head sampler: decides, once per new trace, whether its spans are recorded."""
    exporters: tuple[str, ...] = ()
    """Exporters installed behind a batch processor each (``otlp``, ``console``)."""
    propagators: tuple[str, ...] = ("tracecontext", "baggage")
    """Context formats that ``inject``/``extract`` (and so every integration) write and
    read: ``tracecontext`` (``traceparent``/``tracestate``), ``baggage`` (the actor);
    empty for ``none``."""
    cardinality_warnings: bool = True
    """Warn (once per pattern, from the batch processor's worker thread) when a span
    name or a messaging span's attribute key looks like it carries an id."""
    store: str | None = None
    """The recording store (a SQLite path, ``sqlite:///path`` or ``postgresql://…``)
    that the ``store`` exporter, ``spanline.store.open()``, the CLI and the viewer use
    when given none; ``None``: ``./spanline.db``."""
    sample_all: bool = dataclasses.field(init=False, default=True)
    """Derived: the sampler keeps every new root trace (lets the hot path skip it)."""

    def __post_init__(self) -> None:
        self.sample_all = self.sampler.records_everything

    @property
    def resource(self) -> dict[str, str]:
        """The resource for exported spans: ``resource_attributes`` plus
        ``service.name`` (``service_name`` wins over a ``service.name`` attribute)."""
        resource = dict(self.resource_attributes)
        if self.service_name:
            resource["service.name"] = self.service_name
        resource.setdefault("service.name", f"unknown_service:{Path(sys.executable).name}")
        return resource


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


def _parse_text(name: str, raw: str) -> str | None:
    return raw.strip() or None


def _check_text(name: str, value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value.strip() or None if value else None
    raise ConfigError(f"{name} must be a string, got {type(value).__name__}")


def parse_pairs(name: str, raw: str) -> dict[str, str]:
    """``key1=value1,key2=value2`` with percent-encoded values (the W3C Baggage-like
    format of ``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_EXPORTER_OTLP_HEADERS``)."""
    pairs: dict[str, str] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"{name}: {item.strip()!r} is not key=value; use "
                "key1=value1,key2=value2 (values percent-encoded)"
            )
        pairs[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(value.strip())
    return pairs


def _check_pairs(name: str, value: object) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: str(v) for k, v in value.items()}
    raise ConfigError(f"{name} must be a mapping of strings, got {type(value).__name__}")


def _check_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{name}={value!r} is invalid; use True or False")


def _parse_disabled(name: str, raw: str) -> bool:
    return not _parse_bool(name, raw)


def _parse_sampler(name: str, raw: str, environ: Mapping[str, str]) -> Sampler:
    value = raw.strip().lower()
    if value not in SAMPLER_NAMES:
        raise ConfigError(f"{name}={raw!r} is invalid; use one of {', '.join(SAMPLER_NAMES)}")
    ratio = 1.0
    if "traceidratio" in value and "OTEL_TRACES_SAMPLER_ARG" in environ:
        ratio = _parse_ratio("OTEL_TRACES_SAMPLER_ARG", environ["OTEL_TRACES_SAMPLER_ARG"])
    return sampler_from_name(value, ratio)


def _parse_ratio(name: str, raw: str) -> float:
    try:
        ratio = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number; use a ratio from 0 to 1") from None
    if not 0 <= ratio <= 1:
        raise ConfigError(f"{name}={raw!r} is out of range; use a ratio from 0 to 1")
    return ratio


def _check_sampler(name: str, value: object) -> Sampler:
    if isinstance(value, str):
        ratio = 1.0
        arg = os.environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
        if "traceidratio" in value and arg:
            ratio = _parse_ratio("OTEL_TRACES_SAMPLER_ARG", arg)
        try:
            return sampler_from_name(value.strip().lower(), ratio)
        except ValueError as error:
            raise ConfigError(f"{name}: {error}") from None
    if isinstance(value, Sampler):
        return value
    raise ConfigError(f"{name} must be a sampler or one of {', '.join(SAMPLER_NAMES)}")


_EXPORTERS = ("otlp", "console", "store", "none")
_PROPAGATORS = ("tracecontext", "baggage", "none")


def _names_of(accepted: tuple[str, ...], what: str) -> Callable[[str, object], tuple[str, ...]]:
    def check(name: str, value: object) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ConfigError(f"{name} must be a name or a list of names of {what}")
        names = tuple(str(item).strip().lower() for item in items if str(item).strip())
        for item in names:
            if item not in accepted:
                raise ConfigError(
                    f"{name}: {what} {item!r} is not supported; use one of {', '.join(accepted)}"
                )
        return tuple(n for n in dict.fromkeys(names) if n != "none")

    return check


_check_exporters = _names_of(_EXPORTERS, "exporter")
_check_propagator_names = _names_of(_PROPAGATORS, "propagator")
_OTHER_PROPAGATORS = ("b3", "b3multi", "jaeger", "xray", "ottrace")
"""OpenTelemetry's other well-known propagators, which spanline does not implement."""


def _check_propagators(name: str, value: object) -> tuple[str, ...]:
    try:
        return _check_propagator_names(name, value)
    except ConfigError as error:
        items = value.split(",") if isinstance(value, str) else value
        if isinstance(items, list | tuple):
            for item in items:
                if str(item).strip().lower() in _OTHER_PROPAGATORS:
                    raise ConfigError(
                        f"{name}: propagator {str(item).strip()!r} is not supported by "
                        "spanline, which speaks W3C Trace Context and W3C Baggage only; use "
                        f"one of {', '.join(_PROPAGATORS)}"
                    ) from None
        raise error from None


def _check_store(name: str, value: object) -> str:
    """A store location, checked now (parsed only; nothing connects)."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{name} must be a SQLite file path or a postgresql:// URL")
    from spanline.core.location import StoreConfigError, parse_location

    try:
        parse_location(name, value.strip())
    except StoreConfigError as error:
        raise ConfigError(str(error)) from None
    return value.strip()


Parser = Callable[[str, str, Mapping[str, str]], object]


def _plain(parse: Callable[[str, str], object]) -> Parser:
    return lambda name, raw, environ: parse(name, raw)


# setting -> (its environment variables, first found wins, with their parsers;
#             the validator of a configure() argument)
_SOURCES: dict[str, tuple[tuple[tuple[str, Parser], ...], Callable[[str, object], object]]] = {
    "enabled": (
        (
            ("SPANLINE_ENABLED", _plain(_parse_bool)),
            ("OTEL_SDK_DISABLED", _plain(_parse_disabled)),
            ("OTEL_TRACING_ENABLED", _plain(_parse_bool)),
        ),
        _check_bool,
    ),
    "ring_size": ((("SPANLINE_RING_SIZE", _plain(_parse_ring)),), _check_ring),
    "payload_secret": ((("SPANLINE_PAYLOAD_SECRET", _plain(_parse_secret)),), _check_secret),
    "service_name": ((("OTEL_SERVICE_NAME", _plain(_parse_text)),), _check_text),
    "resource_attributes": (
        (("OTEL_RESOURCE_ATTRIBUTES", _plain(parse_pairs)),),
        _check_pairs,
    ),
    "exporters": ((("OTEL_TRACES_EXPORTER", _plain(_check_exporters)),), _check_exporters),
    "propagators": ((("OTEL_PROPAGATORS", _plain(_check_propagators)),), _check_propagators),
    "cardinality_warnings": (
        (("SPANLINE_CARDINALITY_WARNINGS", _plain(_parse_bool)),),
        _check_bool,
    ),
    "store": ((("SPANLINE_STORE", _plain(_check_store)),), _check_store),
    "sampler": (
        (
            ("OTEL_TRACES_SAMPLER", _parse_sampler),
            (
                "OTEL_TRACING_SAMPLE_RATE",
                lambda name, raw, environ: ParentBased(TraceIdRatio(_parse_ratio(name, raw))),
            ),
        ),
        _check_sampler,
    ),
}
ENVIRONMENT_VARIABLES: tuple[str, ...] = (
    *(name for sources, _ in _SOURCES.values() for name, _ in sources),
    "OTEL_TRACES_SAMPLER_ARG",
)


def _resolve(arguments: Mapping[str, object], environ: Mapping[str, str], strict: bool) -> Settings:
    resolved = Settings()
    for field in fields(Settings):
        if not field.init:
            continue
        sources, check = _SOURCES[field.name]
        value = arguments.get(field.name, _UNSET)
        try:
            if value is not _UNSET:
                setattr(resolved, field.name, check(f"configure({field.name}=...)", value))
            else:
                for env_name, parse in sources:
                    if environ.get(env_name, "").strip():  # empty means unset (OTel spec)
                        setattr(resolved, field.name, parse(env_name, environ[env_name], environ))
                        break
        except ConfigError as error:
            if strict:
                raise
            logger.log(
                logging.WARNING,
                "spanline: %s; using the default %r",
                error,
                getattr(resolved, field.name),
            )
    resolved.sample_all = resolved.sampler.records_everything
    return resolved


settings: Settings = _resolve({}, os.environ, strict=False)
"""The settings in force (module-level so the hot path reads one attribute)."""
PIPELINE.set_ring_size(settings.ring_size)


def _install_exporters(names: tuple[str, ...], store: str | None) -> None:
    if not names and not _exporters_installed:
        return  # nothing to install or remove: do not import the export layer
    from spanline.export.setup import install

    try:
        install(names, store=store)
    except ImportError as error:
        raise ConfigError(f"exporter {names}: {error}") from None
    _exporters_installed[:] = list(names)


_exporters_installed: list[str] = []


def _apply(new: Settings) -> Settings:
    for field in fields(Settings):
        setattr(settings, field.name, getattr(new, field.name))
    settings.sample_all = settings.sampler.records_everything
    PIPELINE.set_ring_size(settings.ring_size)
    _install_exporters(settings.exporters, settings.store)
    return settings


def configure(
    *,
    enabled: bool | None = None,
    ring_size: int | None = None,
    payload_secret: str | None = None,
    service_name: str | None = None,
    resource_attributes: Mapping[str, str] | None = None,
    sampler: Sampler | str | None = None,
    exporter: str | list[str] | tuple[str, ...] | None = None,
    propagators: str | list[str] | tuple[str, ...] | None = None,
    cardinality_warnings: bool | None = None,
    store: str | os.PathLike[str] | None = None,
) -> Settings:
    """Set spanline's settings; arguments win over environment variables.

    A setting passed here stays set across later ``configure()`` calls (until
    :func:`reset_settings`); one never passed falls back to its environment variable,
    re-read on every call, then to the default.  Changes apply to traces started
    afterwards.  Raises :class:`ConfigError` for an invalid argument or environment
    value, and then changes nothing.
    """
    given = {
        k: v
        for k, v in {
            "enabled": enabled,
            "ring_size": ring_size,
            "payload_secret": payload_secret,
            "service_name": service_name,
            "resource_attributes": resource_attributes,
            "sampler": sampler,
            "exporters": exporter,
            "propagators": propagators,
            "cardinality_warnings": cardinality_warnings,
            "store": store,
        }.items()
        if v is not None
    }
    resolved = _resolve({**_pinned, **given}, os.environ, strict=True)
    # every variable is checked now, also those only read when an exporter is built
    batch_options()
    otlp_options()
    # install first: if building the exporters fails, nothing has changed yet
    _install_exporters(resolved.exporters, resolved.store)
    _pinned.update(given)
    return _apply(resolved)


_pinned: dict[str, object] = {}
"""Settings given to configure() so far; they outlive later calls."""


def configured_store() -> str | None:
    """The store passed to ``configure(store=...)``, if any (``SPANLINE_STORE`` is
    read where the store is resolved, so a later change of it is seen)."""
    return settings.store if "store" in _pinned else None


def reset_settings() -> Settings:
    """Forget configure() arguments: back to environment variables and defaults."""
    _pinned.clear()
    return _apply(_resolve({}, os.environ, strict=False))


# ---------------------------------------------------------------- OTLP exporter

_DEFAULT_OTLP_BASE = "http://localhost:4318"
_PROTOCOLS = ("http/protobuf", "http/json")
_COMPRESSIONS = ("gzip", "none")


@dataclass(frozen=True, slots=True)
class OtlpOptions:
    """Where and how the OTLP/HTTP exporter sends spans."""

    endpoint: str
    headers: dict[str, str]
    compression: str
    timeout_millis: int
    protocol: str


def _check_url(name: str, url: object) -> str:
    if not isinstance(url, str):
        raise ConfigError(f"{name} must be a URL string, got {type(url).__name__}")
    try:
        parsed = urllib.parse.urlsplit(url)
        parsed.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as error:
        raise ConfigError(f"{name}={url!r} is not a valid URL ({error})") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"{name}={url!r} is not an http:// or https:// URL with a host")
    return url


def _choice_of(accepted: tuple[str, ...]) -> Callable[[str, object], str]:
    def check(name: str, raw: object) -> str:
        value = raw.strip().lower() if isinstance(raw, str) else raw
        if value not in accepted:
            extra = " (gRPC is not supported; use http/protobuf)" if value == "grpc" else ""
            raise ConfigError(f"{name}={raw!r} is invalid; use one of {', '.join(accepted)}{extra}")
        return str(value)

    return check


def _pick(
    argument: object,
    check: Callable[[str, object], T],
    arg_name: str,
    environ: Mapping[str, str],
    variables: tuple[str, ...],
    parse: Callable[[str, str], T],
    default: T,
) -> T:
    """Argument, else the first environment variable present, else the default."""
    if argument is not None:
        return check(arg_name, argument)
    for name in variables:
        if environ.get(name, "").strip():  # empty means unset (OTel spec)
            return parse(name, environ[name])
    return default


def _parse_timeout(name: str, raw: str) -> int:
    try:
        return _check_timeout(name, int(raw.strip()))
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number of milliseconds") from None


def otlp_options(
    *,
    endpoint: str | None = None,
    headers: Mapping[str, str] | None = None,
    compression: str | None = None,
    timeout_millis: int | None = None,
    protocol: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> OtlpOptions:
    """Resolve the OTLP exporter's options: argument, then the trace-specific
    ``OTEL_EXPORTER_OTLP_TRACES_*`` variable, then the generic ``OTEL_EXPORTER_OTLP_*``
    one, then the default.  ``endpoint`` and ``…_TRACES_ENDPOINT`` are full URLs; the
    generic ``OTEL_EXPORTER_OTLP_ENDPOINT`` is a base URL to which ``/v1/traces`` is
    appended.  Raises :class:`ConfigError` naming the culprit."""
    env = os.environ if environ is None else environ
    url = _pick(
        endpoint,
        _check_url,
        "endpoint",
        env,
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",),
        _check_url,
        "",
    )
    if not url:
        base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or _DEFAULT_OTLP_BASE
        url = _check_url("OTEL_EXPORTER_OTLP_ENDPOINT", base.rstrip("/") + "/v1/traces")
    return OtlpOptions(
        endpoint=url,
        headers=_pick(
            headers,
            _check_pairs,
            "headers",
            env,
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"),
            parse_pairs,
            {},
        ),
        compression=_pick(
            compression,
            _choice_of(_COMPRESSIONS),
            "compression",
            env,
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"),
            _choice_of(_COMPRESSIONS),
            "none",  # as in the OpenTelemetry SDKs: gzip costs the app CPU per span
        ),
        timeout_millis=_pick(
            timeout_millis,
            _check_timeout,
            "timeout_millis",
            env,
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"),
            _parse_timeout,
            10_000,
        ),
        protocol=_pick(
            protocol,
            _choice_of(_PROTOCOLS),
            "protocol",
            env,
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
            _choice_of(_PROTOCOLS),
            "http/protobuf",
        ),
    )


def _check_timeout(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name}={value!r} is invalid; use a whole number of milliseconds > 0")
    return value


OTLP_ENVIRONMENT_VARIABLES: tuple[str, ...] = tuple(
    f"OTEL_EXPORTER_OTLP_{scope}{what}"
    for what in ("ENDPOINT", "HEADERS", "COMPRESSION", "TIMEOUT", "PROTOCOL")
    for scope in ("", "TRACES_")
)


# ---------------------------------------------------------------- batch processor


@dataclass(frozen=True, slots=True)
class BatchOptions:
    """The batch span processor's limits and deadlines."""

    max_queue_size: int
    max_export_batch_size: int
    schedule_delay_millis: int
    export_timeout_millis: int
    shutdown_timeout_millis: int


def _parse_positive(name: str, raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number; use one > 0") from None
    return _check_positive(name, value)


def _check_positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name}={value!r} is invalid; use a whole number > 0")
    return value


_BATCH_SOURCES: dict[str, tuple[tuple[str, ...], int]] = {
    # option: (environment variables, first found wins: OpenTelemetry's, then Keryx's)
    "max_queue_size": (("OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_SPAN_QUEUE_SIZE"), 2048),
    "max_export_batch_size": (
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_SPAN_BATCH_SIZE"),
        512,
    ),
    "schedule_delay_millis": (("OTEL_BSP_SCHEDULE_DELAY", "OTEL_SPAN_EXPORT_DELAY_MS"), 5000),
    "export_timeout_millis": (("OTEL_BSP_EXPORT_TIMEOUT",), 30000),
    "shutdown_timeout_millis": (("OTEL_SPAN_SHUTDOWN_TIMEOUT_MS",), 30000),
}
BATCH_ENVIRONMENT_VARIABLES: tuple[str, ...] = tuple(
    name for names, _ in _BATCH_SOURCES.values() for name in names
)


def batch_options(
    environ: Mapping[str, str] | None = None, **arguments: int | None
) -> BatchOptions:
    """Resolve the batch processor's options: argument, then environment, then default
    (queue 2048, batch 512, delay 5000 ms, export and shutdown timeouts 30000 ms).
    Raises :class:`ConfigError` naming the culprit, also when the batch size exceeds
    the queue size."""
    env = os.environ if environ is None else environ
    unknown = set(arguments) - set(_BATCH_SOURCES)
    if unknown:
        raise TypeError(f"unknown batch options {sorted(unknown)}")
    values = {
        option: _pick(
            arguments.get(option), _check_positive, option, env, names, _parse_positive, default
        )
        for option, (names, default) in _BATCH_SOURCES.items()
    }
    if values["max_export_batch_size"] > values["max_queue_size"]:
        raise ConfigError(
            f"the export batch size ({values['max_export_batch_size']}) must not exceed the "
            f"queue size ({values['max_queue_size']}); see OTEL_BSP_MAX_EXPORT_BATCH_SIZE "
            "and OTEL_BSP_MAX_QUEUE_SIZE"
        )
    return BatchOptions(**values)


def install_from_environment() -> None:
    """Install the exporters ``OTEL_TRACES_EXPORTER`` names (called once, at the end
    of ``import spanline``); a problem is logged, never raised into the import."""
    try:
        _install_exporters(settings.exporters, settings.store)
    except (ConfigError, ValueError) as error:
        logger.log(logging.WARNING, "spanline: %s; no exporter installed", error)
