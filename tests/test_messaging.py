"""spanline.messaging: envelopes, send/process spans, hostile metadata, and the traced
asyncio queue with real threads and real asyncio tasks (no mocks)."""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from typing import Any

import pytest

import spanline
from spanline import SpanKind, StatusCode, messaging
from spanline.messaging import Envelope, TracedQueue
from spanline.messaging.envelope import origin_of
from spanline.propagation import continue_trace
from spanline.testing import Capture

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


class PlaceOrder:
    def __init__(self, product: str) -> None:
        self.product = product


def in_thread(fn: Callable[[], object]) -> None:
    """Run ``fn`` in a real thread with a fresh context (as an actor thread would)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as error:
            errors.append(error)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(10)
    assert not worker.is_alive()
    if errors:
        raise errors[0]


def test_send_and_process_across_threads_make_one_tree(spanline_capture: Capture) -> None:
    mailbox: list[Envelope[PlaceOrder]] = []
    with spanline.start_trace(actor={"type": "user", "id": 42}):
        with spanline.span("checkout"):
            with messaging.sending(
                PlaceOrder("book"),
                system="nexus",
                destination="orders",
                message_id="m-1",
                correlation_id="c-9",
                metadata={"tenant": "acme"},
            ) as envelope:
                mailbox.append(envelope)

    handled: list[str] = []

    def actor() -> None:
        envelope = mailbox.pop()
        with messaging.processing(
            envelope, system="nexus", actor_path="/app/user/orders", mailbox_depth=3
        ) as span:
            span.set_attribute("order.status", "placed")
            with spanline.span("persist"):
                handled.append(envelope.message.product)

    in_thread(actor)
    assert handled == ["book"]
    spanline_capture.assert_outline(
        """
        checkout
          send PlaceOrder
            process PlaceOrder
              persist
        """
    )
    send = spanline_capture.find("send PlaceOrder")
    process = spanline_capture.find("process PlaceOrder")
    assert send.kind == SpanKind.PRODUCER
    assert process.kind == SpanKind.CONSUMER
    assert send.attributes == {
        "messaging.system": "nexus",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": "orders",
        "messaging.message.id": "m-1",
        "messaging.message.conversation_id": "c-9",
        "spanline.messaging.message.type": "PlaceOrder",
    }
    assert process.attributes == {
        "messaging.system": "nexus",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.message.id": "m-1",
        "messaging.message.conversation_id": "c-9",
        "spanline.messaging.message.type": "PlaceOrder",
        "spanline.messaging.actor.path": "/app/user/orders",
        "spanline.messaging.mailbox.depth": 3,
        "order.status": "placed",
    }
    assert process.parent is send
    assert process.trace_id == send.trace_id
    assert process.actor == {"type": "user", "id": "42"}
    assert envelope.metadata == {
        "tenant": "acme",
        "traceparent": f"00-{send.trace_hex}-{send.span_hex}-03",
        "baggage": "spanline.actor.type=user,spanline.actor.id=42",
    }


CHILD = textwrap.dedent("""
    import json, sys
    from spanline import messaging

    wire = json.loads(sys.stdin.read())
    envelope = messaging.Envelope(wire["message"], wire["metadata"])
    with messaging.processing(envelope, system="nexus") as span:
        print(json.dumps({"trace": span.trace_hex, "parent": span.parent_id,
                          "message": envelope.message}))
