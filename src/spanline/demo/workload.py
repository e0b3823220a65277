"""An online shop in miniature: users place orders, a nightly job settles them.

It exercises what spanline is for -- actors at the boundary, nested operations,
spans with records and context snapshots, events and handlers, a background job that
continues the trace in another thread through ``dump()``/``restore()``, a failing
payment and a slow path -- and returns the completed root spans.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from typing import Any

import spanline

__all__ = ["run"]


class PaymentDeclinedError(Exception):
    """The card was declined (the demo's error path)."""


class ValidateOrder(spanline.Operation):
    operation_name = "orders.Validate"
    product: str
    quantity: int

    def perform(self) -> None:
        with spanline.span("rules:stock", meta={"sku": self.product}):
            spanline.record("in_stock", True)
        if self.quantity <= 0:
            raise ValueError(f"quantity must be positive, got {self.quantity}")


class ChargeCard(spanline.Operation):
    operation_name = "payments.Charge"
    amount_cents: int
    latency_s: float
    declined: bool

    def perform(self) -> str:
        spanline.record("amount_cents", self.amount_cents)
        time.sleep(self.latency_s)
        if self.declined:
            raise PaymentDeclinedError(f"card declined for {self.amount_cents} cents")
        return f"ch_{random.getrandbits(32):08x}"


class PlaceOrder(spanline.Operation):
    operation_name = "orders.Place"
    order_id: int
    product: str
    quantity: int
    latency_s: float
    declined: bool
    jobs: queue.Queue[dict[str, Any] | None]

    def perform(self) -> dict[str, Any]:
        ValidateOrder(product=self.product, quantity=self.quantity).call()
        pipeline: dict[str, Any] = {"product": self.product, "quantity": self.quantity}
        with spanline.span("stage:price", context=pipeline):
            pipeline["amount_cents"] = 1299 * self.quantity
        charge = ChargeCard(
            amount_cents=pipeline["amount_cents"],
            latency_s=self.latency_s,
            declined=self.declined,
        ).call()
        order = {"order_id": self.order_id, "charge": charge, **pipeline}
        spanline.publish("order.placed", order)
        payload = spanline.dump()
        if payload is not None:
            self.jobs.put(payload)
        return order


class SendConfirmation(spanline.Operation):
    operation_name = "mail.SendConfirmation"

    def perform(self) -> None:
        spanline.record("template", "order_confirmation")
        spanline.record("chain", spanline.trace_string())
        time.sleep(0.002)


@spanline.handler("order.placed", name="analytics.RecordSale")
def record_sale(event: spanline.Event) -> None:
    spanline.record("order_id", event.payload["order_id"])


class SettleOrders(spanline.Operation):
    operation_name = "billing.NightlySettle"

    def perform(self) -> int:
        for batch in range(3):
            with spanline.span("settle:batch", meta={"batch": batch}):
                spanline.record("orders", 10 + batch)
        return 3


def _worker(jobs: queue.Queue[dict[str, Any] | None]) -> None:
    while (payload := jobs.get()) is not None:
        with spanline.restore(payload):
            SendConfirmation().call()


def run(orders: int = 5, seed: int = 7) -> list[spanline.Span]:
    """Run the workload and return the completed root spans it produced (oldest first)."""
    rng = random.Random(seed)  # noqa: S311 - demo data
    jobs: queue.Queue[dict[str, Any] | None] = queue.Queue()
    worker = threading.Thread(target=_worker, args=(jobs,), name="demo-worker")
    worker.start()
    before = len(spanline.tracer.completed)
    try:
        for n in range(orders):
            actor = {"type": "user", "id": 40 + n}
            if n == 1:
                actor["via"] = "support-bot"
            slow = n == 3
            try:
                with spanline.start_trace(actor=actor):
                    PlaceOrder(
                        order_id=1000 + n,
                        product=rng.choice(["book", "lamp", "mug"]),
                        quantity=1 + n % 2,
                        latency_s=0.05 if slow else 0.003,
                        declined=n == 2,
                        jobs=jobs,
                    ).call()
            except PaymentDeclinedError:
                pass  # the error is on the trace; the demo goes on
        with spanline.start_trace(actor=spanline.system("nightly_settlement")):
            SettleOrders().call()
    finally:
        jobs.put(None)
        worker.join()
    completed = spanline.tracer.completed
    return completed[before:] if before <= len(completed) else completed
