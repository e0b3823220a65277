from __future__ import annotations

import asyncio
import concurrent.futures
import random
import threading

import spanline
from spanline.testing import Capture


def test_ten_thousand_asyncio_tasks_each_see_their_own_trace(spanline_capture: Capture) -> None:
    spanline.configure(ring_size=20_000)
    mismatches: list[int] = []

    async def request(n: int) -> None:
        with spanline.start_trace(actor={"type": "user", "id": n}) as trace_id:
            with spanline.span(f"req{n}"):
                for _ in range(3):
                    await asyncio.sleep(0)
                    if spanline.trace_id() != trace_id or spanline.actor() != {
                        "type": "user",
                        "id": str(n),
                    }:
                        mismatches.append(n)
                    with spanline.span("step") as step:
                        await asyncio.sleep(0)
                    if step.trace_id != trace_id:
                        mismatches.append(n)

    async def main() -> None:
        await asyncio.gather(*(request(n) for n in range(10_000)))

    asyncio.run(main())
    assert mismatches == []
    roots = spanline.tracer.completed
    assert len(roots) == 10_000
    for root in roots:
        assert len(root.children) == 3
        assert root.actor is not None
        assert root.name == f"req{root.actor['id']}"


def test_fifty_threads_each_see_their_own_trace(spanline_capture: Capture) -> None:
    spanline.configure(ring_size=10_000)
    mismatches: list[int] = []
    barrier = threading.Barrier(50)

    def worker(n: int) -> None:
        barrier.wait()
        rng = random.Random(n)
        for i in range(40):
            with spanline.start_trace(actor={"type": "thread", "id": n}) as trace_id:
                with spanline.span(f"w{n}-{i}"):
                    if rng.random() < 0.5:
                        threading.Event().wait(0.0005)
                    if spanline.trace_id() != trace_id or spanline.actor() != {
                        "type": "thread",
                        "id": str(n),
                    }:
                        mismatches.append(n)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert mismatches == []
    assert len(spanline.tracer.completed) == 2000
    for root in spanline.tracer.completed:
        assert root.actor is not None
        assert root.name.startswith(f"w{root.actor['id']}-")


def test_wrap_carries_the_trace_into_threads_and_pools(spanline_capture: Capture) -> None:
    def child_work(label: str) -> str | None:
        with spanline.span(label):
            return spanline.trace_id()

    with spanline.start_trace(actor={"type": "user", "id": 1}) as trace_id:
        with spanline.span("parent") as parent:
            thread_result: list[str | None] = []
            t = threading.Thread(
                target=spanline.wrap(lambda: thread_result.append(child_work("in-thread")))
            )
            t.start()
            t.join()
            with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
                pooled = list(pool.map(spanline.wrap(child_work), ["p1", "p2", "p3"]))
    assert thread_result == [trace_id]
    assert pooled == [trace_id] * 3
    assert sorted(c.name for c in parent.children) == ["in-thread", "p1", "p2", "p3"]
    # without wrap, a thread starts outside the trace
    bare: list[str | None] = []
    with spanline.start_trace():
        t = threading.Thread(target=lambda: bare.append(spanline.trace_id()))
        t.start()
        t.join()
    assert bare == [None]