""")


def test_metadata_continues_the_trace_in_another_process(spanline_capture: Capture) -> None:
    incoming = {"traceparent": f"00-{TRACE}-{PARENT}-01", "tracestate": "vendor=abc"}
    with continue_trace(incoming), spanline.span("handler"):
        with messaging.sending("ping", system="nexus") as envelope:
            wire = json.dumps({"message": envelope.message, "metadata": envelope.metadata})
    assert envelope.metadata["tracestate"] == "vendor=abc"  # passed on unchanged
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=wire,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    send = spanline_capture.find("send str")
    assert json.loads(done.stdout) == {"trace": TRACE, "parent": send.span_hex, "message": "ping"}
    assert send.trace_hex == TRACE


def _over_the_wire(envelope: Envelope[str]) -> Envelope[str]:
    copy: Envelope[str] = pickle.loads(pickle.dumps(envelope))  # noqa: S301 - our own bytes
    return copy


def test_actor_crosses_processes_only_when_trusted(spanline_capture: Capture) -> None:
    with spanline.start_trace(actor={"type": "user", "id": 7}):
        with messaging.sending("ping", system="nexus") as envelope:
            pass
    for trust in (False, True):
        received = _over_the_wire(envelope)
        with messaging.processing(received, system="nexus", trust_actor=trust) as span:
            assert span.actor == ({"type": "user", "id": "7"} if trust else None)


def test_handler_exception_is_recorded_and_passes_through_unchanged(
    spanline_capture: Capture,
) -> None:
    boom = ValueError("out of stock")
    with messaging.sending(PlaceOrder("book"), system="nexus") as envelope:
        pass
    with pytest.raises(ValueError) as raised:
        with messaging.processing(envelope, system="nexus"):
            raise boom
    assert raised.value is boom
    process = spanline_capture.find("process PlaceOrder")
    assert process.status == StatusCode.ERROR
    assert process.status_message == "ValueError: out of stock"
    (event,) = process.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "ValueError"
    assert event.attributes["exception.message"] == "out of stock"


def test_send_calls_put_in_the_span_and_errors_pass_through(spanline_capture: Capture) -> None:
    delivered: list[Envelope[str]] = []

    def put(envelope: Envelope[str]) -> int:
        delivered.append(envelope)
        return len(delivered)

    assert messaging.send(put, "hello", system="nexus", destination="inbox") == 1
    assert delivered[0].metadata["traceparent"].endswith("-03")

    full = OverflowError("mailbox full")

    def refuse(envelope: Envelope[str]) -> None:
        raise full

    with pytest.raises(OverflowError) as raised:
        messaging.send(refuse, "hello", system="nexus")
    assert raised.value is full
    first, second = spanline_capture.spans
    assert first.name == second.name == "send str"
    assert first.status == StatusCode.UNSET
    assert second.status == StatusCode.ERROR


class HostileMapping(dict[str, str]):
    def items(self) -> Any:
        raise RuntimeError("items exploded")


class HostileRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")


def _malformed() -> list[tuple[str, object]]:
    return [
        ("dict of str to str, got list", [("traceparent", f"00-{TRACE}-{PARENT}-01")]),
        ("dict of str to str, got str", f"traceparent=00-{TRACE}-{PARENT}-01"),
        ("dict of str to str, got NoneType", None),
        ("metadata['traceparent'] is int, not str", {"traceparent": 42}),
        ("metadata key 7 is int, not str", {7: "x"}),
        ("metadata key <HostileRepr> is HostileRepr", {HostileRepr(): "x"}),
        ("at most 64 are read", {f"k{i}": "v" for i in range(65)}),
        ("longer than 8192", {"traceparent": "0" * 100_000}),
        ("is not a valid W3C traceparent", {"traceparent": "00-zz-yy-01"}),
        ("is not a valid W3C traceparent", {"traceparent": f"00-{'0' * 32}-{PARENT}-01"}),
        ("unreadable (RuntimeError('items exploded'))", HostileMapping(a="b")),
    ]


@pytest.mark.parametrize(("problem", "metadata"), _malformed())
def test_malformed_metadata_is_ignored_and_the_message_processed_in_a_new_trace(
    problem: str,
    metadata: object,
    spanline_capture: Capture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    envelope: Envelope[str] = Envelope("ping")
    envelope.metadata = metadata  # type: ignore[assignment]
    handled = False
    with caplog.at_level(logging.WARNING, logger="spanline"):
        with messaging.processing(envelope, system="nexus") as span:
            handled = True
            assert span.trace_hex != TRACE
            assert span.parent_span_id == 0
    assert handled
    (record,) = caplog.records
    message = record.getMessage()
    assert "ignoring the trace context of 'process str'" in message
    assert problem in message, message
    assert spanline.tracer.stats()["message_context_rejected"] == 1
    assert spanline_capture.names() == ["process str"]


def test_a_flood_of_bad_metadata_is_logged_once_and_counted(
    spanline_capture: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="spanline"):
        for _ in range(100):
            with messaging.processing(Envelope("ping", {"traceparent": "garbage"}), system="x"):
                pass
    assert len(caplog.records) == 1
    assert spanline.tracer.stats()["message_context_rejected"] == 100
    assert len(spanline_capture.spans) == 100
    assert len({s.trace_id for s in spanline_capture.spans}) == 100


def test_no_metadata_is_a_new_trace_without_a_warning(
    spanline_capture: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="spanline"):
        with spanline.span("worker-loop"):  # the consumer's own context is not the parent
            with messaging.processing(Envelope(PlaceOrder("pen")), system="nexus") as span:
                assert span.parent is None
                assert span.parent_span_id == 0
    assert caplog.records == []


def test_something_that_is_not_an_envelope_is_still_processed(
    spanline_capture: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="spanline"):
        with messaging.processing(PlaceOrder("pen"), system="nexus"):  # type: ignore[arg-type]
            pass
    assert spanline_capture.names() == ["process PlaceOrder"]
    assert "expected an Envelope, got PlaceOrder" in caplog.records[0].getMessage()


def test_disabled_tracing_still_delivers(spanline_capture: Capture) -> None:
    spanline.configure(enabled=False)
    with messaging.sending("ping", system="nexus") as envelope:
        pass
    assert envelope.metadata == {}
    with messaging.processing(envelope, system="nexus") as span:
        assert not span.is_recording()
    assert spanline_capture.spans == []


def test_pickling_drops_the_live_parent(spanline_capture: Capture) -> None:
    with messaging.sending("ping", system="nexus", message_id="m-1") as envelope:
        pass
    copy = _over_the_wire(envelope)
    assert (copy.message, copy.metadata, copy.message_id) == ("ping", envelope.metadata, "m-1")
    assert origin_of(envelope) is spanline_capture.find("send str")
    assert origin_of(copy) is None


# -- asyncio ----------------------------------------------------------------------------


def test_traced_queue_between_real_tasks(spanline_capture: Capture) -> None:
    handled: list[str] = []

    async def producer(queue: TracedQueue[PlaceOrder]) -> None:
        with spanline.span("producer"):
            for product in ("book", "pen", "ink"):
                await queue.put(PlaceOrder(product))

    async def consumer(queue: TracedQueue[PlaceOrder]) -> None:
        for _ in range(3):
            async with queue.process() as order:
                with spanline.span(f"handle {order.product}"):
                    await asyncio.sleep(0)
                    handled.append(order.product)

    async def main() -> None:
        queue: TracedQueue[PlaceOrder] = TracedQueue(name="orders")
        await asyncio.create_task(producer(queue))  # all three wait: depths 2, 1, 0
        await asyncio.create_task(consumer(queue))
        await queue.join()

    asyncio.run(main())
    assert handled == ["book", "pen", "ink"]
    spanline_capture.assert_outline(
        """
        producer
          send PlaceOrder
            process PlaceOrder
              handle book
          send PlaceOrder
            process PlaceOrder
              handle pen
          send PlaceOrder
            process PlaceOrder
              handle ink
        """
    )
    processes = [s for s in spanline_capture.spans if s.name == "process PlaceOrder"]
    assert [s.attributes["spanline.messaging.mailbox.depth"] for s in processes] == [2, 1, 0]
    assert {s.attributes["messaging.system"] for s in processes} == {"asyncio"}
    assert {s.attributes["messaging.destination.name"] for s in processes} == {"orders"}


def test_traced_queue_consumer_failure_and_full_queue(spanline_capture: Capture) -> None:
    async def main() -> None:
        queue: TracedQueue[str] = TracedQueue(1, name="tiny")
        queue.put_nowait("first")
        assert queue.full()
        with pytest.raises(asyncio.QueueFull):
            queue.put_nowait("second")
        with pytest.raises(KeyError):
            async with queue.process():
                raise KeyError("unknown order")
        await asyncio.wait_for(queue.join(), 5)  # task_done was called despite the error
        assert queue.empty()

    asyncio.run(main())
    first, refused, process = spanline_capture.spans
    assert (first.status, refused.status) == (StatusCode.UNSET, StatusCode.ERROR)
    assert process.name == "process str"
    assert process.status == StatusCode.ERROR
    assert process.parent is first
    assert process.events[0].attributes["exception.type"] == "KeyError"


def test_concurrent_consumers_keep_their_own_traces(spanline_capture: Capture) -> None:
    async def main() -> None:
        queue: TracedQueue[int] = TracedQueue(name="jobs")

        async def produce(i: int) -> None:
            with spanline.span(f"request {i}"):
                await queue.put(i)

        async def consume() -> None:
            for _ in range(10):
                async with queue.process() as item:
                    await asyncio.sleep(0)
                    spanline.current_span().set_attribute("item", item)

        await asyncio.gather(*(produce(i) for i in range(20)), consume(), consume())

    asyncio.run(main())
    roots = [s for s in spanline_capture.roots if s.name.startswith("request")]
    assert len(roots) == 20
    for root in roots:
        (send,) = root.children
        (process,) = send.children
        assert process.attributes["item"] == int(root.name.split()[1])
        assert process.trace_id == root.trace_id


def test_propagators_off_keep_the_in_process_link_and_ignore_metadata_quietly(
    spanline_capture: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    spanline.configure(propagators="none")
    with messaging.sending("ping", system="nexus") as envelope:
        pass
    assert envelope.metadata == {}  # nothing leaves the process...
    with messaging.processing(envelope, system="nexus") as span:
        assert span.parent is spanline_capture.find("send str")  # ...the live link stays
    incoming = Envelope("ping", {"traceparent": f"00-{TRACE}-{PARENT}-01"})
    with caplog.at_level(logging.WARNING, logger="spanline"):
        with messaging.processing(incoming, system="nexus") as span:
            assert span.trace_hex != TRACE  # not read, and not "malformed" either
    assert caplog.records == []
