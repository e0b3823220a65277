from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from typing import Any

import pytest

import spanline
from spanline import SpanKind, StatusCode
from spanline.testing import Capture


def test_span_tree_with_records_and_meta(spanline_capture: Capture) -> None:
    clock = spanline_capture.deterministic()
    with spanline.span("boundary:route-match", meta={"method": "GET"}) as route:
        spanline.record("matched", True)
        spanline.record("pattern", "/node/:slug")
        with spanline.span("sub-operation:compile-pattern"):
            spanline.record("param_count", 1)
    assert isinstance(route, spanline.Span)
    assert route.meta == {"method": "GET"}
    assert route.records == {"matched": True, "pattern": "/node/:slug"}
    child = route.children[0]
    assert child.parent is route
    assert child.parent_id == route.id
    assert child.records == {"param_count": 1}
    assert route.duration == pytest.approx(3 * clock.step_ns / 1e9)
    spanline_capture.assert_outline("""
        boundary:route-match
          sub-operation:compile-pattern
    """)


def test_to_dict_is_json_ready_nested_tree(spanline_capture: Capture) -> None:
    spanline_capture.deterministic()
    with spanline.start_trace(actor={"type": "user", "id": 42}):
        with spanline.span("root", meta={"k": {1, 2}}) as root:
            with spanline.span("child") as child:
                child.set_attribute("http.route", "/orders/{id}")
                child.add_event("cache.miss", {"key": "orders:7"})
    data = root.to_dict()
    text = json.dumps(data)  # must not raise
    assert json.loads(text) == data
    assert data["name"] == "root"
    assert data["type"] == "span"
    assert data["kind"] == "internal"
    assert data["status"] == "unset"
    assert data["actor"] == {"type": "user", "id": "42"}
    assert data["meta"] == {"k": [1, 2]}
    assert datetime.fromisoformat(data["started_at"]).tzinfo is not None
    assert datetime.fromisoformat(data["finished_at"]) > datetime.fromisoformat(data["started_at"])
    # clock readings: start_trace, root, child, event, child end, root end (1 ms apart)
    assert data["duration"] == pytest.approx(0.004)
    (child_data,) = data["children"]
    assert child_data["parent_id"] == data["id"]
    assert child_data["attributes"] == {"http.route": "/orders/{id}"}
    assert child_data["events"][0]["name"] == "cache.miss"
    assert child_data["events"][0]["attributes"] == {"key": "orders:7"}
    assert child_data["w3c_trace_id"] == data["w3c_trace_id"]
    assert "actor" not in child_data


def test_records_accept_anything_and_never_raise(spanline_capture: Capture) -> None:
    class Weird:
        def __repr__(self) -> str:
            return "<Weird>"

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr for you")

    loop: list[Any] = []
    loop.append(loop)
    with spanline.span("s") as s:
        spanline.record("obj", Weird())
        spanline.record("broken", Broken())
        spanline.record("nested", {"a": (1, 2), 3: Weird(), "f": float("nan")})
        spanline.record("loop", loop)
        spanline.record("bytes", b"\x00")
    records = s.records
    assert records["obj"] == "<Weird>"
    assert records["broken"].startswith("<unrepresentable ")
    assert records["broken"].endswith("Broken: RuntimeError>")
    assert records["nested"] == {"a": [1, 2], "3": "<Weird>", "f": "nan"}
    assert records["bytes"] == "b'\\x00'"
    json.dumps(s.to_dict())


def test_exception_sets_error_records_event_and_passes_through_unchanged(
    spanline_capture: Capture,
) -> None:
    error = KeyError("missing")
    with pytest.raises(KeyError) as raised, spanline.span("failing"):
        raise error
    assert raised.value is error
    span = spanline_capture.find("failing")
    assert span.status == StatusCode.ERROR
    assert span.status_message == "KeyError: 'missing'"
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "KeyError"
    assert event.attributes["exception.message"] == "'missing'"
    assert "raise error" in event.attributes["exception.stacktrace"]
    assert "Traceback" in event.attributes["exception.stacktrace"]


