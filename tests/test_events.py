from __future__ import annotations

import logging
import threading

import pytest

import spanline
from spanline import StatusCode
from spanline.testing import Capture


def test_publish_runs_handlers_in_handler_frames_of_the_same_trace(
    spanline_capture: Capture,
) -> None:
    seen: dict[str, object] = {}

    @spanline.handler("order.placed")
    def send_receipt(event: spanline.Event) -> None:
        seen["trace_id"] = spanline.trace_id()
        seen["current"] = spanline.current_id()
        seen["frames"] = [f["type"] for f in spanline.frames()]
        seen["payload"] = event.payload

    class PlaceOrder(spanline.Operation):
        def perform(self) -> spanline.Event:
            return spanline.publish("order.placed", {"order_id": 7})

    with spanline.start_trace(actor={"type": "user", "id": 42}) as trace_id:
        event = PlaceOrder().call()
    place = spanline_capture.find("PlaceOrder")
    assert event.id.startswith("ev_")
    assert event.metadata["trace_id"] == trace_id
    assert event.metadata["actor"] == {"type": "user", "id": "42"}
    assert event.metadata["caused_by"] == place.id
    assert seen["trace_id"] == trace_id
    assert isinstance(seen["current"], str)
    assert seen["current"].startswith("hd_")
    assert seen["frames"] == ["actor", "operation", "handler"]
    assert seen["payload"] == {"order_id": 7}
    handler_span = spanline_capture.find("send_receipt")
    assert handler_span.type == "handler"
    assert handler_span.parent is place
    assert handler_span.attributes["spanline.event.id"] == event.id
    assert place.events[0].name == "order.placed"
    assert place.events[0].attributes == {"spanline.event.id": event.id}


def test_failing_handler_is_contained_and_counted(
    spanline_capture: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    @spanline.handler("user.signed_up", name="crm.Sync")
    def broken(event: spanline.Event) -> None:
        calls.append("broken")
        raise ConnectionError("crm is down")

    @spanline.handler("user.signed_up")
    def welcome(event: spanline.Event) -> None:
        calls.append("welcome")

    with caplog.at_level(logging.ERROR, logger="spanline"):
        spanline.publish("user.signed_up", {"id": 1})
        spanline.publish("user.signed_up", {"id": 2})
    assert calls == ["broken", "welcome", "broken", "welcome"]
    failed = spanline_capture.find("crm.Sync")
    assert failed.status == StatusCode.ERROR
    assert failed.events[0].attributes["exception.message"] == "crm is down"
    assert spanline.tracer.stats()["handler_errors"] == 2
    logged = [r for r in caplog.records if "broken" in r.getMessage()]
    assert len(logged) == 1  # rate-limited: logged once


def test_publish_outside_a_trace_starts_one(spanline_capture: Capture) -> None:
    traces: list[str | None] = []

    @spanline.handler("ping")
    def one(event: spanline.Event) -> None:
        traces.append(spanline.trace_id())

    @spanline.handler("ping")
    def two(event: spanline.Event) -> None:
        traces.append(spanline.trace_id())

    event = spanline.publish("ping")
    assert traces[0] is not None
    assert traces == [event.metadata["trace_id"]] * 2


def test_deliver_later_in_another_thread_continues_the_trace(spanline_capture: Capture) -> None:
    got: dict[str, object] = {}

    @spanline.handler("invoice.due")
    def remind(event: spanline.Event) -> None:
        got["trace"] = spanline.trace_id()
        got["chain"] = spanline.trace_string()

    with spanline.start_trace(actor={"type": "system", "name": "billing"}) as trace_id:
        event = spanline.publish("invoice.due", {"invoice": 3}, deliver=False)
    assert got == {}
    worker = threading.Thread(target=spanline.deliver, args=(event,))
    worker.start()
    worker.join()
    assert got["trace"] == trace_id
    assert isinstance(got["chain"], str)
    assert got["chain"].startswith("system:billing > remind(hd_")


def test_handler_registration_rules() -> None:
    with pytest.raises(ValueError, match="non-empty string"):
        spanline.handler("")
    with pytest.raises(TypeError, match="is async"):

        @spanline.handler("x")
        async def nope(event: spanline.Event) -> None: ...

    with pytest.raises(ValueError, match="non-empty string"):
        spanline.publish("")


def test_unsubscribe(spanline_capture: Capture) -> None:
    calls: list[int] = []

    @spanline.handler("tick")
    def on_tick(event: spanline.Event) -> None:
        calls.append(1)

    spanline.publish("tick")
    spanline.unsubscribe("tick", on_tick)
    spanline.unsubscribe("tick", on_tick)  # no error the second time
    spanline.publish("tick")
    assert calls == [1]
