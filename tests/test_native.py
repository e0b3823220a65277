"""The optional compiled helpers (``spanline._accel``) are built and can be switched off."""

from __future__ import annotations

import os
import subprocess
import sys

from spanline import _native
from spanline.export import otlp_wire
from spanline.store import convert


def test_the_compiled_helpers_are_built_and_used_here() -> None:
    # hatch_build.py compiles them when the package is installed; a missing compiler
    # would silently cost the speed, so CI checks that they really are in use.
    module = _native.load()
    assert module is not None
    assert otlp_wire.ACCELERATED
    assert otlp_wire._accel is module
    assert convert._accel is module


def test_spanline_no_accel_selects_the_python_code() -> None:
    code = (
        "import spanline.export.otlp_wire as w, spanline.store.convert as c;"
        "print(w.ACCELERATED, c._accel)"
    )
    for value, expected in (("1", "False None"), ("on", "False None"), ("0", "True <module")):
        env = {**os.environ, "SPANLINE_NO_ACCEL": value}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.startswith(expected), (value, out.stdout)


def test_an_interrupt_from_python_code_is_not_swallowed() -> None:
    # The compiled helpers fall back to Python for what they cannot do, and skip a
    # span whose fallback raises an Exception -- never a KeyboardInterrupt.
    import pytest

    import spanline
    from spanline.testing import Capture

    capture = Capture()
    spanline.tracer.add_processor(capture)
    try:
        with spanline.span("s"):
            pass
    finally:
        spanline.tracer.remove_processor(capture)
    (span,) = capture.spans
    span.name = None  # type: ignore[assignment] - the fast paths give up on it

    def interrupted(span: object) -> bytes:
        raise KeyboardInterrupt

    module = _native.load()
    assert module is not None
    with pytest.raises(KeyboardInterrupt):
        module.encode_spans([span], otlp_wire._trace_shared, otlp_wire._extras, interrupted, [])
    span._type = 99  # the row converter gives up on an unknown span type
    with pytest.raises(KeyboardInterrupt):
        module.rows_from_spans([span], None, None, None, None, interrupted, None)
    # an ordinary exception only skips the span
    skipped: list[object] = []
    assert (
        module.encode_spans([span], otlp_wire._trace_shared, otlp_wire._extras, str, skipped) == b""
    )
    assert skipped == [span]


def test_a_lazy_trace_id_is_drawn_as_trace_id_would() -> None:
    # Root spans leave their trace id undrawn (the hot path skips it); the compiled
    # helpers draw it on the export thread under Trace.id's own lock and random
    # source, so every reader -- C or Python, any thread -- sees the same id.
    import threading

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    import spanline
    from spanline.core import ids

    # no processor: the ids stay undrawn (with one, they are drawn at the start)
    from spanline.testing import reset_all

    reset_all()
    for i in range(20):
        with spanline.span(f"root{i}"):
            pass
    spans = list(spanline.tracer.completed)[-20:]
    assert [span.name for span in spans] == [f"root{i}" for i in range(20)]
    assert all(span._trace._id == 0 for span in spans)  # not drawn yet
    ids.set_random_source(lambda: 0xABCDEF)
    try:
        seen: list[int] = []
        readers = [
            threading.Thread(target=lambda s=span: seen.append(s._trace.id)) for span in spans
        ]
        for reader in readers[::2]:
            reader.start()
        body = otlp_wire.encode_request_bytes(spans, {})
        rows = convert.row_tuples(spans, None)
        for reader in readers[1::2]:
            reader.start()
        for reader in readers:
            reader.join()
    finally:
        ids.set_random_source(None)
    decoded = ExportTraceServiceRequest.FromString(body).resource_spans[0].scope_spans[0].spans
    for span, encoded, row in zip(spans, decoded, rows, strict=True):
        assert span._trace.id & (2**64 - 1) == 0xABCDEF  # the configured random source
        assert encoded.trace_id.hex() == span.trace_hex == row[0]
        assert row[3] == span.trace_id
    assert sorted(seen) == sorted(span._trace.id for span in spans)


