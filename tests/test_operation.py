from __future__ import annotations

import asyncio

import pytest

import spanline
from spanline import StatusCode
from spanline.testing import Capture


class Validate(spanline.Operation):
    operation_name = "orders.Validate"
    quantity: int

    def perform(self) -> bool:
        if self.quantity <= 0:
            raise ValueError("quantity must be positive")
        return True


class PlaceOrder(spanline.Operation):
    product: str
    quantity: int

    def perform(self) -> str:
        Validate(quantity=self.quantity).call()
        spanline.record("product", self.product)
        return f"placed {self.product}"


def test_operation_class_runs_in_its_own_frame(spanline_capture: Capture) -> None:
    with spanline.start_trace(actor={"type": "user", "id": 42}):
        assert PlaceOrder(product="book", quantity=1).call() == "placed book"
    spanline_capture.assert_outline("""
        PlaceOrder
          orders.Validate
    """)
    place = spanline_capture.find("PlaceOrder")
    assert place.type == "operation"
    assert place.id is not None
    assert place.id.startswith("op_")
    assert place.records == {"product": "book"}
    assert place.actor == {"type": "user", "id": "42"}


def test_operation_params_are_kept_but_not_recorded(spanline_capture: Capture) -> None:
    op = PlaceOrder(product="book", quantity=2)
    assert op.params == {"product": "book", "quantity": 2}
    op.call()
    place = spanline_capture.find("PlaceOrder")
    assert "quantity" not in place.attributes
    assert "quantity" not in place.records


def test_operation_exception_marks_error_and_reraises(spanline_capture: Capture) -> None:
    with pytest.raises(ValueError, match="quantity must be positive"):
        PlaceOrder(product="book", quantity=0).call()
    validate = spanline_capture.find("orders.Validate")
    place = spanline_capture.find("PlaceOrder")
    assert validate.status == StatusCode.ERROR
    assert place.status == StatusCode.ERROR
    assert validate.events[0].attributes["exception.type"] == "ValueError"


def test_perform_must_be_implemented() -> None:
    class Empty(spanline.Operation):
        pass

    with pytest.raises(NotImplementedError, match="Empty must implement perform"):
        Empty().call()


def test_async_operation(spanline_capture: Capture) -> None:
    class Fetch(spanline.Operation):
        async def perform(self) -> list[str]:
            await asyncio.sleep(0)
            return spanline.frames()  # type: ignore[return-value]

    class Sync(spanline.Operation):
        async def perform(self) -> str:
            frames = await Fetch().call()
            return " / ".join(f["name"] for f in frames)

    assert asyncio.run(Sync().call()) == "Sync / Fetch"
    spanline_capture.assert_outline("""
        Sync
          Fetch
    """)


def test_operation_decorator_on_functions_methods_and_async(spanline_capture: Capture) -> None:
    @spanline.operation
    def validate(order: dict[str, int]) -> bool:
        return order["quantity"] > 0

    class Checkout:
        @spanline.operation(name="checkout.Place")
        def place(self, quantity: int) -> str | None:
            validate({"quantity": quantity})
            return spanline.current_id()

    @spanline.operation
    async def notify() -> str:
        await asyncio.sleep(0)
        return spanline.trace_string()

    current = Checkout().place(1)
    chain = asyncio.run(notify())
    spanline_capture.assert_outline("""
        checkout.Place
          validate
        notify
    """)
    assert current == spanline_capture.find("checkout.Place").id
    assert chain.startswith("notify(op_")
    assert validate.__name__ == "validate"
    with pytest.raises(TypeError, match="needs a callable"):
        spanline.operation(name="x")(42)  # type: ignore[arg-type]


def test_operation_name_defaults_to_class_name_without_locals(spanline_capture: Capture) -> None:
    class Local(spanline.Operation):
        def perform(self) -> None:
            return None

    Local().call()
    assert spanline_capture.names() == ["Local"]
