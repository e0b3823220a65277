"""A job: what a queue carries so a worker can run an operation later, elsewhere.

The job is a small JSON object::

    {"v": 1,
     "operation": "shop.orders:SendConfirmation",   # module:QualName of the class
     "params": {"order_id": 1},                      # the constructor's keyword arguments
     "trace": {...},                                 # spanline.dump(): trace id, actor, frames
     "sig": "…"}                                     # only with payload_secret (HMAC-SHA256)

:func:`build` makes one from an operation instance, refusing params that JSON cannot
carry unchanged; :func:`parse` checks one that came off a queue -- shape, sizes,
signature -- and resolves the class, which must be an
:class:`~spanline.core.operation.Operation` subclass.  Nothing but the import of the
named module runs before those checks pass.
"""

from __future__ import annotations

import hmac
import importlib
import inspect
import logging
import math
import re
import sys
from collections.abc import Mapping
from typing import Any

from spanline._log import report
from spanline.core import config
from spanline.core.carrier import dump
from spanline.core.operation import Operation
from spanline.core.payload import read_mapping, signature

__all__ = [
    "MAX_JOB_BYTES",
    "VERSION",
    "InvalidJobError",
    "Job",
    "build",
    "operation_path",
    "parse",
    "resolve",
]

VERSION = 1
MAX_JOB_BYTES = 1024 * 1024
MAX_PATH = 256
MAX_DEPTH = 64
MAX_NODES = 100_000
_MAX_INT_BITS = 4096  # json.loads refuses integers over 4,300 digits
_KEYS = frozenset({"v", "operation", "params", "trace", "sig"})
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_PATH = re.compile(rf"{_NAME}(?:\.{_NAME})*:{_NAME}(?:\.{_NAME})*")  # fullmatch
_SCALARS = (str, int, bool, type(None))
_ACCEPTED = "str, int, float, bool, None, lists, and dicts with string keys"

Job = dict[str, Any]
"""A job payload: a JSON-safe dict (see the module docstring)."""


class InvalidJobError(ValueError):
    """A job payload cannot be run; the message names what is wrong with it."""


# -- enqueueing -------------------------------------------------------------------


def operation_path(cls: type[Operation]) -> str:
    """``module:QualName`` of an operation class, checked to lead back to ``cls``.

    Raises ``ValueError`` for a class a worker could not import: one defined in
    ``__main__``, inside a function, or not reachable under its own name.
    """
    module, qualname = cls.__module__, cls.__qualname__
    path = f"{module}:{qualname}"
    if module == "__main__":
        raise ValueError(
            f"{qualname} is defined in __main__, which a worker cannot import; "
            "move it into an importable module"
        )
    if "<locals>" in qualname:
        raise ValueError(
            f"{qualname} is defined inside a function, so a worker cannot import it; "
            "define it at module level"
        )
    target: object = sys.modules.get(module)
    for part in qualname.split("."):
        target = getattr(target, part, None)
    if target is not cls or not _PATH.fullmatch(path) or len(path) > MAX_PATH:
        raise ValueError(f"{path} does not name {qualname} importably (is it re-bound?)")
    return path


def _check_value(value: object, where: str, depth: int, budget: list[int]) -> None:
    """Raise ``TypeError`` naming ``where`` unless ``value`` survives a JSON round trip
    unchanged (exact JSON types, finite floats, string keys, bounded size)."""
    budget[0] -= 1
    if budget[0] < 0:
        raise TypeError(f"{where}: the params hold more than {MAX_NODES} values")
    kind = type(value)
    if kind in _SCALARS:
        if isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
            raise TypeError(f"{where} is an integer too large for JSON")
        return
    if isinstance(value, float) and kind is float:
        if not math.isfinite(value):
            raise TypeError(f"{where} is {value!r}, which JSON cannot carry")
        return
    if depth >= MAX_DEPTH:
        raise TypeError(f"{where} nests deeper than {MAX_DEPTH} levels (or refers to itself)")
    if isinstance(value, list) and kind is list:
        for i, item in enumerate(value):
            _check_value(item, f"{where}[{i}]", depth + 1, budget)
        return
    if isinstance(value, dict) and kind is dict:
        for key, entry in value.items():
            if type(key) is not str:
                raise TypeError(f"{where} has the key {key!r}; JSON keys are strings")
            _check_value(entry, f"{where}[{key!r}]", depth + 1, budget)
        return
    raise TypeError(
        f"{where} is a {kind.__qualname__}, which a job cannot carry unchanged; "
        f"pass {_ACCEPTED} (convert it first, e.g. a date to its isoformat())"
    )


def _check_params(owner: str, params: Mapping[str, object]) -> None:
    """Raise ``TypeError`` naming the first param of ``owner`` that is not JSON-safe."""
    budget = [MAX_NODES]
    for name, value in params.items():
        _check_value(value, f"{owner} param {name!r}", 0, budget)


