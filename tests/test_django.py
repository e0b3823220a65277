"""Django route names: a real Django project (configured in-process, URLs in
tests/django_urls.py) served on 127.0.0.1 by the standard library's WSGI server and
by uvicorn (ASGI), called with real HTTP requests."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import django
import pytest
import uvicorn
from django.conf import settings
from django.test.utils import override_settings
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from spanline import SpanKind, StatusCode
from spanline.integrations.django import get_asgi_application, get_wsgi_application
from spanline.integrations.wsgi import SpanlineMiddleware
from spanline.testing import Capture
from tests.receiver import free_port

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
ROUTE_MIDDLEWARE = "spanline.integrations.django.SpanlineRouteMiddleware"
PROJECT = {
    "DEBUG": False,
    "ALLOWED_HOSTS": ["127.0.0.1", "localhost"],
    "ROOT_URLCONF": "tests.django_urls",
    "MIDDLEWARE": [ROUTE_MIDDLEWARE],
}


@pytest.fixture(scope="module", autouse=True)
def project() -> Iterator[None]:
    if not settings.configured:
        settings.configure(SECRET_KEY="spanline-tests", INSTALLED_APPS=[], DATABASES={})
        django.setup()
    with override_settings(**PROJECT):  # whatever else configured Django first
        yield


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def serve() -> Iterator[Callable[[Any], str]]:
    servers = []

    def start(app: Any) -> str:
        server = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
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
def base_url(serve: Callable[[Any], str]) -> str:
    return serve(get_wsgi_application())


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def server_span(capture: Capture, path: str) -> Any:
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
    status, body = get(f"{base_url}/orders/7/", {"traceparent": f"00-{TRACE}-{PARENT}-01"})
    assert (status, body) == (200, "order 7")
    span = server_span(spanline_capture, "/orders/7/")
    assert span.name == "GET /orders/<int:order_id>/"
    assert span.attributes["http.route"] == "/orders/<int:order_id>/"
    assert span.attributes["http.request.method"] == "GET"
    assert span.attributes["http.response.status_code"] == 200
    assert span.status == StatusCode.UNSET
    assert span.trace_hex == TRACE
    assert span.parent_id == PARENT
    assert [c.name for c in span.children] == ["load-order"]


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/", "/"),
        ("/api/items/pen/", "/api/items/<slug:name>/"),  # include(): the whole pattern
        ("/archive/2024/", "^archive/(?P<year>[0-9]{4})/$"),  # re_path(): Django's regex
        ("/async/orders/2/", "/async/orders/<int:order_id>/"),  # an async view
    ],
)
def test_route_syntax(base_url: str, spanline_capture: Capture, path: str, route: str) -> None:
    assert get(f"{base_url}{path}")[0] == 200
    span = server_span(spanline_capture, path)
    assert span.name == f"GET {route}"
    assert span.attributes["http.route"] == route
    assert span.parent_id is None  # no traceparent: a new trace


def test_unmatched_path_keeps_the_bare_method(base_url: str, spanline_capture: Capture) -> None:
    assert get(f"{base_url}/no/such/page/")[0] == 404
    span = server_span(spanline_capture, "/no/such/page/")
    assert span.name == "GET"
    assert "http.route" not in span.attributes
    assert span.status == StatusCode.UNSET


def test_5xx_marks_the_span_error_with_the_handled_exception(
    base_url: str, spanline_capture: Capture
) -> None:
    assert get(f"{base_url}/boom/")[0] == 500
    boom = server_span(spanline_capture, "/boom/")
    assert boom.name == "GET /boom/"
    assert boom.status == StatusCode.ERROR
    assert boom.status_message == "RuntimeError: view exploded"
    assert [e.attributes["exception.message"] for e in boom.events] == ["view exploded"]
    assert get(f"{base_url}/unavailable/")[0] == 503
    unavailable = server_span(spanline_capture, "/unavailable/")
    assert unavailable.status == StatusCode.ERROR
    assert unavailable.attributes["http.response.status_code"] == 503
    assert unavailable.events == []


def test_application_root_is_part_of_the_route(
    serve: Callable[[Any], str], spanline_capture: Capture
) -> None:
    from django.core.wsgi import get_wsgi_application as django_application

    def not_found(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("404 Not Found", [])
        return [b""]

    base = serve(
        SpanlineMiddleware(DispatcherMiddleware(not_found, {"/shop": django_application()}))
    )
    assert get(f"{base}/shop/orders/3/") == (200, "order 3")
    span = server_span(spanline_capture, "/shop/orders/3/")
    assert span.name == "GET /shop/orders/<int:order_id>/"


def test_without_spanline_around_the_app_the_middleware_does_nothing(
    serve: Callable[[Any], str], spanline_capture: Capture
) -> None:
    from django.core.wsgi import get_wsgi_application as django_application

    base = serve(django_application())
    assert get(f"{base}/orders/1/") == (200, "order 1")
    assert get(f"{base}/boom/")[0] == 500
    assert spanline_capture.names() == ["load-order"]


def test_asgi_requests_get_their_route_too(spanline_capture: Capture) -> None:
    port = free_port()
    config = uvicorn.Config(
        get_asgi_application(), host="127.0.0.1", port=port, log_level="critical", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            time.sleep(0.01)
        base = f"http://127.0.0.1:{port}"
        headers = {"traceparent": f"00-{TRACE}-{PARENT}-01"}
        assert get(f"{base}/async/orders/5/", headers) == (200, "async order 5")
        assert get(f"{base}/orders/6/") == (200, "order 6")
    finally:
        server.should_exit = True
        thread.join(10)
    async_span = server_span(spanline_capture, "/async/orders/5/")
    assert async_span.name == "GET /async/orders/<int:order_id>/"
    assert async_span.attributes["http.route"] == "/async/orders/<int:order_id>/"
    assert async_span.trace_hex == TRACE
    assert [c.name for c in async_span.children] == ["load-order"]
    assert server_span(spanline_capture, "/orders/6/").name == "GET /orders/<int:order_id>/"