def test_exception_type_is_qualified_for_non_builtins(spanline_capture: Capture) -> None:
    with pytest.raises(json.JSONDecodeError), spanline.span("parse"):
        json.loads("{")
    attrs = spanline_capture.find("parse").events[0].attributes
    assert attrs["exception.type"] == "json.decoder.JSONDecodeError"


def test_status_rules(spanline_capture: Capture) -> None:
    with spanline.span("a") as a:
        a.set_status(StatusCode.OK, "ignored description")
        a.set_status(StatusCode.ERROR, "too late, OK is final")
    assert a.status == StatusCode.OK
    assert a.status_message is None
    with spanline.span("b", kind=SpanKind.SERVER) as b:
        b.set_status(StatusCode.ERROR, "upstream 503")
    assert b.status == StatusCode.ERROR
    assert b.status_message == "upstream 503"
    assert b.kind == SpanKind.SERVER


def test_context_snapshot_records_added_changed_removed(spanline_capture: Capture) -> None:
    pipeline_context: dict[str, Any] = {"repo": "shop", "steps": ["checkout"], "tmp": 1}
    with spanline.span("stage:build", context=pipeline_context) as stage:
        pipeline_context["image_tag"] = "my-image:abc123"
        pipeline_context["steps"].append("build")  # changed in place
        del pipeline_context["tmp"]
    assert stage.records["context"] == {
        "repo": "shop",
        "steps": ["checkout", "build"],
        "image_tag": "my-image:abc123",
    }
    assert stage.records["added"] == ["image_tag"]
    assert stage.records["changed"] == ["steps"]
    assert stage.records["removed"] == ["tmp"]


def test_context_snapshot_of_an_object(spanline_capture: Capture) -> None:
    class Ctx:
        def __init__(self) -> None:
            self.tag = "v1"

    ctx = Ctx()
    with spanline.span("stage", context=ctx) as stage:
        ctx.tag = "v2"
    assert stage.records["changed"] == ["tag"]
    assert stage.records["context"] == {"tag": "v2"}


def test_current_span_is_never_none(spanline_capture: Capture) -> None:
    noop = spanline.current_span()
    assert isinstance(noop, spanline.NoopSpan)
    noop.set_attribute("a", 1)
    noop.record("b", 2)
    noop.add_event("c")
    noop.set_status(StatusCode.ERROR)
    noop.record_exception(ValueError())
    assert not noop.is_recording()
    assert noop.records == {}
    with spanline.span("s") as s:
        assert spanline.current_span() is s
        assert s.is_recording()
    assert not s.is_recording()


def test_writes_after_end_are_ignored(spanline_capture: Capture) -> None:
    with spanline.span("s") as s:
        pass
    s.set_attribute("late", 1)
    s.record("late", 1)
    s.add_event("late")
    assert s.attributes == {}
    assert s.records == {}
    assert s.events == []


def test_span_as_decorator_sync_and_async(spanline_capture: Capture) -> None:
    @spanline.span("compute", meta={"v": 1})
    def compute(x: int) -> int:
        spanline.record("x", x)
        return x * 2

    @spanline.span("fetch")
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        spanline.record("x", x)
        return x + 1

    assert compute(2) == 4
    assert compute(3) == 6
    assert asyncio.run(fetch(1)) == 2
    assert spanline_capture.names() == ["compute", "compute", "fetch"]
    assert [s.records["x"] for s in spanline_capture.spans] == [2, 3, 1]
    first, second, _ = spanline_capture.spans
    assert first.meta == {"v": 1}
    assert first.meta is not second.meta
    assert compute.__name__ == "compute"


