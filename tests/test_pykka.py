"""The pykka integration with real pykka actors on real threads (no mocks)."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

import spanline
from spanline import SpanKind, StatusCode
from spanline.integrations import pykka as pykka_integration
from spanline.testing import Capture


class PlaceOrder:
    def __init__(self, product: str) -> None:
        self.product = product


class Hold:
    """Keeps the actor busy until ``release`` is set (to fill its mailbox)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()


class Orders(pykka.ThreadingActor):
    def __init__(
        self, shipping: pykka.ActorRef[Any] | None = None, log: list[object] | None = None
    ) -> None:
        super().__init__()
        self.shipping = shipping
        self.received: list[object] = [] if log is None else log
        self.count = 0

    def on_receive(self, message: Any) -> Any:
        self.received.append(message)
        if isinstance(message, Hold):
            message.started.set()
            assert message.release.wait(10)
            return None
        if isinstance(message, PlaceOrder):
            if message.product == "unobtainium":
                raise LookupError("out of stock")
            with spanline.span("reserve"):
                pass
            if self.shipping is not None:
                self.shipping.tell(PlaceOrder(message.product))
            return f"ordered {message.product}"
        return None

    def load(self, order_id: int) -> dict[str, int]:
        with spanline.span("load"):
            return {"id": order_id}

    def fail(self) -> None:
        raise RuntimeError("proxy call failed")


@pytest.fixture
def traced(spanline_capture: Capture) -> Iterator[Capture]:
    """pykka instrumented; every actor stopped (its messages handled) before the
    capture is checked and reset."""
    spanline.instrument("pykka")
    try:
        yield spanline_capture
    finally:
        pykka.ActorRegistry.stop_all()
        spanline.uninstrument("pykka")


def _spans(capture: Capture, name: str) -> list[spanline.Span]:
    return [s for s in capture.spans if s.name == name]


def test_the_private_hook_is_still_there() -> None:
    # spanline wraps Actor._handle_receive (see the module docstring). If pykka renames
    # it or changes how it is called, this test is the alarm.
    hook = pykka.Actor.__dict__.get("_handle_receive")
    assert callable(hook), "pykka.Actor._handle_receive is gone: update the integration"
    assert list(inspect.signature(hook).parameters) == ["self", "message"]
    assert list(inspect.signature(pykka.ActorRef.tell).parameters) == ["self", "message"]
    ask = inspect.signature(pykka.ActorRef.ask).parameters
    assert list(ask) == ["self", "message", "block", "timeout"]
    assert ask["block"].kind is inspect.Parameter.KEYWORD_ONLY


def test_tell_ask_and_proxy_calls_in_one_tree(traced: Capture) -> None:
    log: list[object] = []
    ref = Orders.start(log=log)
    proxy = ref.proxy()
    with spanline.start_trace(actor={"type": "user", "id": 1}):
        with spanline.span("checkout"):
            assert ref.ask(PlaceOrder("book")) == "ordered book"
            assert proxy.load(7).get() == {"id": 7}
            proxy.count = 3  # ProxySetAttr, blocking
            assert proxy.count.get() == 3  # ProxyGetAttr
            ref.tell(PlaceOrder("pen"))
    ref.stop()
    traced.assert_outline(
        """
        checkout
          send PlaceOrder
            process PlaceOrder
              reserve
          send load
            process load
              load
          send count
            process count
          send count
            process count
          send PlaceOrder
            process PlaceOrder
              reserve
        """
    )
    process = _spans(traced, "process PlaceOrder")[0]
    send = process.parent
    assert send is not None
    assert send.kind == SpanKind.PRODUCER
    assert process.kind == SpanKind.CONSUMER
    assert process.attributes == {
        "messaging.system": "pykka",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": "Orders",
        "spanline.messaging.message.type": "PlaceOrder",
        "spanline.messaging.actor.path": f"Orders ({ref.actor_urn})",
        "spanline.messaging.mailbox.depth": 0,
    }
    assert send.attributes["messaging.destination.name"] == "Orders"
    assert process.actor == {"type": "user", "id": "1"}
    assert all(s.trace_id == process.trace_id for s in traced.spans)
    # the actor got its messages exactly as sent
    assert [type(m).__name__ for m in log] == ["PlaceOrder", "PlaceOrder"]


def test_messages_between_actors_stay_in_the_trace(traced: Capture) -> None:
    shipping = Orders.start()
    orders = Orders.start(shipping=shipping)
    with spanline.span("request"):
        orders.ask(PlaceOrder("book"))
    orders.stop()
    shipping.stop()
    traced.assert_outline(
        """
        request
          send PlaceOrder
            process PlaceOrder
              reserve
              send PlaceOrder
                process PlaceOrder
                  reserve
        """
    )
    first, second = sorted(_spans(traced, "process PlaceOrder"), key=lambda s: s.start_ns)
    assert first.attributes["spanline.messaging.actor.path"] == f"Orders ({orders.actor_urn})"
    assert second.attributes["spanline.messaging.actor.path"] == f"Orders ({shipping.actor_urn})"


