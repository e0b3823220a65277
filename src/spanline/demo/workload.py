"""An online shop in miniature: users place orders, a nightly job settles them.

It exercises what spanline is for -- actors at the boundary, nested operations,
spans with records and context snapshots, events and handlers, a background job that
continues the trace in another thread through ``dump()``/``restore()``, a failing
payment and a slow path -- and returns the completed root spans.

The shop is several services: :data:`SERVICES` names the service each operation
runs in, and :func:`service_of` gives the service of any span (that of its nearest
ancestor listed there, else ``shop-web``).  One process plays every service, so the
service is decided when the spans are stored (``spanline demo`` writes each group
with its own ``service``), not by the process-wide ``service.name``.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import spanline

__all__ = ["DEFAULT_SERVICE", "SERVICES", "run", "service_of"]

DEFAULT_SERVICE = "shop-web"
"""The service of spans outside every operation listed in :data:`SERVICES`."""

SERVICES = {
    "orders.Place": "shop-web",
    "payments.Charge": "payments",
    "mail.SendConfirmation": "mailer",
    "billing.NightlySettle": "billing",
}
"""Operation name -> the service it runs in (its spans below it inherit it)."""


def service_of(span: spanline.Span) -> str:
    """The service ``span`` belongs to: that of its nearest operation (itself
    included) named in :data:`SERVICES`, else :data:`DEFAULT_SERVICE`."""
    node: spanline.Span | None = span
    while node is not None:
        found = SERVICES.get(node.name)
        if found is not None:
            return found
        node = node.parent
    return DEFAULT_SERVICE


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


def record_sale(event: spanline.Event) -> None:
    """The analytics service's handler of ``order.placed`` (subscribed while
    :func:`run` runs, so importing the demo registers nothing)."""
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


def run(
    orders: int = 5, seed: int = 7, progress: Callable[[int], None] | None = None
) -> list[spanline.Span]:
    """Run the workload and return the completed root spans it produced (oldest
    first); ``progress(n)`` is called after each order (and after the nightly job,
    with ``orders + 1``)."""
    rng = random.Random(seed)  # noqa: S311 - demo data
    jobs: queue.Queue[dict[str, Any] | None] = queue.Queue()
    worker = threading.Thread(target=_worker, args=(jobs,), name="demo-worker")
    spanline.handler("order.placed", name="analytics.RecordSale")(record_sale)
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
            if progress is not None:
                progress(n + 1)
        with spanline.start_trace(actor=spanline.system("nightly_settlement")):
            SettleOrders().call()
        if progress is not None:
            progress(orders + 1)
    finally:
        jobs.put(None)
        worker.join()
        spanline.unsubscribe("order.placed", record_sale)
    completed = spanline.tracer.completed
    return completed[before:] if before <= len(completed) else completed
