"""The WSGI middleware against a real WSGI server (the standard library's wsgiref)
on 127.0.0.1."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

import spanline
from spanline import SpanKind, StatusCode
from spanline.integrations.wsgi import SpanlineMiddleware, set_route
from spanline.testing import Capture

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path.startswith("/orders/"):
        set_route(environ, "/orders/{id}")
        with spanline.span("db:load-order"):
            pass
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"order ", path.rsplit("/", 1)[1].encode()]
    if path == "/boom":
        raise RuntimeError("handler exploded")
    if path == "/unavailable":
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
        return [b"later"]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def chunks() -> Iterator[bytes]:
            for i in range(3):
                time.sleep(0.05)
                with spanline.span(f"chunk{i}"):
                    pass
                yield f"part{i};".encode()

        return chunks()
    start_response("404 Not Found", [])
    return [b""]


@pytest.fixture
def server() -> Iterator[str]:
    httpd: WSGIServer = make_server(
        "127.0.0.1", 0, SpanlineMiddleware(app), handler_class=QuietHandler
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_for(capture: Capture, name: str) -> spanline.Span:
    for _ in range(200):
        try:
            return capture.find(name)
        except LookupError:
            time.sleep(0.01)
    return capture.find(name)


def test_request_span_continues_the_callers_trace(server: str, spanline_capture: Capture) -> None:
    status, body = get(
        f"{server}/orders/7?token=secret",
        {"traceparent": f"00-{TRACE}-{PARENT}-01", "User-Agent": "pytest"},
    )
    assert (status, body) == (200, b"order 7")
    span = wait_for(spanline_capture, "GET /orders/{id}")
    assert span.kind == SpanKind.SERVER
    assert span.trace_hex == TRACE
    assert span.parent_id == PARENT
    assert span.attributes["http.request.method"] == "GET"
    assert span.attributes["http.route"] == "/orders/{id}"
    assert span.attributes["url.path"] == "/orders/7"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["server.port"] == int(server.rsplit(":", 1)[1])
    assert span.attributes["user_agent.original"] == "pytest"
    assert "url.query" not in span.attributes  # query strings may hold secrets
    assert span.status == StatusCode.UNSET
    assert [c.name for c in span.children] == ["db:load-order"]


def test_no_traceparent_starts_a_new_trace(server: str, spanline_capture: Capture) -> None:
    get(f"{server}/orders/1")
    get(f"{server}/orders/2")
    first, second = (s for s in spanline_capture.spans if s.name == "GET /orders/{id}")
    assert first.parent is None
    assert first.parent_id is None
    assert first.trace_id != second.trace_id


def test_exceptions_and_5xx_mark_the_span_error(server: str, spanline_capture: Capture) -> None:
    status, _ = get(f"{server}/boom")
    assert status == 500
    boom = wait_for(spanline_capture, "GET")
    assert boom.status == StatusCode.ERROR
    assert boom.events[0].attributes["exception.message"] == "handler exploded"
    status, _ = get(f"{server}/unavailable")
    assert status == 503
    unavailable = [
        s for s in spanline_capture.spans if s.attributes.get("url.path") == "/unavailable"
    ]
    assert unavailable[0].status == StatusCode.ERROR
    assert unavailable[0].attributes["http.response.status_code"] == 503


def test_streamed_body_is_inside_the_span(server: str, spanline_capture: Capture) -> None:
    status, body = get(f"{server}/stream")
    assert (status, body) == (200, b"part0;part1;part2;")
    span = next(
        s for s in [wait_for(spanline_capture, "GET")] if s.attributes.get("url.path") == "/stream"
    )
    assert [c.name for c in span.children] == ["chunk0", "chunk1", "chunk2"]
    assert span.end_ns >= span.children[-1].end_ns  # ended after the last chunk


def test_trusted_internal_callers_pass_their_actor(spanline_capture: Capture) -> None:
    seen: list[dict[str, str] | None] = []

    def who(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        seen.append(spanline.actor())
        start_response("200 OK", [])
        return [b""]

    headers = {
        "traceparent": f"00-{TRACE}-{PARENT}-01",
        "baggage": "spanline.actor.type=user,spanline.actor.id=42",
    }
    for trust in (False, True):
        httpd = make_server(
            "127.0.0.1", 0, SpanlineMiddleware(who, trust_actor=trust), handler_class=QuietHandler
        )
        thread = threading.Thread(target=httpd.handle_request)
        thread.start()
        get(f"http://127.0.0.1:{httpd.server_port}/", headers)
        thread.join(10)
        httpd.server_close()
    assert seen == [None, {"type": "user", "id": "42"}]