def test_mailbox_depth_at_dequeue(traced: Capture) -> None:
    ref = Orders.start()
    hold = Hold()
    ref.tell(hold)
    assert hold.started.wait(10)  # the actor is busy: what follows waits in its mailbox
    for product in ("a", "b", "c"):
        ref.tell(PlaceOrder(product))
    stopped = ref.stop(block=False)  # the stop message waits behind them
    hold.release.set()
    assert stopped.get(timeout=10) is True
    depths = [
        s.attributes["spanline.messaging.mailbox.depth"]
        for s in sorted(_spans(traced, "process PlaceOrder"), key=lambda s: s.start_ns)
    ]
    assert depths == [3, 2, 1]
    assert _spans(traced, "process Hold")[0].attributes["spanline.messaging.mailbox.depth"] == 0


def test_handler_exceptions_reach_the_caller_unchanged(traced: Capture) -> None:
    ref = Orders.start()
    with spanline.span("request"):
        with pytest.raises(LookupError, match="out of stock"):
            ref.ask(PlaceOrder("unobtainium"))
        with pytest.raises(RuntimeError, match="proxy call failed"):
            ref.proxy().fail().get()
        assert ref.ask(PlaceOrder("book")) == "ordered book"  # the actor lives on
    ref.stop()
    failed = _spans(traced, "process PlaceOrder")[0]
    assert failed.status == StatusCode.ERROR
    assert failed.status_message == "LookupError: out of stock"
    assert failed.events[0].attributes["exception.type"] == "LookupError"
    (call,) = _spans(traced, "process fail")
    assert call.status == StatusCode.ERROR
    assert _spans(traced, "process PlaceOrder")[1].status == StatusCode.UNSET


def test_messages_outside_a_trace_and_from_before_instrumenting(
    spanline_capture: Capture,
) -> None:
    ref = Orders.start()
    hold = Hold()
    try:
        ref.tell(hold)
        assert hold.started.wait(10)
        ref.tell(PlaceOrder("early"))  # sent untraced, handled traced
        spanline.instrument("pykka")
        ref.tell(PlaceOrder("late"))  # sent outside any trace
        hold.release.set()
        ref.stop()
    finally:
        hold.release.set()
        pykka.ActorRegistry.stop_all()
        spanline.uninstrument("pykka")
    spanline_capture.assert_outline(
        """
        send PlaceOrder
          process PlaceOrder
            reserve
        process PlaceOrder
          reserve
        """
    )
    early, late = sorted(_spans(spanline_capture, "process PlaceOrder"), key=lambda s: s.start_ns)
    assert early.parent_span_id == 0  # a trace of its own
    assert late.parent is spanline_capture.find("send PlaceOrder")


def test_stop_is_not_a_message_span(traced: Capture) -> None:
    ref = Orders.start()
    assert ref.stop() is True
    assert traced.spans == []
    with pytest.raises(pykka.ActorDeadError):
        ref.tell(PlaceOrder("too late"))
    (send,) = traced.spans
    assert send.name == "send PlaceOrder"
    assert send.status == StatusCode.ERROR


def test_install_twice_is_harmless_and_uninstall_restores_everything(
    spanline_capture: Capture,
) -> None:
    originals = (pykka.ActorRef.tell, pykka.ActorRef.ask, pykka.Actor.__dict__["_handle_receive"])
    spanline.instrument("pykka")
    pykka_integration.install()  # directly, past the registry's guard
    tell = pykka.ActorRef.tell
    pykka_integration.install()
    assert pykka.ActorRef.tell is tell
    log: list[object] = []
    ref = Orders.start(log=log)
    hold = Hold()
    try:
        ref.ask(PlaceOrder("once"))
        assert spanline_capture.names() == ["send PlaceOrder", "reserve", "process PlaceOrder"]
        ref.tell(hold)
        assert hold.started.wait(10)
        ref.tell(PlaceOrder("in flight"))  # queued while instrumented...
        spanline.uninstrument("pykka")
        assert (
            pykka.ActorRef.tell,
            pykka.ActorRef.ask,
            pykka.Actor.__dict__["_handle_receive"],
        ) == originals
        hold.release.set()  # ...handled after: still delivered as sent, without a span
        ref.stop()
    finally:
        hold.release.set()
        pykka.ActorRegistry.stop_all()
        spanline.uninstrument("pykka")
    assert [getattr(m, "product", None) for m in log] == ["once", None, "in flight"]
    assert spanline_capture.names() == [
        "send PlaceOrder",
        "reserve",
        "process PlaceOrder",
        "send Hold",
        "send PlaceOrder",
        "process Hold",  # started while instrumented
        "reserve",  # "in flight": handled, but no process span any more
    ]
