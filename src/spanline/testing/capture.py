"""An in-memory span processor for tests, with tree assertions."""

from __future__ import annotations

import textwrap
import threading

from spanline.core import clock, ids
from spanline.core.render import outline
from spanline.core.span import Span
from spanline.testing.determinism import FakeClock, SequentialIds

__all__ = ["Capture"]


class Capture:
    """Collects every finished span (thread-safe), in the order they ended."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[Span] = []
        self.started = 0

    # -- the processor interface --

    def on_start(self, span: Span) -> None:
        """Count starts (to tell open spans from lost ones)."""
        with self._lock:
            self.started += 1

    def on_end(self, span: Span) -> None:
        """Keep the finished span."""
        with self._lock:
            self._spans.append(span)

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered."""
        return True

    # -- reading --

    @property
    def spans(self) -> list[Span]:
        """Finished spans in end order (a copy)."""
        with self._lock:
            return list(self._spans)

    @property
    def roots(self) -> list[Span]:
        """Finished local roots (spans without a parent in this process), in start order."""
        return sorted((s for s in self.spans if s.parent is None), key=lambda s: s.start_ns)

    def names(self) -> list[str]:
        """Names of the finished spans, in end order."""
        return [s.name for s in self.spans]

    def find(self, name: str) -> Span:
        """The first finished span called ``name``; ``LookupError`` if there is none."""
        for span in self.spans:
            if span.name == name:
                return span
        raise LookupError(f"no finished span named {name!r}; have {self.names()}")

    def outline(self) -> str:
        """Every root's tree as indented names (two spaces per level)."""
        return "\n".join(outline(root) for root in self.roots)

    def assert_outline(self, expected: str) -> None:
        """Assert the captured trees equal ``expected`` (indentation is dedented)."""
        want = textwrap.dedent(expected).strip("\n")
        got = self.outline()
        if got != want:
            raise AssertionError(f"span trees differ\n--- expected\n{want}\n--- got\n{got}")

    def clear(self) -> None:
        """Forget captured spans."""
        with self._lock:
            self._spans.clear()
            self.started = 0

    # -- determinism --

    def deterministic(
        self, *, start_id: int = 1, clock_start_ns: int | None = None, step_ns: int = 1_000_000
    ) -> FakeClock:
        """Make ids sequential and time a :class:`FakeClock`; returns the clock."""
        fake = (
            FakeClock(step_ns=step_ns)
            if clock_start_ns is None
            else FakeClock(clock_start_ns, step_ns)
        )
        ids.set_random_source(SequentialIds(start_id))
        clock.set_clock(fake)
        return fake
