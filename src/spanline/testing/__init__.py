"""spanline's testing kit: capture spans in memory, make ids and time deterministic,
and compare whole trees.

With spanline installed, pytest gets the ``spanline_capture`` fixture automatically
(a ``pytest11`` entry point)::

    def test_place_order(spanline_capture):
        PlaceOrder(product="book").call()
        spanline_capture.assert_outline('''
            PlaceOrder
              Validate
        ''')

Outside pytest, use :class:`Capture` directly (it is a span processor) together with
:func:`reset_all`, :class:`SequentialIds` and :class:`FakeClock`.
"""

from __future__ import annotations

from spanline.testing.capture import Capture
from spanline.testing.determinism import FakeClock, SequentialIds, reset_all

__all__ = ["Capture", "FakeClock", "SequentialIds", "reset_all"]
