"""``OTEL_PROPAGATORS`` / ``configure(propagators=...)``: which context formats
``inject``/``extract`` -- and so every integration -- write and read."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

import spanline
from spanline.integrations.wsgi import SpanlineMiddleware
from spanline.propagation import continue_trace, extract, inject
from spanline.testing import Capture

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
INCOMING = {
    "traceparent": f"00-{TRACE}-{PARENT}-01",
    "tracestate": "rojo=1",
    "baggage": "spanline.actor.type=user,spanline.actor.id=42",
}
USER = {"type": "user", "id": "42"}


def outgoing_headers() -> dict[str, str]:
    """What inject() writes inside a span of a trace that has an actor."""
    with spanline.start_trace(actor=USER), spanline.span("client"):
        headers: dict[str, str] = {}
        inject(headers)
    return headers


def continued(carrier: dict[str, str]) -> tuple[str | None, dict[str, str] | None]:
    """The trace (W3C hex) and actor a trusting boundary continues from ``carrier``."""
    with continue_trace(carrier, trust_actor=True), spanline.span("server") as server:
        return server.trace_hex, spanline.actor()


def test_default_is_tracecontext_and_baggage(spanline_capture: Capture) -> None:
    assert spanline.settings.propagators == ("tracecontext", "baggage")
    assert set(outgoing_headers()) == {"traceparent", "baggage"}
    assert continued(INCOMING) == (TRACE, USER)


def test_tracecontext_alone_carries_no_actor(spanline_capture: Capture) -> None:
    spanline.configure(propagators="tracecontext")
    assert set(outgoing_headers()) == {"traceparent"}
    assert extract(INCOMING, trust_actor=True) is not None
    assert continued(INCOMING) == (TRACE, None)


def test_baggage_alone_carries_the_actor_but_not_the_trace(spanline_capture: Capture) -> None:
    spanline.configure(propagators=["baggage"])
    headers = outgoing_headers()
    assert set(headers) == {"baggage"}
    assert extract(INCOMING) is None
    trace_hex, actor = continued(INCOMING)
    assert trace_hex != TRACE  # a new trace ...
    assert actor == USER  # ... for the trusted caller's actor
    with continue_trace(INCOMING):  # an untrusting boundary still ignores it
        assert spanline.actor() is None


@pytest.mark.parametrize("value", ["none", [], "none,"])
def test_none_writes_and_reads_nothing(spanline_capture: Capture, value: object) -> None:
    spanline.configure(propagators=value)  # type: ignore[arg-type]
    assert spanline.settings.propagators == ()
    assert outgoing_headers() == {}
    assert extract(INCOMING, trust_actor=True) is None
    trace_hex, actor = continued(INCOMING)
    assert trace_hex != TRACE
    assert actor is None


def test_environment_variable_is_read_and_argument_wins(
    spanline_capture: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # spanline_capture is requested first, so its reset runs after monkeypatch restored
    # the environment
    monkeypatch.setenv("OTEL_PROPAGATORS", " TraceContext , none ")
    assert spanline.configure().propagators == ("tracecontext",)
    assert set(outgoing_headers()) == {"traceparent"}
    assert spanline.configure(propagators="baggage,tracecontext").propagators == (
        "baggage",
        "tracecontext",
    )


@pytest.mark.parametrize("name", ["b3", "b3multi", "jaeger", "xray", "ottrace"])
def test_unimplemented_formats_are_rejected_by_name(
    spanline_capture: Capture, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv("OTEL_PROPAGATORS", f"tracecontext,{name}")
    with pytest.raises(spanline.ConfigError) as error:
        spanline.configure()
    assert str(error.value) == (
        f"OTEL_PROPAGATORS: propagator {name!r} is not supported by spanline, which speaks "
        "W3C Trace Context and W3C Baggage only; use one of tracecontext, baggage, none"
    )
    assert spanline.settings.propagators == ("tracecontext", "baggage")  # nothing changed
    with pytest.raises(spanline.ConfigError, match=f"propagator '{name}' is not supported"):
        spanline.configure(propagators=[name])


def test_unknown_names_and_bad_types_are_rejected(spanline_capture: Capture) -> None:
    with pytest.raises(spanline.ConfigError) as error:
        spanline.configure(propagators="w3c")
    assert str(error.value) == (
        "configure(propagators=...): propagator 'w3c' is not supported; "
        "use one of tracecontext, baggage, none"
    )
    with pytest.raises(spanline.ConfigError, match="must be a name or a list of names"):
        spanline.configure(propagators=42)  # type: ignore[arg-type]


def test_invalid_variable_at_import_warns_and_keeps_the_default() -> None:
    # a real interpreter: the import must not fail because of the environment
    env = {**os.environ, "OTEL_PROPAGATORS": "b3"}
    result = subprocess.run(
        [sys.executable, "-c", "import spanline; print(spanline.settings.propagators)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "('tracecontext', 'baggage')"
    assert "OTEL_PROPAGATORS: propagator 'b3' is not supported by spanline" in result.stderr


def server_spans(capture: Capture, count: int) -> list[spanline.Span]:
    """The SERVER spans, once ``count`` have ended (a WSGI span ends when the server
    closes the response, which may be just after the client has read it)."""
    for _ in range(1000):
        spans = [s for s in capture.spans if s.kind == spanline.SpanKind.SERVER]
        if len(spans) >= count:
            return spans
        time.sleep(0.01)
    raise AssertionError(f"expected {count} server spans, have {capture.names()}")


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


def test_http_integrations_follow_the_selection(spanline_capture: Capture) -> None:
    """A real urllib client and a real WSGI server on 127.0.0.1, both instrumented:
    with ``tracecontext`` alone the server continues the trace but gets no actor,
    even though it trusts its callers."""
    seen: list[tuple[str | None, dict[str, str] | None]] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        seen.append((environ.get("HTTP_BAGGAGE"), spanline.actor()))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    httpd = make_server(
        "127.0.0.1", 0, SpanlineMiddleware(app, trust_actor=True), handler_class=QuietHandler
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    spanline.instrument("urllib")
    try:
        for propagators in ("tracecontext,baggage", "tracecontext", "none"):
            spanline.configure(propagators=propagators)
            with spanline.start_trace(actor=USER), spanline.span(propagators):
                url = f"http://127.0.0.1:{httpd.server_port}/"
                with urllib.request.urlopen(url, timeout=10) as response:
                    assert response.read() == b"ok"
    finally:
        spanline.uninstrument("urllib")
        httpd.shutdown()
        httpd.server_close()
    assert seen == [
        ("spanline.actor.type=user,spanline.actor.id=42", USER),
        (None, None),
        (None, None),
    ]
    servers = server_spans(spanline_capture, 3)
    clients = {
        s.parent.name: s
        for s in spanline_capture.spans
        if s.kind == spanline.SpanKind.CLIENT and s.parent is not None
    }
    by_trace = {s.trace_hex: s for s in servers}
    assert clients["tracecontext,baggage"].trace_hex in by_trace
    assert clients["tracecontext"].trace_hex in by_trace
    assert clients["none"].trace_hex not in by_trace  # the server started its own trace
