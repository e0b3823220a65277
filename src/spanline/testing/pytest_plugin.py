"""The pytest plugin (registered through the ``pytest11`` entry point).

``spanline_capture`` resets spanline, captures every finished span of the test, and
afterwards fails the test if it left a span open in its context, then resets again
(processors, settings, counters, ids, clock and the handler registry).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from spanline.core.context import current
from spanline.core.events import load_registry, save_registry
from spanline.core.pipeline import PIPELINE
from spanline.testing.capture import Capture
from spanline.testing.determinism import reset_all

__all__ = ["spanline_capture"]


@pytest.fixture
def spanline_capture() -> Iterator[Capture]:
    """Capture the spans of one test in memory, with spanline reset around it."""
    saved = save_registry()
    reset_all()
    capture = Capture()
    PIPELINE.add(capture)
    try:
        yield capture
        leaked = current.get()
        if leaked is not None:
            pytest.fail(f"the test left {leaked!r} open in its context", pytrace=False)
    finally:
        current.set(None)
        reset_all()
        load_registry(saved)
