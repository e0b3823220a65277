"""The ASGI middleware with Starlette, served by a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import spanline
from spanline import SpanKind, StatusCode
from spanline.integrations.asgi import SpanlineASGIMiddleware
from spanline.testing import Capture
from tests.receiver import free_port

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


async def order(request: Request) -> PlainTextResponse:
    with spanline.span("db:load-order") as load:
        await asyncio.sleep(0.01)
        load.set_attribute("order.id", request.path_params["id"])
    return PlainTextResponse(f"order {request.path_params['id']} {spanline.trace_id()}")


async def boom(request: Request) -> PlainTextResponse:
    raise RuntimeError("endpoint exploded")


async def unavailable(request: Request) -> PlainTextResponse:
    return PlainTextResponse("later", status_code=503)


@pytest.fixture
def server() -> Iterator[str]:
    app = Starlette(
        routes=[
            Route("/orders/{id}", order),
            Route("/boom", boom),
            Route("/unavailable", unavailable),
        ]
    )
    port = free_port()
    config = uvicorn.Config(
        SpanlineASGIMiddleware(app),
        host="127.0.0.1",
        port=port,
        log_level="critical",
        lifespan="off",
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    for _ in range(500):
        if uv.started:
            break
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(10)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def server_spans(capture: Capture, count: int) -> list[spanline.Span]:
    for _ in range(300):
        found = [s for s in capture.spans if s.kind == SpanKind.SERVER]
        if len(found) >= count:
            return found
        time.sleep(0.01)
    return [s for s in capture.spans if s.kind == SpanKind.SERVER]


def test_route_named_server_span_continuing_the_caller(
    server: str, spanline_capture: Capture
) -> None:
    status, body = get(f"{server}/orders/7", {"traceparent": f"00-{TRACE}-{PARENT}-01"})
    assert status == 200
    (span,) = server_spans(spanline_capture, 1)
    assert body == f"order 7 {span.trace_id}"
    assert span.name == "GET /orders/{id}"
    assert span.trace_hex == TRACE
    assert span.parent_id == PARENT
    assert span.attributes["http.route"] == "/orders/{id}"
    assert span.attributes["url.path"] == "/orders/7"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["client.address"] == "127.0.0.1"
    (child,) = span.children
    assert child.name == "db:load-order"
    assert child.attributes["order.id"] == "7"


def test_errors(server: str, spanline_capture: Capture) -> None:
    assert get(f"{server}/boom")[0] == 500
    assert get(f"{server}/unavailable")[0] == 503
    spans = {s.attributes["url.path"]: s for s in server_spans(spanline_capture, 2)}
    assert spans["/boom"].status == StatusCode.ERROR
    assert spans["/boom"].events[0].attributes["exception.message"] == "endpoint exploded"
    assert spans["/unavailable"].status == StatusCode.ERROR


def test_concurrent_requests_keep_their_own_traces(server: str, spanline_capture: Capture) -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda i: get(f"{server}/orders/{i}"), range(30)))
    assert all(status == 200 for status, _ in results)
    spans = server_spans(spanline_capture, 30)
    assert len({s.trace_id for s in spans}) == 30
    for span in spans:
        (child,) = span.children
        assert child.attributes["order.id"] == span.attributes["url.path"].rsplit("/", 1)[1]
        assert child.trace_id == span.trace_id
    bodies = {body.split()[2] for _, body in results}
    assert bodies == {s.trace_id for s in spans}  # the endpoint saw its own trace


def _scope(path: str, headers: list[tuple[bytes | bytearray, bytes]]) -> dict[str, object]:
    """An HTTP scope as a server would pass it, for driving the middleware in-process
    (the ASGI interface is just calls: no network needed)."""
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "headers": headers,
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 5000),
    }


def _call(app: SpanlineASGIMiddleware, scope: dict[str, object]) -> list[dict[str, object]]:
    """One request through ``app``; returns the messages it sent."""
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    asyncio.run(app(dict(scope), receive, send))  # type: ignore[arg-type]
    return sent


def test_a_request_starts_its_own_trace_even_inside_one(spanline_capture: Capture) -> None:
    # A server started inside a span (an embedded test server, say): requests without
    # a traceparent must still be new traces, not children of the server's span.
    app = SpanlineASGIMiddleware(Starlette(routes=[Route("/orders/{id}", order)]))
    scope = _scope("/orders/3", [(b"host", b"x"), (b"User-Agent", b"probe/1")])
    with spanline.span("server lifetime") as outer:
        sent = _call(app, scope)
    sent += _call(app, scope)
    first, second = (s for s in spanline_capture.spans if s.kind == SpanKind.SERVER)
    assert first.parent is None
    assert first.trace_id != outer.trace_id
    assert second.trace_id not in {outer.trace_id, first.trace_id}
    assert first.attributes["user_agent.original"] == "probe/1"  # any header case
    assert [m["type"] for m in sent].count("http.response.start") == 2


def test_with_recording_off_a_request_still_has_one_trace(spanline_capture: Capture) -> None:
    # Ids and the audit chain work with recording off: two operations in one request
    # share its trace id even though no span is recorded.
    seen: list[str | None] = []

    async def handler(request: Request) -> PlainTextResponse:
        @spanline.operation
        def first() -> None:
            seen.append(spanline.trace_id())

        @spanline.operation
        def second() -> None:
            seen.append(spanline.trace_id())

        first()
        second()
        return PlainTextResponse("ok")

    app = SpanlineASGIMiddleware(Starlette(routes=[Route("/", handler)]))
    scope = _scope("/", [(bytearray(b"user-agent"), b"probe/1")])  # any bytes-like name
    spanline.configure(enabled=False)
    try:
        _call(app, scope)
    finally:
        spanline.configure(enabled=True)
    assert seen[0] is not None
    assert seen[0] == seen[1]
    assert spanline_capture.spans == []
