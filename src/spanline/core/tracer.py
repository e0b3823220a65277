"""``spanline.tracer``: the Wanderland-style view of what has been traced.

It owns no state of its own: completed trees and processors live in the pipeline,
the current span in the context.  It is a facade so that the familiar questions
(``completed``, ``last_completed``, ``active``, ``current_address``) have one home.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from spanline import _log
from spanline.core.context import current
from spanline.core.pipeline import PIPELINE, SpanProcessor
from spanline.core.span import Span

__all__ = ["Tracer", "stats", "tracer"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class Tracer:
    """Completed span trees, the active span stack and processor registration."""

    __slots__ = ()

    @property
    def completed(self) -> list[Span]:
        """The retained completed root spans, oldest first (a copy)."""
        return list(PIPELINE.ring)

    @property
    def last_completed(self) -> Span | None:
        """The most recently completed root span, or ``None``."""
        ring = PIPELINE.ring
        try:
            return ring[-1]
        except IndexError:
            return None

    @property
    def active(self) -> bool:
        """True when a span is open in the current context."""
        return self.current_span is not None

    @property
    def current_span(self) -> Span | None:
        """The innermost open, recording span in this context, or ``None``."""
        node = current.get()
        while node is not None:
            if type(node) is Span and node._trace.recorded:
                return node
            node = node._parent
        return None

    @property
    def current_address(self) -> str:
        """The names of the open spans, outermost first: ``"parent/child/grandchild"``."""
        names: list[str] = []
        node = current.get()
        while node is not None:
            if type(node) is Span and node._trace.recorded:
                names.append(node.name)
            node = node._parent
        return "/".join(reversed(names))

    def add_processor(self, processor: SpanProcessor) -> None:
        """Register a span processor (see :class:`spanline.SpanProcessor`)."""
        PIPELINE.add(processor)

    def remove_processor(self, processor: SpanProcessor) -> None:
        """Unregister a span processor."""
        PIPELINE.remove(processor)

    def stats(self) -> dict[str, int]:
        """Counters: processor and handler errors, rejected payloads, retained trees."""
        return PIPELINE.stats()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Ask every processor to deliver what it buffers."""
        return PIPELINE.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Flush and shut every processor down."""
        PIPELINE.force_flush()
        PIPELINE.shutdown()

    def reset(self) -> None:
        """Forget completed trees and counters (for tests; processors stay)."""
        PIPELINE.clear()
        _log.reset()

    def write(self, output_dir: str | Path, span: Span | None = None) -> Path | None:
        """Write a tree (default: the last completed) as pretty JSON named after its trace
        id; returns the file's path, or ``None`` when there is nothing to write."""
        root = span if span is not None else self.last_completed
        if root is None:
            return None
        directory = Path(output_dir)
        directory.mkdir(parents=True, exist_ok=True)
        name = _UNSAFE.sub("_", root.trace_id or "trace")
        path = directory / f"{name}.json"
        try:
            text = json.dumps(root.to_dict(), indent=2, ensure_ascii=False)
        except RecursionError:
            raise ValueError(
                f"the tree of {root.trace_id} is nested too deeply to write as JSON; "
                "export its spans flat instead (spanline.export.JsonLinesExporter)"
            ) from None
        path.write_text(text + "\n", encoding="utf-8")
        return path


tracer = Tracer()
"""The process-wide tracer facade."""


def stats() -> dict[str, object]:
    """Everything spanline counts, in one JSON-ready dict.

    ``pipeline``: processor and handler errors, rejected job payloads, retained trees.
    ``processors``: for each registered processor that keeps counters (the batch
    processor: spans started, ended, exported, failed, timed out and dropped, queue
    depth, export latency, plus its exporter's counters), keyed ``Type#n``.
    """
    processors: dict[str, object] = {}
    for index, processor in enumerate(PIPELINE.processors):
        counters = getattr(processor, "stats", None)
        if callable(counters):
            try:
                processors[f"{type(processor).__name__}#{index}"] = counters()
            except Exception as error:  # noqa: BLE001 - reporting must not fail
                processors[f"{type(processor).__name__}#{index}"] = {"error": repr(error)}
    return {"pipeline": PIPELINE.stats(), "processors": processors}