def _run(args: list[str], no_accel: bool) -> str:
    env = {**os.environ, "SPANLINE_NO_ACCEL": "1" if no_accel else "0"}
    out = subprocess.run(
        [sys.executable, *args], check=False, env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def test_the_compiled_span_lifecycle_makes_the_same_spans_as_python() -> None:
    # Span.__enter__/__exit__ come from spanline/_csrc/span.c when built; with fixed
    # ids and a fake clock, every span of the scenario must come out identical.
    from spanline.core.span import Span

    assert "SpanLifecycle" in {base.__name__ for base in Span.__mro__}
    scenario = os.path.join(os.path.dirname(__file__), "lifecycle_scenario.py")
    compiled = _run([scenario], no_accel=False)
    python = _run([scenario], no_accel=True)
    assert '"name": "generator"' in compiled
    assert compiled == python


def test_the_core_passes_on_the_python_code_alone() -> None:
    # The pure-Python path is what installs without a C compiler get: the core's
    # test modules run against it too (the rest of the suite runs compiled).
    modules = [
        "tests/test_span.py",
        "tests/test_trace.py",
        "tests/test_operation.py",
        "tests/test_concurrency.py",
        "tests/test_disabled.py",
        "tests/test_sampling.py",
        "tests/test_events.py",
        "tests/test_threads.py",
        "tests/test_collection.py",
        "tests/test_span_queue.py",
    ]
    root = os.path.dirname(os.path.dirname(__file__))
    out = _run(
        [
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            root,
            *(os.path.join(root, m) for m in modules),
        ],
        no_accel=True,
    )
    assert " passed" in out


def test_the_compiled_random_source_is_the_default_and_seeds_from_32_bytes() -> None:
    import pytest

    from spanline.core import ids

    module = _native.load()
    assert module is not None
    assert ids.new_random64 is module.random64
    draws = [module.random64() for _ in range(10_000)]
    assert all(0 <= value < 2**64 for value in draws)
    assert len(set(draws)) == len(draws)
    assert max(draws) >= 2**63  # the top bit is drawn too
    try:
        module.seed_random(bytes(range(32)))
        first = [module.random64() for _ in range(5)]
        module.seed_random(bytes(range(32)))
        assert [module.random64() for _ in range(5)] == first
        for bad in (b"short", bytes(32), "x" * 32):
            with pytest.raises(ValueError, match="seed_random"):
                module.seed_random(bad)
    finally:
        module.seed_random(os.urandom(32))


def test_the_span_lifecycle_draws_its_ids_from_the_compiled_source() -> None:
    # The compiled lifecycle recognizes the default source and draws without a call:
    # the trace id's low 64 bits, then the span id, in that order, as the Python
    # methods call ids.new_random64().
    import spanline
    from spanline.core import ids
    from spanline.testing import Capture

    module = _native.load()
    assert module is not None
    capture = Capture()
    spanline.tracer.add_processor(capture)  # a processor: the trace id is drawn at once
    seed = os.urandom(32)
    try:
        module.seed_random(seed)
        with spanline.span("root") as root:
            pass
        module.seed_random(seed)
        trace_low, span_id = module.random64() or 1, module.random64() or 1
    finally:
        spanline.tracer.remove_processor(capture)
        module.seed_random(os.urandom(32))
    trace_int = root._trace._id  # type: ignore[union-attr]
    assert trace_int & (2**64 - 1) == trace_low
    assert trace_int >> 80 == root.start_ns // 1_000_000
    assert (trace_int >> 64) & 0xFFFF == 0
    assert root._sid == span_id
    assert ids.trace_int_from_id(root.trace_id) == trace_int


def test_the_span_lifecycle_accepts_objects_that_are_not_modules() -> None:
    # span_configure takes the clock, ids and config as any objects with the right
    # attributes; the fast module-dict read applies to real modules only.  In a
    # child process: reconfiguring the lifecycle is process-wide.
    code = """
import types
import spanline
from spanline import _native
from spanline.core import clock, config, ids, span as span_module
from spanline.core.context import Node, Trace, current
from spanline.core.pipeline import PIPELINE
from spanline.testing import Capture

accel = _native.load()
fake_clock = types.SimpleNamespace(now_ns=lambda: 1_700_000_000_000_000_000)
fake_ids = types.SimpleNamespace(new_random64=lambda: 42)
accel.span_configure(
    span_module.Span, Node, Trace, span_module._Reentry, current,
    types.SimpleNamespace(settings=config.settings), fake_clock, fake_ids, PIPELINE,
    span_module.SpanKind.INTERNAL, *span_module._PY_METHODS,
)
spanline.tracer.add_processor(Capture())
with spanline.span("s") as s:
    pass
print(s.start_ns, s._sid, s._trace._id & 0xFFFF)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1700000000000000000", "42", "42"]
