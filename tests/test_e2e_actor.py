"""End to end: an HTTP request that asks a pykka actor, which queries PostgreSQL, is one
trace -- server span -> send -> process span -> database span.

Everything is real: uvicorn serving a Starlette app behind the ASGI middleware on
127.0.0.1, a pykka actor on its own thread, psycopg against the PostgreSQL at
127.0.0.1:5432 (database ``test``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pykka
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import spanline
from spanline import SpanKind
from spanline.integrations.asgi import SpanlineASGIMiddleware
from spanline.testing import Capture
from tests.receiver import free_port

DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
SECRET = "customer@example.com"


class GetOrder:
    def __init__(self, order_id: int) -> None:
        self.order_id = order_id


class OrdersActor(pykka.ThreadingActor):
    """Owns one database connection, used only from the actor's thread."""

    def __init__(self, table: str) -> None:
        super().__init__()
        self.table = table
        self.conn: psycopg.Connection[Any] | None = None

    def on_start(self) -> None:
        self.conn = psycopg.connect(DSN, autocommit=True)

    def on_stop(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def on_receive(self, message: Any) -> Any:
        assert isinstance(message, GetOrder)
        assert self.conn is not None
        row = self.conn.execute(
            f"SELECT product FROM {self.table} WHERE id = %s AND email <> %s",
            (message.order_id, SECRET),
        ).fetchone()
        return None if row is None else row[0]


@pytest.fixture
def table() -> Iterator[str]:
    name = f"spanline_e2e_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {name} (id int, product text, email text)")
        conn.execute(
            f"INSERT INTO {name} SELECT i, 'product ' || i, 'x' FROM generate_series(1, 9) i"
        )
        try:
            yield name
        finally:
            conn.execute(f"DROP TABLE {name}")


@pytest.fixture
def server(table: str, spanline_capture: Capture) -> Iterator[str]:
    spanline.instrument("pykka", "psycopg")
    orders = OrdersActor.start(table)

    async def get_order(request: Request) -> JSONResponse:
        order_id = int(request.path_params["id"])
        # ask() blocks until the reply: run it off the event loop (the context goes along)
        product = await asyncio.to_thread(orders.ask, GetOrder(order_id), timeout=10)
        return JSONResponse({"id": order_id, "product": product})

    app = Starlette(routes=[Route("/orders/{id}", get_order)])
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
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(10)
        orders.stop()
        spanline.uninstrument("pykka", "psycopg")


def get(url: str, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def server_spans(capture: Capture, count: int) -> list[spanline.Span]:
    """The SERVER spans, once ``count`` have ended (each ends after its response)."""
    for _ in range(500):
        found = [s for s in capture.spans if s.kind == SpanKind.SERVER]
        if len(found) >= count:
            return found
        time.sleep(0.01)
    return [s for s in capture.spans if s.kind == SpanKind.SERVER]


def chain(server: spanline.Span) -> list[spanline.Span]:
    """server -> its only child -> that one's only child ... down to a leaf."""
    spans = [server]
    while spans[-1].children:
        (child,) = spans[-1].children
        spans.append(child)
    return spans


def test_http_request_asking_an_actor_is_one_trace(server: str, spanline_capture: Capture) -> None:
    body = get(f"{server}/orders/7", {"traceparent": f"00-{TRACE}-{PARENT}-01"})
    assert body == {"id": 7, "product": "product 7"}
    (http,) = server_spans(spanline_capture, 1)
    spans = chain(http)
    assert [(s.name, s.kind) for s in spans] == [
        ("GET /orders/{id}", SpanKind.SERVER),
        ("send GetOrder", SpanKind.PRODUCER),
        ("process GetOrder", SpanKind.CONSUMER),
        ("SELECT", SpanKind.CLIENT),
    ]
    for parent, child in itertools.pairwise(spans):
        assert child.parent is parent
        assert child.parent_span_id == parent.span_id
    assert {s.trace_hex for s in spanline_capture.spans} == {TRACE}  # one trace, the caller's
    assert http.parent_id == PARENT
    process, select = spans[2], spans[3]
    assert process.attributes["messaging.system"] == "pykka"
    assert process.attributes["spanline.messaging.actor.path"].startswith("OrdersActor (urn:")
    assert select.attributes["db.system.name"] == "postgresql"
    assert select.attributes["db.query.text"].startswith("SELECT product FROM spanline_e2e_")
    assert SECRET not in json.dumps([s.to_dict() for s in spanline_capture.spans])


def test_concurrent_requests_each_get_their_own_trace(
    server: str, spanline_capture: Capture
) -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        bodies = list(pool.map(lambda i: get(f"{server}/orders/{i}"), range(1, 9)))
    assert [b["product"] for b in bodies] == [f"product {i}" for i in range(1, 9)]
    servers = server_spans(spanline_capture, 8)
    assert len({s.trace_hex for s in servers}) == 8
    for http in servers:
        spans = chain(http)
        assert [s.name for s in spans] == [
            "GET /orders/{id}",
            "send GetOrder",
            "process GetOrder",
            "SELECT",
        ]
        assert {s.trace_hex for s in spans} == {http.trace_hex}
