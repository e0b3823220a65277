from __future__ import annotations

import re

import pytest

import spanline
from spanline.testing import Capture


class Validate(spanline.Operation):
    def perform(self) -> str:
        return spanline.trace_string()


class PlaceOrder(spanline.Operation):
    def perform(self) -> tuple[str, list[dict[str, str]], str | None]:
        chain = Validate().call()
        return chain, spanline.frames(), spanline.current_id()


def test_outside_any_trace_everything_is_empty() -> None:
    assert spanline.trace_id() is None
    assert spanline.current_id() is None
    assert spanline.frames() == []
    assert spanline.trace_string() == ""
    assert spanline.actor() is None
    assert isinstance(spanline.current_span(), spanline.NoopSpan)


def test_start_trace_with_actor_gives_dex_chain(spanline_capture: Capture) -> None:
    with spanline.start_trace(actor={"type": "user", "id": 42}) as trace_id:
        assert spanline.trace_id() == trace_id
        assert trace_id.startswith("tr_")
        assert spanline.actor() == {"type": "user", "id": "42"}
        chain, frames, current = PlaceOrder().call()
    assert re.fullmatch(
        r"user:42 > PlaceOrder\(op_[1-9A-Za-z]{6}\) > Validate\(op_[1-9A-Za-z]{6}\)", chain
    )
    assert frames[0] == {"type": "actor", "actor_type": "user", "id": "42"}
    assert [f["type"] for f in frames] == ["actor", "operation"]
    assert frames[1]["name"] == "PlaceOrder"
    assert frames[1]["id"] == current
    place = spanline_capture.find("PlaceOrder")
    assert place.id == current
    assert place.trace_id == trace_id
    assert spanline.trace_id() is None  # the boundary was left


def test_external_trace_id_is_kept_as_given(spanline_capture: Capture) -> None:
    with spanline.start_trace(trace_id="req-123") as trace_id:
        assert trace_id == "req-123"
        assert spanline.trace_id() == "req-123"
        Validate().call()
    assert spanline_capture.find("Validate").trace_id == "req-123"


@pytest.mark.parametrize("bad", ["", "   ", "x" * 257, 42])
def test_bad_trace_id_is_a_clear_error(bad: object) -> None:
    with pytest.raises(ValueError, match="trace_id"):
        spanline.start_trace(trace_id=bad)  # type: ignore[arg-type]


def test_actor_requires_type() -> None:
    with pytest.raises(ValueError, match="needs a non-empty 'type'"):
        spanline.start_trace(actor={"id": 42})
    with pytest.raises(ValueError, match="type"):
        spanline.start_trace(actor={"type": ""})
    with pytest.raises(TypeError, match="must be a mapping"):
        spanline.start_trace(actor="user:42")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("actor", "label"),
    [
        ({"type": "admin", "id": 5, "on_behalf_of": 9}, "admin:5 on_behalf_of 9"),
        ({"type": "user", "id": 9, "impersonated_by": 5}, "user:9 impersonated_by 5"),
        ({"type": "user", "id": 42, "via": "support-bot"}, "user:42 via support-bot"),
        ({"type": "agent", "name": "content-writer"}, "agent:content-writer"),
        ({"type": "webhook", "source": "stripe"}, "webhook:stripe"),
        ({"type": "api_key", "id": "key_live_abc"}, "api_key:key_live_abc"),
    ],
)
def test_actor_conventions_round_trip(actor: dict[str, object], label: str) -> None:
    with spanline.start_trace(actor=actor):
        assert spanline.actor() == {k: str(v) for k, v in actor.items()}
        # the actor travels through a job payload unchanged too
        payload = spanline.dump()
    with spanline.restore(payload):
        assert spanline.actor() == {k: str(v) for k, v in actor.items()}

        @spanline.operation
        def step() -> str:
            return spanline.trace_string()

        assert step().startswith(label + " > step(op_")


def test_system_actor_helper() -> None:
    assert spanline.system() == {"type": "system"}
    assert spanline.system("payroll") == {"type": "system", "name": "payroll"}
    with spanline.start_trace(actor=spanline.system("nightly_cleanup")):
        assert spanline.trace_string() == "system:nightly_cleanup"
        assert spanline.frames() == [
            {"type": "actor", "actor_type": "system", "name": "nightly_cleanup"}
        ]


def test_nested_start_trace_suspends_and_restores_outer(spanline_capture: Capture) -> None:
    with spanline.start_trace(actor={"type": "user", "id": 1}) as outer:
        with spanline.span("outer-work"):
            with spanline.start_trace(actor={"type": "system"}) as inner:
                assert inner != outer
                assert spanline.trace_id() == inner
                assert spanline.actor() == {"type": "system"}
                with spanline.span("inner-work"):
                    pass
            assert spanline.trace_id() == outer
            assert spanline.actor() == {"type": "user", "id": "1"}
    assert spanline_capture.find("inner-work").parent is None
    assert spanline_capture.find("inner-work").trace_id == inner
    assert spanline_capture.find("outer-work").children == []


def test_operation_outside_trace_starts_one_without_actor(spanline_capture: Capture) -> None:
    chain, frames, _ = PlaceOrder().call()
    assert not chain.startswith("user")
    assert chain.startswith("PlaceOrder(op_")
    assert frames[0]["type"] == "operation"
    place = spanline_capture.find("PlaceOrder")
    assert place.trace_id is not None
    assert place.trace_id.startswith("tr_")
    assert place.actor is None
    assert spanline_capture.find("Validate").trace_id == place.trace_id


def test_plain_spans_are_not_frames(spanline_capture: Capture) -> None:
    with spanline.start_trace(actor={"type": "user", "id": 7}):
        with spanline.span("boundary:route-match"):
            chain, frames, _ = PlaceOrder().call()
    assert [f["type"] for f in frames] == ["actor", "operation"]
    assert "boundary" not in chain


def test_one_start_trace_object_shared_by_concurrent_tasks() -> None:
    import asyncio

    shared = spanline.start_trace(actor={"type": "system"})
    seen: list[str | None] = []

    async def task() -> None:
        with shared as trace_id:
            await asyncio.sleep(0)
            assert spanline.trace_id() == trace_id
            await asyncio.sleep(0)
        seen.append(spanline.trace_id())

    async def main() -> None:
        await asyncio.gather(task(), task(), task())

    asyncio.run(main())
    assert seen == [None, None, None]
    with shared, shared:
        assert spanline.trace_id() is not None
    assert spanline.trace_id() is None


def test_all_zero_tr_id_gets_a_stable_w3c_id(spanline_capture: Capture) -> None:
    hexes = set()
    for _ in range(3):
        with spanline.start_trace(trace_id="tr_11111111111111111111"), spanline.span("s") as s:
            hexes.add(s.trace_hex)
    assert len(hexes) == 1
    assert hexes != {"0" * 32}


def test_actor_key_named_actor_type_cannot_fake_the_type() -> None:
    with spanline.start_trace(actor={"type": "user", "id": 1, "actor_type": "admin"}):
        assert spanline.frames()[0]["actor_type"] == "user"