def _signature(job: Mapping[str, Any], secret: str) -> str:
    # a domain prefix: a job signature never validates a trace payload, or the reverse
    return signature(job, secret, b"spanline.job\n")


def build(operation: Operation) -> Job:
    """The job that runs ``operation`` (its class and constructor params) in the
    current trace's continuation.  Raises ``TypeError`` naming a param JSON cannot
    carry, ``ValueError`` for a class a worker could not import."""
    cls = type(operation)
    path = operation_path(cls)
    params = dict(operation.params)
    _check_params(cls.__qualname__, params)
    try:
        trace = dump()
    except Exception as error:  # noqa: BLE001 - tracing never breaks the app
        report("jobs-dump", "spanline.jobs: could not capture the trace: %r", error, exc_info=error)
        trace = None
    job: Job = {"v": VERSION, "operation": path, "params": params, "trace": trace}
    secret = config.settings.payload_secret
    if secret:
        job["sig"] = _signature(job, secret)
    return job


# -- running ----------------------------------------------------------------------


def _load(data: object) -> Mapping[str, Any]:
    data = read_mapping(data, what="job", limit=MAX_JOB_BYTES, error=InvalidJobError)
    unknown = set(data) - _KEYS
    if unknown:
        raise InvalidJobError(f"job has unknown keys {sorted(map(str, unknown))}")
    if data.get("v") != VERSION:
        raise InvalidJobError(f"unsupported job version {data.get('v')!r} (expected {VERSION})")
    return data


def _verify(data: Mapping[str, Any]) -> None:
    secret = config.settings.payload_secret
    if not secret:
        return
    sig = data.get("sig")
    try:
        expected = _signature(data, secret)
    except (TypeError, ValueError, RecursionError):
        raise InvalidJobError("job holds values that cannot be signed") from None
    if not isinstance(sig, str) or not hmac.compare_digest(sig, expected):
        raise InvalidJobError("job signature is missing or does not match (payload_secret)")


def _params(cls: type[Operation], raw: object) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidJobError(f"params must be a dict, got {type(raw).__name__}")
    for name in raw:
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
            raise InvalidJobError(f"param name {name!r} is not a public identifier")
        member = inspect.getattr_static(cls, name, None)
        if callable(member) or inspect.isdatadescriptor(member):
            raise InvalidJobError(
                f"param {name!r} would replace {cls.__qualname__}.{name} (a method or property)"
            )
    try:
        _check_params(cls.__qualname__, raw)
    except TypeError as error:
        raise InvalidJobError(str(error)) from None
    return raw


def resolve(path: object) -> type[Operation]:
    """The :class:`Operation` subclass ``module:QualName`` names.

    Only the named module is imported (running its top-level code, as any import
    does); every step of the qualified name must be a class, and the last one an
    ``Operation`` subclass, or :class:`InvalidJobError` is raised.
    """
    if not isinstance(path, str) or len(path) > MAX_PATH or not _PATH.fullmatch(path):
        raise InvalidJobError(
            f"operation must be 'module:QualName' (at most {MAX_PATH} characters), got {path!r:.80}"
        )
    module_name, qualname = path.split(":")
    parts = qualname.split(".")
    if any(p.startswith("__") for p in (*module_name.split("."), *parts)):
        raise InvalidJobError(f"operation {path!r} names a dunder attribute")
    try:
        target: object = importlib.import_module(module_name)
    except Exception as error:  # any import failure is this job's problem
        raise InvalidJobError(
            f"cannot import module {module_name!r} for operation {path!r}: "
            f"{type(error).__name__}: {error}"
        ) from error
    for part in parts:
        target = inspect.getattr_static(target, part, None)
        if not isinstance(target, type):
            raise InvalidJobError(f"operation {path!r}: {part!r} is not a class")
    if not isinstance(target, type) or not issubclass(target, Operation) or target is Operation:
        raise InvalidJobError(
            f"operation {path!r} is not a spanline.Operation subclass; only those run as jobs"
        )
    return target


def parse(data: object) -> tuple[type[Operation], dict[str, Any], object]:
    """``(operation class, params, trace payload)`` of a job off the queue; raises
    :class:`InvalidJobError` saying what is wrong.  The signature (with
    ``payload_secret``) is checked before anything is imported."""
    job = _load(data)
    _verify(job)
    if "operation" not in job or "params" not in job:
        raise InvalidJobError("job must have 'operation' and 'params'")
    cls = resolve(job["operation"])
    params = _params(cls, job["params"])
    trace = job.get("trace")
    if trace is not None and not isinstance(trace, Mapping):
        report(
            "jobs-trace",
            "spanline.jobs: the job's trace is a %s, not a mapping; starting a fresh trace",
            type(trace).__name__,
            level=logging.WARNING,
        )
        trace = None
    return cls, dict(params), trace
