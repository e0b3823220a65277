"""HTTP client integrations against a real HTTP server on 127.0.0.1 that echoes the
trace headers it received."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import requests

import spanline
from spanline import SpanKind, StatusCode
from spanline.testing import Capture


class Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 404 if self.path.startswith("/missing") else 200
        body = json.dumps(
            {"traceparent": self.headers.get("traceparent"), "baggage": self.headers.get("baggage")}
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def instrumented() -> Iterator[None]:
    spanline.instrument("urllib", "requests", "httpx")
    yield
    spanline.uninstrument("urllib", "requests", "httpx")


def _urllib(url: str) -> dict[str, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def _requests(url: str) -> dict[str, str]:
    return requests.get(url, timeout=10).json()  # type: ignore[no-any-return]


def _httpx(url: str) -> dict[str, str]:
    with httpx.Client() as client:
        return client.get(url).json()  # type: ignore[no-any-return]


def _httpx_async(url: str) -> dict[str, str]:
    async def call() -> dict[str, str]:
        async with httpx.AsyncClient() as client:
            return (await client.get(url)).json()  # type: ignore[no-any-return]

    return asyncio.run(call())


@pytest.mark.parametrize(
    "call",
    [_urllib, _requests, _httpx, _httpx_async],
    ids=["urllib", "requests", "httpx", "httpx-async"],
)
def test_client_span_and_injected_context(
    echo: str, instrumented: None, spanline_capture: Capture, call: object
) -> None:
    with spanline.start_trace(actor={"type": "user", "id": 42}), spanline.span("caller"):
        seen = call(f"{echo}/orders/7?token=secret")  # type: ignore[operator]
    client = next(s for s in spanline_capture.spans if s.kind == SpanKind.CLIENT)
    assert client.name == "GET"
    assert client.parent is not None
    assert client.parent.name == "caller"
    assert client.attributes["url.full"] == f"{echo}/orders/7"  # no query string
    assert client.attributes["server.address"] == "127.0.0.1"
    assert client.attributes["http.response.status_code"] == 200
    # the server received our span as its parent, and the actor as baggage
    assert seen["traceparent"] == f"00-{client.trace_hex}-{client.span_hex}-03"
    assert "spanline.actor.id=42" in seen["baggage"]


def test_error_status_marks_the_client_span(
    echo: str, instrumented: None, spanline_capture: Capture
) -> None:
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"{echo}/missing", timeout=10)
    assert requests.get(f"{echo}/missing", timeout=10).status_code == 404
    clients = [s for s in spanline_capture.spans if s.kind == SpanKind.CLIENT]
    assert len(clients) == 2
    for span in clients:
        assert span.status == StatusCode.ERROR
        assert span.attributes["http.response.status_code"] == 404


def test_connection_errors_pass_through_and_are_recorded(
    instrumented: None, spanline_capture: Capture
) -> None:
    from tests.receiver import free_port

    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{free_port()}/", timeout=5)
    (span,) = spanline_capture.spans
    assert span.status == StatusCode.ERROR
    assert span.events[0].name == "exception"


def test_instrument_is_idempotent_and_reversible(echo: str, spanline_capture: Capture) -> None:
    original = requests.Session.send
    spanline.instrument("requests")
    spanline.instrument("requests")
    assert "requests" in spanline.integrations.registry.instrumented()
    spanline.uninstrument("requests")
    assert requests.Session.send is original
    requests.get(f"{echo}/x", timeout=10)
    assert spanline_capture.spans == []
    with pytest.raises(ValueError, match="unknown integration 'kafka'"):
        spanline.instrument("kafka")
