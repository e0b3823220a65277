"""Head sampling: whether a new trace's spans are recorded.

The decision is taken once, when a trace starts (a root span or operation,
``start_trace``, ``restore``), and holds for the whole trace in this process.  An
unsampled trace still has its ids, actor and frames -- the audit chain never turns
off -- but none of its spans are kept or exported.

* :class:`AlwaysOn`, :class:`AlwaysOff`;
* :class:`TraceIdRatio` -- keeps a trace when the low 64 bits of its W3C trace id are
  below ``ratio * 2**64``: the same rule as the OpenTelemetry SDKs, so every service
  (spanline or not) agrees on the same trace;
* :class:`ParentBased` -- follows the caller's ``sampled`` flag when the trace was
  continued from elsewhere, and asks its ``root`` sampler otherwise.

``OTEL_TRACES_SAMPLER``/``OTEL_TRACES_SAMPLER_ARG`` name them as ``always_on``,
``always_off``, ``traceidratio``, ``parentbased_always_on`` (the default),
``parentbased_always_off`` and ``parentbased_traceidratio``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = [
    "AlwaysOff",
    "AlwaysOn",
    "ParentBased",
    "Sampler",
    "TraceIdRatio",
    "sampler_from_name",
]

_MASK64 = (1 << 64) - 1


@runtime_checkable
class Sampler(Protocol):
    """Decides whether a new trace is recorded (called once per trace, any thread)."""

    def should_sample(self, trace_id: int, parent_sampled: bool | None) -> bool:
        """``trace_id`` is the 128-bit W3C id; ``parent_sampled`` is the remote
        caller's flag, or ``None`` for a trace that starts here."""

    @property
    def records_everything(self) -> bool:
        """True if every new root trace is sampled (lets the hot path skip the call)."""


class AlwaysOn:
    """Record every trace."""

    records_everything = True

    def should_sample(self, trace_id: int, parent_sampled: bool | None) -> bool:
        """Always ``True``."""
        return True

    def __repr__(self) -> str:
        return "AlwaysOn()"


class AlwaysOff:
    """Record no trace (ids, actor and frames still work)."""

    records_everything = False

    def should_sample(self, trace_id: int, parent_sampled: bool | None) -> bool:
        """Always ``False``."""
        return False

    def __repr__(self) -> str:
        return "AlwaysOff()"


class TraceIdRatio:
    """Record the fraction ``ratio`` of traces, decided on the trace id alone."""

    def __init__(self, ratio: float) -> None:
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
            raise ValueError(f"the sampling ratio must be a number from 0 to 1, got {ratio!r}")
        self.ratio = float(ratio)
        self.bound = round(self.ratio * (1 << 64))

    @property
    def records_everything(self) -> bool:
        """True only for a ratio of 1."""
        return self.bound >= 1 << 64

    def should_sample(self, trace_id: int, parent_sampled: bool | None) -> bool:
        """Keep the trace when its id's low 64 bits fall below the bound."""
        return (trace_id & _MASK64) < self.bound

    def __repr__(self) -> str:
        return f"TraceIdRatio({self.ratio})"


class ParentBased:
    """Follow a remote caller's decision; ask ``root`` for traces that start here."""

    def __init__(self, root: Sampler) -> None:
        self.root = root

    @property
    def records_everything(self) -> bool:
        """As the root sampler (a continued trace is decided where it is restored)."""
        return self.root.records_everything

    def should_sample(self, trace_id: int, parent_sampled: bool | None) -> bool:
        """The caller's flag if there is one, else the root sampler's decision."""
        if parent_sampled is not None:
            return parent_sampled
        return self.root.should_sample(trace_id, None)

    def __repr__(self) -> str:
        return f"ParentBased({self.root!r})"


SAMPLER_NAMES = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)


def sampler_from_name(name: str, ratio: float = 1.0) -> Sampler:
    """The sampler an ``OTEL_TRACES_SAMPLER`` value names; ``ValueError`` if unknown."""
    base = name.removeprefix("parentbased_")
    root: Sampler
    if base == "always_on":
        root = AlwaysOn()
    elif base == "always_off":
        root = AlwaysOff()
    elif base == "traceidratio":
        root = TraceIdRatio(ratio)
    else:
        raise ValueError(f"unknown sampler {name!r}; use one of {', '.join(SAMPLER_NAMES)}")
    return ParentBased(root) if name.startswith("parentbased_") else root
