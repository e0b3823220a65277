"""The threads integration: real threads, real thread pools, real worker processes
(``fork`` and ``spawn``) and a real asyncio loop continue the trace they started in."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import multiprocessing
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

import spanline
from spanline.export.record import span_record
from spanline.integrations import registry, threads
from spanline.testing import Capture

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
ACTOR = {"type": "user", "id": "42"}
START_METHODS = [
    None,
    *(m for m in ("fork", "spawn") if m in multiprocessing.get_all_start_methods()),
]


@pytest.fixture
def instrumented() -> Iterator[None]:
    spanline.instrument("threads")
    yield
    spanline.uninstrument("threads")


def in_thread(work: Callable[[], T]) -> T:
    """Run ``work`` in a plain ``threading.Thread`` started here; return its result."""
    out: list[T] = []
    thread = threading.Thread(target=lambda: out.append(work()))
    thread.start()
    thread.join()
    return out[0]


def where_am_i() -> dict[str, Any]:
    """What a piece of work sees of the trace, from inside a span of its own."""
    with spanline.span("work") as span:
        return {
            "trace_id": spanline.trace_id(),
            "actor": spanline.actor(),
            "frames": spanline.frames(),
            "trace_hex": span.trace_hex,
            "parent_span_id": span.parent_span_id,
        }


def fail_with(message: str) -> None:
    raise LookupError(message)


# -- threading.Thread ----------------------------------------------------------------------


def test_a_thread_continues_the_trace_it_was_started_in(
    instrumented: None, spanline_capture: Capture
) -> None:
    class Worker(threading.Thread):  # overrides run(): covered as well
        def run(self) -> None:
            self.seen = where_am_i()

    worker = Worker()  # built outside the trace, started inside it
    with spanline.start_trace(actor=ACTOR) as trace_id:

        @spanline.operation(name="Checkout")
        def checkout() -> tuple[dict[str, Any], list[dict[str, str]], Any]:
            with spanline.span("parent") as parent:
                worker.start()
                worker.join()
                return in_thread(where_am_i), spanline.frames(), parent

        seen, frames, parent = checkout()
    assert [f["type"] for f in frames] == ["actor", "operation"]
    for view in (seen, worker.seen):
        assert view == {
            "trace_id": trace_id,
            "actor": ACTOR,
            "frames": frames,
            "trace_hex": parent.trace_hex,
            "parent_span_id": parent.span_id,
        }
    assert spanline_capture.outline() == "Checkout\n  parent\n    work\n    work"
    assert "run" not in vars(worker)  # the stand-in removed itself when the thread ended


def test_the_context_is_the_one_current_at_start_not_at_init(
    instrumented: None, spanline_capture: Capture
) -> None:
    out: list[str | None] = []
    with spanline.start_trace() as first:
        with spanline.span("created-here"):
            thread = threading.Thread(target=lambda: out.append(spanline.trace_id()))
    with spanline.start_trace() as second:
        with spanline.span("started-here"):
            thread.start()
            thread.join()
    assert first != second
    assert out == [second]


def test_a_timer_continues_the_trace(instrumented: None, spanline_capture: Capture) -> None:
    out: list[str | None] = []
    with spanline.start_trace() as trace_id:
        timer = threading.Timer(0, lambda: out.append(spanline.trace_id()))
        timer.start()
        timer.join()
    assert out == [trace_id]


def test_outside_a_trace_a_thread_starts_untouched(instrumented: None) -> None:
    def look() -> tuple[str | None, bool]:
        return spanline.trace_id(), "run" in vars(threading.current_thread())

    assert in_thread(look) == (None, False)


def test_an_exception_in_a_thread_reaches_excepthook_unchanged(
    instrumented: None, spanline_capture: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    raised: list[BaseException] = []
    hooked: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: hooked.append(args.exc_value))

    def boom() -> None:
        error = LookupError("from the thread")
        raised.append(error)
        raise error

    with spanline.start_trace():
        thread = threading.Thread(target=boom)
        thread.start()
        thread.join()
    assert hooked == raised
    assert "run" not in vars(thread)


def test_misusing_a_thread_raises_as_before(instrumented: None, spanline_capture: Capture) -> None:
    release = threading.Event()
    with spanline.start_trace():
        thread = threading.Thread(target=release.wait)
        thread.start()
        with pytest.raises(RuntimeError, match="only be started once"):
            thread.start()
        release.set()
        thread.join()

        class Unready(threading.Thread):
            def __init__(self) -> None:  # forgets Thread.__init__
                pass

        with pytest.raises(RuntimeError, match="__init__"):
            Unready().start()
    assert "run" not in vars(thread)


def test_a_child_ending_after_its_parent_is_exported_under_it(
    instrumented: None, spanline_capture: Capture
) -> None:
    parent_ended = threading.Event()

    def late_child() -> None:
        parent_ended.wait()
        with spanline.span("late"):
            pass

    with spanline.start_trace(actor=ACTOR) as trace_id:
        with spanline.span("parent") as parent:
            thread = threading.Thread(target=late_child)
            thread.start()
    parent_ended.set()
    thread.join()

    assert spanline_capture.names() == ["parent", "late"]  # the order they ended in
    late = spanline_capture.find("late")
    assert late.parent is parent
    assert late.start_ns >= parent.end_ns
    exported = span_record(late)
    assert exported["trace_id"] == trace_id == parent.trace_id
    assert exported["parent_id"] == parent.id
    assert exported["w3c_trace_id"] == parent.trace_hex
    assert exported["w3c_parent_span_id"] == parent.span_hex
    assert exported["actor"] == ACTOR
    # the completed tree holds the parent once, the late child inside it
    assert spanline.tracer.completed == [parent]
    tree = parent.to_dict()
    assert [c["name"] for c in tree["children"]] == ["late"]
    assert tree["children"][0]["finished_at"] is not None
    assert spanline_capture.outline() == "parent\n  late"


# -- ThreadPoolExecutor -------------------------------------------------------------------


def test_pool_jobs_continue_the_submitters_trace(
    instrumented: None, spanline_capture: Capture
) -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        with spanline.start_trace(actor=ACTOR) as trace_id:
            with spanline.span("submitter") as submitter:
                submitted = pool.submit(where_am_i).result()
                mapped = list(pool.map(lambda _: where_am_i(), range(4)))
    for view in [submitted, *mapped]:
        assert view["trace_id"] == trace_id
        assert view["actor"] == ACTOR
        assert view["parent_span_id"] == submitter.span_id
    assert spanline_capture.outline() == "submitter\n" + "\n".join(["  work"] * 5)


def test_concurrent_jobs_do_not_see_each_others_spans(
    instrumented: None, spanline_capture: Capture
) -> None:
    barrier = threading.Barrier(2)

    def job(name: str) -> str | None:
        with spanline.span(name):
            barrier.wait()  # both jobs are inside their span now
            with spanline.span(f"{name}-inner") as inner:
                return inner.parent.name if inner.parent else None

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        with spanline.span("root"):
            futures = [pool.submit(job, name) for name in ("a", "b")]
            names = [f.result() for f in futures]
    assert names == ["a", "b"]
    assert spanline_capture.outline() == "root\n  a\n    a-inner\n  b\n    b-inner"


def test_pool_worker_threads_do_not_keep_the_trace_that_started_them(
    instrumented: None, spanline_capture: Capture
) -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        with spanline.start_trace() as trace_id:
            inside = pool.submit(spanline.trace_id).result()  # starts the worker thread
        outside = pool.submit(spanline.trace_id).result()  # same thread, no trace
    assert (inside, outside) == (trace_id, None)


def test_outside_a_trace_jobs_are_submitted_unchanged(instrumented: None) -> None:
    # Unwrapped jobs run in the worker thread's own context, so a variable one job
    # sets is still there for the next: nothing was copied for them.
    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(marker.set, "left by the first job").result()
        assert pool.submit(marker.get).result() == "left by the first job"


def test_pool_job_exceptions_reach_the_future_unchanged(
    instrumented: None, spanline_capture: Capture
) -> None:
    raised: list[BaseException] = []

    def boom() -> None:
        with spanline.span("failing"):
            error = LookupError("from the pool")
            raised.append(error)
            raise error

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        with spanline.span("submitter"):
            future = pool.submit(boom)
            with pytest.raises(LookupError) as caught:
                future.result()
    assert caught.value is raised[0]
    assert spanline_capture.find("failing").status == spanline.StatusCode.ERROR


# -- asyncio ------------------------------------------------------------------------------


def test_asyncio_to_thread_copies_the_context_on_its_own(spanline_capture: Capture) -> None:
    assert "threads" not in registry.instrumented()

    async def main() -> tuple[dict[str, Any], int]:
        with spanline.start_trace(actor=ACTOR):
            with spanline.span("handler") as handler:
                return await asyncio.to_thread(where_am_i), handler.span_id

    seen, handler_id = asyncio.run(main())
    assert seen["actor"] == ACTOR
    assert seen["parent_span_id"] == handler_id


def test_run_in_executor_continues_the_trace_only_when_instrumented(
    spanline_capture: Capture,
) -> None:
    async def main() -> tuple[list[str | None], str]:
        loop = asyncio.get_running_loop()
        with spanline.start_trace() as trace_id:
            with concurrent.futures.ThreadPoolExecutor(max_workers=1) as own:
                seen = [
                    await loop.run_in_executor(None, spanline.trace_id),  # the default pool
                    await loop.run_in_executor(own, spanline.trace_id),
                ]
        return seen, trace_id

    assert asyncio.run(main())[0] == [None, None]  # plain Python loses the trace
    spanline.instrument("threads")
    try:
        seen, trace_id = asyncio.run(main())
    finally:
        spanline.uninstrument("threads")
    assert seen == [trace_id, trace_id]


def test_asyncio_to_thread_is_unchanged_when_instrumented(
    instrumented: None, spanline_capture: Capture
) -> None:
    async def main() -> tuple[str | None, str]:
        with spanline.start_trace() as trace_id:
            return await asyncio.to_thread(spanline.trace_id), trace_id

    seen, trace_id = asyncio.run(main())
    assert seen == trace_id


# -- ProcessPoolExecutor (real worker processes) -------------------------------------------


def process_pool(method: str | None, workers: int = 1) -> concurrent.futures.ProcessPoolExecutor:
    context = None if method is None else multiprocessing.get_context(method)
    return concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context)


@pytest.mark.parametrize("method", START_METHODS, ids=lambda m: m or "default")
def test_process_pool_jobs_continue_the_trace_through_the_payload(
    method: str | None, instrumented: None, spanline_capture: Capture
) -> None:
    with process_pool(method) as pool:
        with spanline.start_trace(actor=ACTOR) as trace_id:

            @spanline.operation(name="Report")
            def report() -> tuple[Any, ...]:
                with spanline.span("submitter") as submitter:
                    seen = pool.submit(where_am_i).result()
                    with pytest.raises(LookupError, match="from the worker"):
                        pool.submit(fail_with, "from the worker").result()
                    return seen, spanline.frames(), submitter

            seen, frames, submitter = report()
        untraced = pool.submit(spanline.trace_id).result()  # the same worker process
    assert seen == {
        "trace_id": trace_id,
        "actor": ACTOR,
        "frames": frames,
        "trace_hex": submitter.trace_hex,
        "parent_span_id": submitter.span_id,
    }
    assert [f["type"] for f in frames] == ["actor", "operation"]
    assert frames[-1]["name"] == "Report"
    assert untraced is None


def trace_of(_: object) -> str | None:
    return spanline.trace_id()


def test_process_pool_map_continues_the_trace(
    instrumented: None, spanline_capture: Capture
) -> None:
    with process_pool("fork" if "fork" in START_METHODS else None, workers=2) as pool:
        with spanline.start_trace() as trace_id:
            seen = list(pool.map(trace_of, range(3)))
    assert seen == [trace_id] * 3


def test_process_pool_job_exceptions_arrive_unchanged(
    instrumented: None, spanline_capture: Capture
) -> None:
    with process_pool(None) as pool:
        with spanline.start_trace():
            future = pool.submit(fail_with, "lost order 7")
            error = future.exception()
    assert type(error) is LookupError
    assert error.args == ("lost order 7",)


def test_a_failure_while_wrapping_runs_the_job_untraced_and_logs_once(
    instrumented: None,
    spanline_capture: Capture,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # No real part makes dump() fail inside a trace, so it is replaced for this test.
    def broken() -> None:
        raise RuntimeError("dump broke")

    monkeypatch.setattr(threads, "dump", broken)
    with caplog.at_level(logging.WARNING, logger="spanline"), process_pool(None) as pool:
        with spanline.start_trace():
            seen = [pool.submit(spanline.trace_id).result() for _ in range(2)]
    assert seen == [None, None]
    messages = [r.getMessage() for r in caplog.records if "ProcessPoolExecutor" in r.getMessage()]
    assert len(messages) == 1
    assert "dump broke" in messages[0]


# -- install / uninstall ------------------------------------------------------------------


def test_install_twice_is_harmless_and_uninstall_restores_the_originals() -> None:
    owners = [
        (threading.Thread, "start"),
        (concurrent.futures.ThreadPoolExecutor, "submit"),
        (concurrent.futures.ProcessPoolExecutor, "submit"),
    ]
    before = [owner.__dict__[name] for owner, name in owners]
    threads.install()
    wrapped = [owner.__dict__[name] for owner, name in owners]
    threads.install()
    spanline.instrument("threads")
    try:
        assert [owner.__dict__[name] for owner, name in owners] == wrapped
        assert all(w is not b and w.__wrapped__ is b for w, b in zip(wrapped, before, strict=True))
    finally:
        threads.uninstall()
        spanline.uninstrument("threads")
    assert all(
        owner.__dict__[name] is original
        for (owner, name), original in zip(owners, before, strict=True)
    )
    threads.uninstall()  # not installed: nothing happens
    assert threading.Thread.__dict__["start"] is before[0]


def test_a_context_of_the_threads_own_wins_over_the_captured_one() -> None:
    # Python 3.14's Thread(context=...) runs run() in a context given by the caller;
    # before 3.14 a thread's context is always empty, so the helper is driven directly.
    theirs: contextvars.ContextVar[str] = contextvars.ContextVar("theirs")
    ours: contextvars.ContextVar[str] = contextvars.ContextVar("ours")
    captured = contextvars.Context()
    captured.run(theirs.set, "captured")
    captured.run(ours.set, "captured")
    given = contextvars.Context()
    given.run(theirs.set, "given")
    seen: list[tuple[str, str]] = []

    def run() -> None:
        seen.append((theirs.get(), ours.get()))

    given.run(threads._run_in, captured, run)
    assert seen == [("given", "captured")]
    assert ours not in given  # what was added is taken away again


# -- the documentation ---------------------------------------------------------------------


def test_the_integrations_page_examples_run(spanline_capture: Capture) -> None:
    text = (ROOT / "docs/integrations.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)
    assert blocks
    namespace: dict[str, object] = {"__name__": "docs_integrations"}
    try:
        for block in blocks:
            exec(compile(block, "docs/integrations.md", "exec"), namespace)  # noqa: S102
    finally:
        spanline.uninstrument("threads")


def test_the_integrations_page_lists_every_integration() -> None:
    text = (ROOT / "docs/integrations.md").read_text()
    with pytest.raises(ValueError, match="available: ") as unknown:
        spanline.instrument("no-such-integration")
    names = str(unknown.value).split("available: ")[1].split(", ")
    assert "threads" in names
    for name in names:
        assert f"`{name}`" in text, f"{name} missing from docs/integrations.md"
