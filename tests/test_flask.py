"""Flask route names: a real Flask app behind the WSGI middleware, served by
werkzeug's WSGI server on 127.0.0.1 and called with real HTTP requests."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Blueprint, Flask, abort
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server

import spanline
from spanline import SpanKind, StatusCode
from spanline.integrations.wsgi import SpanlineMiddleware
from spanline.testing import Capture

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
SECRET = "card-4242-never-in-a-span"


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/orders/<int:order_id>")
    def order(order_id: int) -> str:
        with spanline.span("load-order"):
            return f"order {order_id}"

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("view exploded")

    @app.get("/duplicate")
    def duplicate() -> str:
        # a driver's message quotes the value (here sqlite3's, for a literal statement)
        sqlite3.connect(":memory:").execute(f"SELECT '{SECRET}")
        return "unreachable"

    @app.get("/unavailable")
    def unavailable() -> str:
        abort(503)

    items = Blueprint("items", __name__, url_prefix="/api")

    @items.get("/items/<name>")
    def item(name: str) -> str:
        return name

    app.register_blueprint(items)
    return app


@pytest.fixture
def serve() -> Iterator[Callable[[Any], str]]:
    servers = []

    def start(wsgi_app: Any) -> str:
        server = make_server("127.0.0.1", 0, wsgi_app)
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def base_url(serve: Callable[[Any], str]) -> Iterator[str]:
    app = create_app()
    app.wsgi_app = SpanlineMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    spanline.instrument("flask")
    yield serve(app)
    spanline.uninstrument("flask")


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def server_span(capture: Capture, path: str) -> spanline.Span:
    """The SERVER span of ``path`` (it ends when the server closes the response,
    which may be just after the client has read it)."""
    for _ in range(1000):
        for span in capture.spans:
            if span.kind == SpanKind.SERVER and span.attributes.get("url.path") == path:
                return span
        time.sleep(0.01)
    raise AssertionError(f"no server span for {path}; have {capture.names()}")


def test_span_is_named_after_the_route_and_continues_the_trace(
    base_url: str, spanline_capture: Capture
) -> None:
    status, body = get(f"{base_url}/orders/7", {"traceparent": f"00-{TRACE}-{PARENT}-01"})
    assert (status, body) == (200, "order 7")
    span = server_span(spanline_capture, "/orders/7")
    assert span.name == "GET /orders/<int:order_id>"
    assert span.attributes["http.route"] == "/orders/<int:order_id>"
    assert span.attributes["http.request.method"] == "GET"
    assert span.attributes["http.response.status_code"] == 200
    assert span.status == StatusCode.UNSET
    assert span.trace_hex == TRACE
    assert span.parent_id == PARENT
    assert [c.name for c in span.children] == ["load-order"]


def test_blueprint_prefix_is_part_of_the_route(base_url: str, spanline_capture: Capture) -> None:
    assert get(f"{base_url}/api/items/pen") == (200, "pen")
    span = server_span(spanline_capture, "/api/items/pen")
    assert span.name == "GET /api/items/<name>"
    assert span.parent_id is None  # no traceparent: a new trace


def test_unmatched_path_keeps_the_bare_method(base_url: str, spanline_capture: Capture) -> None:
    assert get(f"{base_url}/no/such/page")[0] == 404
    span = server_span(spanline_capture, "/no/such/page")
    assert span.name == "GET"
    assert "http.route" not in span.attributes
    assert span.attributes["http.response.status_code"] == 404
    assert span.status == StatusCode.UNSET  # a 4xx is the client's problem


def test_5xx_marks_the_span_error_with_the_handled_exception(
    base_url: str, spanline_capture: Capture
) -> None:
    assert get(f"{base_url}/boom")[0] == 500
    boom = server_span(spanline_capture, "/boom")
    assert boom.name == "GET /boom"
    assert boom.status == StatusCode.ERROR
    assert boom.status_message == "RuntimeError: view exploded"
    assert [e.attributes["exception.message"] for e in boom.events] == ["view exploded"]
    assert get(f"{base_url}/unavailable")[0] == 503
    unavailable = server_span(spanline_capture, "/unavailable")
    assert unavailable.status == StatusCode.ERROR
    assert unavailable.attributes["http.response.status_code"] == 503
    assert unavailable.events == []  # abort() is an answer, not a failure to record


def test_a_handled_database_error_keeps_its_message_out_of_the_span(
    base_url: str, spanline_capture: Capture
) -> None:
    assert get(f"{base_url}/duplicate")[0] == 500
    span = server_span(spanline_capture, "/duplicate")
    assert span.status == StatusCode.ERROR
    assert span.status_message == "OperationalError"
    (event,) = span.events
    assert event.attributes["exception.type"] == "sqlite3.OperationalError"
    assert "exception.message" not in event.attributes
    assert SECRET not in json.dumps([s.to_dict() for s in spanline_capture.spans])


def test_application_root_is_part_of_the_route(
    serve: Callable[[Any], str], spanline_capture: Capture
) -> None:
    app = create_app()
    mounted = SpanlineMiddleware(DispatcherMiddleware(create_app(), {"/shop": app}))
    spanline.instrument("flask")
    spanline.instrument("flask")  # twice: still one route, one exception event
    try:
        base = serve(mounted)
        assert get(f"{base}/shop/orders/3") == (200, "order 3")
        assert get(f"{base}/shop/boom")[0] == 500
    finally:
        spanline.uninstrument("flask")
    span = server_span(spanline_capture, "/shop/orders/3")
    assert span.name == "GET /shop/orders/<int:order_id>"
    assert len(server_span(spanline_capture, "/shop/boom").events) == 1


def test_uninstrument_disconnects(serve: Callable[[Any], str], spanline_capture: Capture) -> None:
    app = create_app()
    app.wsgi_app = SpanlineMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    spanline.instrument("flask")
    spanline.uninstrument("flask")
    base = serve(app)
    assert get(f"{base}/orders/1")[0] == 200
    assert get(f"{base}/boom")[0] == 500
    assert server_span(spanline_capture, "/orders/1").name == "GET"
    boom = server_span(spanline_capture, "/boom")
    assert boom.status == StatusCode.ERROR  # from the status alone
    assert boom.events == []


def test_propagated_exception_is_recorded_once(
    serve: Callable[[Any], str], spanline_capture: Capture
) -> None:
    app = create_app()
    app.config["PROPAGATE_EXCEPTIONS"] = True  # Flask re-raises: the middleware sees it
    app.wsgi_app = SpanlineMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    spanline.instrument("flask")
    try:
        assert get(f"{serve(app)}/boom")[0] == 500  # werkzeug's server answers it
    finally:
        spanline.uninstrument("flask")
    boom = server_span(spanline_capture, "/boom")
    assert boom.name == "GET /boom"
    assert boom.status == StatusCode.ERROR
    assert [e.attributes["exception.message"] for e in boom.events] == ["view exploded"]
