"""OpenTelemetry API interop, each case in a fresh interpreter: OpenTelemetry picks its
runtime context on first import, so a shared pytest process cannot test it honestly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any


def run(code: str, **env: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_spans_from_the_otel_api_join_spanline_trees_both_ways() -> None:
    result = run("""
        import json, spanline, spanline.otel
        spanline.otel.install()
        from opentelemetry import trace
        tracer = trace.get_tracer("my.library", "2.1")
        with spanline.start_trace(actor={"type": "user", "id": 5}):
            with spanline.span("outer") as outer:
                current = trace.get_current_span()
                with tracer.start_as_current_span("otel-child",
                                                  attributes={"a": 1}) as child:
                    child.set_attribute("b", "x")
                    child.add_event("hello")
                    with spanline.span("grandchild"):
                        inner = trace.get_current_span()
        root = spanline.tracer.last_completed
        otel_child = root.children[0]
        print(json.dumps({
            "current_is_outer": current.get_span_context().span_id == outer.span_id,
            "current_trace": f"{current.get_span_context().trace_id:032x}" == outer.trace_hex,
            "tree": [root.name, otel_child.name, otel_child.children[0].name],
            "attrs": otel_child.attributes,
            "events": [e.name for e in otel_child.events],
            "inner_is_grandchild": inner.get_span_context().span_id
                == otel_child.children[0].span_id,
            "actor": otel_child.actor,
        }))
    """)
    assert result == {
        "current_is_outer": True,
        "current_trace": True,
        "tree": ["outer", "otel-child", "grandchild"],
        "attrs": {"otel.scope.name": "my.library", "otel.scope.version": "2.1", "a": 1, "b": "x"},
        "events": ["hello"],
        "inner_is_grandchild": True,
        "actor": {"type": "user", "id": "5"},
    }


def test_otel_propagators_see_spanline_context() -> None:
    result = run("""
        import json, spanline, spanline.otel
        spanline.otel.install()
        from opentelemetry import propagate, context
        with spanline.span("client") as client:
            headers = {}
            propagate.inject(headers)
        incoming = propagate.extract(
            {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
        token = context.attach(incoming)
        with spanline.span("server-work") as work:
            pass
        context.detach(token)
        print(json.dumps({
            "traceparent": headers["traceparent"],
            "expected": f"00-{client.trace_hex}-{client.span_hex}-01",
            "continued_trace": work.trace_hex,
            "continued_parent": work.parent_id,
            "after_detach": spanline.trace_id(),
        }))
    """)
    assert result["traceparent"] == result["expected"]
    assert result["continued_trace"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert result["continued_parent"] == "00f067aa0ba902b7"
    assert result["after_detach"] is None


def test_a_real_instrumentation_package_from_pypi() -> None:
    result = run("""
        import json, sqlite3, spanline, spanline.otel
        spanline.otel.install()
        from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
        SQLite3Instrumentor().instrument()

        class Report(spanline.Operation):
            def perform(self):
                db = sqlite3.connect(":memory:")
                cur = db.cursor()
                cur.execute("CREATE TABLE t (x INTEGER)")
                cur.execute("INSERT INTO t VALUES (?)", (42,))
                cur.execute("SELECT x FROM t")
                return cur.fetchall()

        with spanline.start_trace(actor={"type": "system", "name": "nightly"}):
            rows = Report().call()
        root = spanline.tracer.last_completed
        print(json.dumps({
            "rows": rows,
            "root": root.name,
            "children": [c.name for c in root.children],
            "kinds": sorted({c.kind.name for c in root.children}),
            "statement": root.children[-1].attributes.get("db.statement"),
            "same_trace": {c.trace_id for c in root.children} == {root.trace_id},
        }))
    """)
    assert result["rows"] == [[42]]
    assert result["root"] == "Report"
    assert len(result["children"]) == 3  # one CLIENT span per statement, under the operation
    assert result["kinds"] == ["CLIENT"]
    assert result["statement"] == "SELECT x FROM t"
    assert result["same_trace"] is True


def test_late_install_warns_and_still_records_api_spans() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
        import opentelemetry.context  # imported first: too late to choose the context
        import spanline, spanline.otel
        spanline.otel.install()
        from opentelemetry import trace
        with trace.get_tracer("x").start_as_current_span("api-span"):
            pass
        print(spanline.tracer.last_completed.name)
    """),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "OTEL_PYTHON_CONTEXT"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "api-span"
    assert "OTEL_PYTHON_CONTEXT=spanline" in done.stderr


def test_tracestate_empty_contexts_and_threads() -> None:
    result = run("""
        import json, threading, spanline, spanline.otel
        spanline.otel.install()
        from opentelemetry import context, propagate, trace
        from opentelemetry.context import Context
        tracer = trace.get_tracer("t")
        incoming = propagate.extract({
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "tracestate": "vendor=abc123,other=x"})
        token = context.attach(incoming)
        with spanline.span("handler"):
            out = {}
            propagate.inject(out)
        context.detach(token)
        with spanline.span("outer") as outer:
            empty = context.attach(Context())  # "no current span": a new root
            fresh = tracer.start_span("fresh")
            fresh_is_root = fresh.spanline_span.parent is None
            fresh.end()
            context.detach(empty)
        seen = {}
        with spanline.start_trace(actor={"type": "user", "id": 7}, trace_id="req-42"):
            spanline.configure(enabled=False)  # an unrecorded trace: a frame, not a span
            @spanline.operation
            def work():
                carried = context.get_current()
                def worker():
                    tok = context.attach(carried)
                    seen["trace"] = spanline.trace_id()
                    seen["actor"] = spanline.actor()
                    context.detach(tok)
                t = threading.Thread(target=worker); t.start(); t.join()
            work()
        print(json.dumps({"tracestate": out.get("tracestate"), "fresh_is_root": fresh_is_root,
                          "seen": seen}))
    """)
    assert result["tracestate"] == "vendor=abc123,other=x"
    assert result["fresh_is_root"] is True
    assert result["seen"] == {"trace": "req-42", "actor": {"type": "user", "id": "7"}}


def test_a_database_error_leaving_an_otel_span_keeps_its_message_out() -> None:
    # OpenTelemetry's use_span writes "Type: message" as the status description
    result = run("""
        import json, sqlite3, spanline, spanline.otel
        spanline.otel.install()
        from opentelemetry import trace
        tracer = trace.get_tracer("my.library")
        try:
            with tracer.start_as_current_span("import"):
                sqlite3.connect(":memory:").execute("SELECT 'card-4242-secret")
        except sqlite3.Error:
            pass
        try:
            with tracer.start_as_current_span("parse"):
                raise ValueError("bad row 7")
        except ValueError:
            pass
        spans = [spanline.tracer.completed[-2], spanline.tracer.completed[-1]]
        print(json.dumps([[s.status_message, [sorted(e.attributes) for e in s.events],
                           "card-4242" in json.dumps(s.to_dict())] for s in spans]))
    """)
    assert result == [
        ["OperationalError", [["exception.stacktrace", "exception.type"]], False],
        [
            "ValueError: bad row 7",
            [["exception.message", "exception.stacktrace", "exception.type"]],
            False,
        ],
    ]