def test_bare_decorator_use_is_a_clear_error() -> None:
    def f() -> None: ...

    with pytest.raises(TypeError, match=r"@spanline.span\('name'\)"):
        spanline.span(f)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a string"):
        spanline.span(42)  # type: ignore[arg-type]


def test_decorated_generator_keeps_span_out_of_consumer(spanline_capture: Capture) -> None:
    @spanline.span("produce")
    def produce(n: int) -> Any:
        for i in range(n):
            spanline.record(f"item{i}", i)
            yield i
        return "done"

    with spanline.span("consumer") as consumer:
        seen = []
        for item in produce(3):
            # between items the consumer's own span is current, not the generator's
            assert spanline.current_span() is consumer
            seen.append(item)
    assert seen == [0, 1, 2]
    produced = spanline_capture.find("produce")
    assert produced.parent is consumer
    assert produced.records == {"item0": 0, "item1": 1, "item2": 2}
    assert produced.ended


def test_decorated_async_generator(spanline_capture: Capture) -> None:
    @spanline.span("stream")
    async def stream(n: int) -> Any:
        for i in range(n):
            await asyncio.sleep(0)
            spanline.record("last", i)
            yield i

    async def main() -> list[int]:
        with spanline.span("consumer") as consumer:
            out = []
            async for item in stream(3):
                assert spanline.current_span() is consumer
                out.append(item)
            return out

    assert asyncio.run(main()) == [0, 1, 2]
    produced = spanline_capture.find("stream")
    assert produced.records == {"last": 2}
    assert produced.parent is spanline_capture.find("consumer")


