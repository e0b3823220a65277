"""A scenario run twice by tests/test_native.py, with the compiled span lifecycle
(``spanline/_csrc/span.c``) and with ``SPANLINE_NO_ACCEL=1``: every span it makes
is printed as JSON, with sequential ids and a fake clock, so the two runs must print
the same text."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator

import spanline
from spanline.core import clock, ids
from spanline.core.context import current
from spanline.testing import Capture
from spanline.testing.determinism import SequentialIds


def scenario() -> None:
    with spanline.span("root", meta={"m": 1}) as root:
        root.set_attribute("a", 1)
        with spanline.span("child"):
            spanline.record("k", "v")
        with root:  # re-entered: the same span, entered again
            with spanline.span("grandchild"):
                pass
    try:
        with spanline.span("fails"):
            raise ValueError("boom")
    except ValueError:
        pass
    with spanline.span("snap", context={"x": 1}) as snap:
        snap.record("y", 2)
    with spanline.start_trace(actor={"type": "user", "id": 7}):

        @spanline.operation
        def place() -> None:
            with spanline.span("inside operation"):
                pass

        place()

    spanline.configure(enabled=False)
    with spanline.span("not recorded"):
        pass
    spanline.configure(enabled=True, sampler="always_off")
    with spanline.span("sampled out"):
        pass
    spanline.configure(sampler="parentbased_always_on")
    with spanline.Span("server", kind=spanline.SpanKind.SERVER), spanline.Span("client", None):
        pass
    bad_calls: list[tuple[tuple[object, ...], dict[str, object]]] = [
        ((b"name",), {}),
        (("n",), {"bogus": 1}),
        (("n", None, None, spanline.SpanKind.INTERNAL, None, 0, "extra"), {}),
    ]
    for args, kwargs in bad_calls:
        try:
            spanline.Span(*args, **kwargs)  # type: ignore[arg-type]
        except TypeError as error:
            print("rejected:", error)
    span = spanline.Span("entered twice, exited thrice")
    with span:
        pass
    span.__exit__(None, None, None)

    def steps() -> Iterator[int]:
        with spanline.span("generator"):
            yield 1
            yield 2

    iterator = steps()
    next(iterator)
    finisher = threading.Thread(target=lambda: list(iterator))  # ends in another context
    finisher.start()
    finisher.join()  # this context still points at the span: last, then


def _state(span: spanline.Span) -> str:
    token = type(getattr(span, "_token", "unset")).__name__
    is_current = spanline.current_span() is span
    return f"token={token} end={getattr(span, '_end', None)} current={is_current}"


def edge_cases(fake_clock: Callable[[], int], fake_random: Callable[[], int]) -> None:
    """Failures inside the lifecycle: the state left behind must be the same."""

    def failing() -> int:
        raise RuntimeError("source failed")

    span = spanline.span("clock fails at exit")
    span.__enter__()
    clock.set_clock(failing)
    try:
        span.__exit__(None, None, None)
    except RuntimeError as error:
        print("exit raised:", error, _state(span))
    clock.set_clock(fake_clock)
    span.__exit__(None, None, None)  # already closed: nothing more happens
    print("second exit:", _state(span))
    current.set(None)

    ids.set_random_source(failing)
    span = spanline.span("random fails at enter")
    try:
        span.__enter__()
    except RuntimeError as error:
        print("enter raised:", error, hasattr(span, "_trace"), span._start)
    ids.set_random_source(fake_random)
    current.set(None)

    draws: list[int] = []

    def counted_random() -> int:
        draws.append(fake_random())
        return draws[-1]

    ids.set_random_source(counted_random)
    clock.set_clock(lambda: 1.5e18)  # type: ignore[arg-type, return-value]
    span = spanline.span("a float clock at a root")  # the shift fails before the draw
    try:
        span.__enter__()
    except TypeError as error:
        print("float clock raised:", error, "draws:", len(draws), span._start)
    clock.set_clock(fake_clock)
    ids.set_random_source(fake_random)
    current.set(None)

    span = spanline.span("exit with four arguments")
    with span:
        try:
            span.__exit__(None, None, None, None)  # type: ignore[call-arg]
        except TypeError as error:
            print("rejected:", error)

    span = spanline.span("clock exits the span itself")
    span.__enter__()
    reentered = []

    def exiting_clock() -> int:
        if not reentered:
            reentered.append(True)
            span.__exit__(None, None, None)
        return fake_clock()

    clock.set_clock(exiting_clock)
    span.__exit__(None, None, None)
    clock.set_clock(fake_clock)
    print("re-entrant exit:", _state(span))


def main() -> None:
    capture = Capture()
    fake_clock = capture.deterministic()
    fake_random = SequentialIds(10_000)
    ids.set_random_source(fake_random)
    spanline.tracer.add_processor(capture)
    scenario()
    edge_cases(fake_clock, fake_random)
    rows = [
        {
            "name": s.name,
            "id": s.id,
            "trace": s.trace_id,
            "parent": s.parent_id,
            "start": s.start_ns,
            "end": s.end_ns,
            "status": int(s.status),
            "attributes": s.attributes,
            "records": s.records,
            "events": [e.name for e in s.events],
            "children": [c.name for c in s.children],
            "actor": s.actor,
        }
        for s in capture.spans
    ]
    rows.append({"roots kept": [s.name for s in spanline.tracer.completed]})
    print(json.dumps(rows, sort_keys=True, default=str))


if __name__ == "__main__":
    main()
