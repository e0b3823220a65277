"""The public surface is a contract: this test fails when it changes by accident."""

from __future__ import annotations

import spanline

EXPECTED = {
    "ConfigError",
    "Event",
    "EventRouter",
    "InvalidPayloadError",
    "NoopSpan",
    "Operation",
    "Recorder",
    "Settings",
    "Span",
    "SpanEvent",
    "SpanKind",
    "SpanProcessor",
    "StatusCode",
    "TraceBackend",
    "Tracer",
    "__version__",
    "actor",
    "configure",
    "current_id",
    "current_span",
    "deliver",
    "dump",
    "frames",
    "handler",
    "instrument",
    "operation",
    "publish",
    "record",
    "restore",
    "settings",
    "shutdown",
    "span",
    "start_trace",
    "stats",
    "system",
    "trace_id",
    "trace_string",
    "tracer",
    "uninstrument",
    "unsubscribe",
    "wrap",
}


def test_public_surface_is_exactly_the_documented_one() -> None:
    assert set(spanline.__all__) == EXPECTED
    for name in spanline.__all__:
        assert hasattr(spanline, name), name


def test_every_public_callable_has_a_docstring() -> None:
    for name in spanline.__all__:
        obj = getattr(spanline, name)
        if callable(obj):
            assert (obj.__doc__ or "").strip(), f"spanline.{name} has no docstring"


def test_import_has_no_third_party_dependencies() -> None:
    import subprocess
    import sys

    code = (
        "import sys, spanline; "
        "roots = {m.split('.')[0] for m in sys.modules}; "
        "std = set(sys.stdlib_module_names) | {'spanline', '__main__', 'sitecustomize'}; "
        "print(sorted(r for r in roots if r not in std and not r.startswith('_')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert out == "[]"