def test_generator_closed_in_another_context_does_not_raise(
    spanline_capture: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    import contextvars

    def gen() -> Any:
        with spanline.span("gen-body"):
            yield 1
            yield 2

    g = gen()
    ctx = contextvars.copy_context()
    assert ctx.run(next, g) == 1
    caplog.set_level(logging.DEBUG, logger="spanline")
    g.close()  # closed from this (different) context
    span = spanline_capture.find("gen-body")
    assert span.ended
    assert span.status == StatusCode.UNSET  # GeneratorExit is not an error
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_span_entered_twice_records_nothing_the_second_time(
    spanline_capture: Capture,
) -> None:
    s = spanline.span("once")
    with s:
        pass
    with s as again:
        assert isinstance(again, spanline.NoopSpan)
    assert spanline_capture.names() == ["once"]


def test_a_context_that_fails_to_read_never_breaks_the_block(
    spanline_capture: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    class Hostile:
        def to_dict(self) -> dict[str, Any]:
            raise RuntimeError("cannot read me")

    with caplog.at_level(logging.WARNING, logger="spanline"):
        with spanline.span("stage", context=Hostile()) as stage:
            spanline.record("ran", True)
    assert stage.records == {"ran": True}
    assert "could not read the context" in caplog.text


def test_an_exception_with_a_broken_str_still_passes_through(spanline_capture: Capture) -> None:
    class NastyError(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str")

    error = NastyError()
    with pytest.raises(NastyError) as raised, spanline.span("s"):
        raise error
    assert raised.value is error
    span = spanline_capture.find("s")
    assert span.status == StatusCode.ERROR
    assert span.status_message is not None
    assert span.status_message.endswith("NastyError")
    assert span.events[0].attributes["exception.message"].startswith("<unprintable")


def test_async_generator_closed_elsewhere_ends_quietly(
    spanline_capture: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    async def agen() -> Any:
        with spanline.span("agen-body"):
            yield 1
            yield 2

    async def main() -> None:
        gen = agen()
        assert await gen.__anext__() == 1
        # closed from another task (another context)
        await asyncio.create_task(gen.aclose())

    caplog.set_level(logging.DEBUG, logger="spanline")
    asyncio.run(main())
    span = spanline_capture.find("agen-body")
    assert span.ended
    assert span.status == StatusCode.UNSET
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_nested_reentry_of_one_span_object_keeps_the_context_sound(
    spanline_capture: Capture,
) -> None:
    s = spanline.span("outer")
    with s:
        with s as again:
            assert isinstance(again, spanline.NoopSpan)
            assert spanline.current_span() is s
        assert spanline.current_span() is s  # the inner exit did not end it
    assert s.ended
    assert spanline.current_span() is spanline.current_span()  # no-op again
    assert isinstance(spanline.current_span(), spanline.NoopSpan)
    with spanline.span("next") as nxt:
        pass
    assert isinstance(nxt, spanline.Span)
    assert nxt.parent is None


def test_records_of_shared_cyclic_and_hostile_values_are_bounded(
    spanline_capture: Capture,
) -> None:
    from spanline.core.jsonsafe import MAX_NODES

    shared: list[Any] = [0]
    for _ in range(40):  # 2**40 paths if walked naively
        shared = [shared, shared]
    cyclic: list[Any] = []
    cyclic.extend([cyclic, cyclic])

    class BadList(list[int]):
        def __iter__(self) -> Any:
            raise RuntimeError("boom")

    with spanline.span("s") as s:
        spanline.record("shared", shared)
        spanline.record("cyclic", cyclic)
        spanline.record("bad", BadList([1]))
        spanline.record("huge", 10**5000)
    records = s.to_dict()["records"]
    assert json.dumps(records)  # serializable

    def count(value: Any) -> int:
        return 1 + sum(count(v) for v in value) if isinstance(value, list) else 1

    assert count(records["shared"]) <= MAX_NODES + 64
    assert records["cyclic"] == ["<cycle>", "<cycle>"]
    assert records["bad"] == "[1]"
    assert records["huge"].startswith("<int of ")


def test_deep_trees_serialize(spanline_capture: Capture, tmp_path: Any) -> None:
    import contextlib

    with contextlib.ExitStack() as stack:
        for i in range(600):
            stack.enter_context(spanline.span(f"level{i}"))
    root = spanline.tracer.last_completed
    assert root is not None
    data = root.to_dict()
    depth = 0
    while data["children"]:
        data = data["children"][0]
        depth += 1
    assert depth == 599
    # whether json can nest 1,200 levels depends on the Python (3.13's C encoder
    # can, 3.11's pure-Python indenting one cannot): write() does what json can, and
    # turns json's RecursionError into a ValueError that names the trace
    try:
        json.dumps(root.to_dict(), indent=2)
    except RecursionError:
        with pytest.raises(ValueError, match="nested too deeply"):
            spanline.tracer.write(tmp_path)
    else:
        path = spanline.tracer.write(tmp_path)
        assert path is not None
        assert json.loads(path.read_text())["name"] == "level0"


def test_deep_recursion_keeps_the_users_exception_type(spanline_capture: Capture) -> None:
    @spanline.operation
    def recurse(n: int) -> int:
        return recurse(n + 1)

    with pytest.raises(RecursionError):
        recurse(0)
    root = spanline_capture.roots[0]
    assert root.name == "recurse"
    assert root.ended
    assert root.status == StatusCode.ERROR
    assert spanline.current_span().is_recording() is False


def test_bad_names_and_timestamps_are_ignored_with_a_report(
    spanline_capture: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="spanline"), spanline.span("s") as s:
        s.update_name(None)  # type: ignore[arg-type]
        s.add_event("late", timestamp=1.7e9)  # type: ignore[arg-type] - seconds, not ns
        s.add_event("negative", timestamp=-1)
    assert s.name == "s"
    assert all(e.timestamp_ns > 10**18 for e in s.events)
    assert "span names must be strings" in caplog.text
    assert "must be integer nanoseconds" in caplog.text
    detached = spanline.span("d").start_detached(start_ns=12.5)  # type: ignore[arg-type]
    detached.end(end_ns="later")  # type: ignore[arg-type]
    assert detached.start_ns > 10**18
    assert detached.end_ns >= detached.start_ns
