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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import spanline
from spanline import SpanKind, StatusCode
from spanline.integrations import asgi
from spanline.integrations.asgi import SpanlineASGIMiddleware
from spanline.testing import Capture
from tests.receiver import free_port

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
COMPILED_REQUEST = asgi._Request


@pytest.fixture(autouse=True, params=["compiled", "python"])
def request_span(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run every test with the compiled request span (spanline/_csrc/asgi_span.c) and
    with the middleware's Python path, which defines the behaviour."""
    yield from _choose("_Request", COMPILED_REQUEST, str(request.param))


def _choose(name: str, compiled: object, choice: str) -> Iterator[str]:
    """Set the module global ``name`` to ``compiled`` or ``None`` (Python) for a test."""
    if choice == "compiled" and compiled is None:
        pytest.fail("spanline._accel was not built (no C compiler at install time?)")
    saved = getattr(asgi, name)
    setattr(asgi, name, compiled if choice == "compiled" else None)
    try:
        yield choice
    finally:
        setattr(asgi, name, saved)


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


# -- the scope reader: compiled (spanline/_csrc/asgi.c) and Python ------------------

COMPILED_READER = asgi._request_compiled


@pytest.fixture(params=["compiled", "python"])
def reader(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a test with the compiled scope reader and with the Python one."""
    yield from _choose("_request_compiled", COMPILED_READER, str(request.param))


def test_the_caller_context_query_and_any_header_case(
    reader: str, spanline_capture: Capture
) -> None:
    app = SpanlineASGIMiddleware(
        Starlette(routes=[Route("/orders/{id}", order)]), record_query=True, trust_actor=True
    )
    scope = _scope(
        "/orders/5",
        [
            (b"host", b"shop"),
            (b"TraceParent", f"00-{TRACE}-{PARENT}-01".encode()),
            (b"tracestate", b"vendor=1"),
            (b"BAGGAGE", b"spanline.actor.type=user,spanline.actor.id=42"),
            (b"user-agent", b"caf\xe9/1"),  # header values are Latin-1
        ],
    )
    scope["query_string"] = b"verbose=1"
    _call(app, scope)
    (span,) = (s for s in spanline_capture.spans if s.kind == SpanKind.SERVER)
    assert span.trace_hex == TRACE
    assert span.parent_id == PARENT
    assert span.name == "GET /orders/{id}"
    assert span.actor == {"type": "user", "id": "42"}  # trusted here, by the app's choice
    assert span.attributes == {
        "http.request.method": "GET",
        "url.path": "/orders/5",
        "url.scheme": "http",
        "server.address": "127.0.0.1",
        "server.port": 80,
        "client.address": "127.0.0.1",
        "user_agent.original": "café/1",
        "url.query": "verbose=1",
        "http.response.status_code": 200,
        "http.route": "/orders/{id}",
    }


_NAMES = st.sampled_from(
    [b"traceparent", b"TRACEPARENT", b"tracestate", b"baggage", b"User-Agent", b"host", b""]
)
_HEADER = st.one_of(
    st.tuples(_NAMES, st.binary(max_size=20)),
    st.lists(st.one_of(_NAMES, st.binary(max_size=12)), min_size=2, max_size=2),
    st.tuples(_NAMES.map(bytearray), st.binary(max_size=8)),  # bytes-like, not bytes
    st.tuples(_NAMES, st.text(max_size=5)),  # a str value: not ASGI
    st.tuples(_NAMES),  # not a pair
    st.just(b"traceparent"),
    st.none(),
)
_ANY = st.one_of(st.none(), st.integers(), st.text(max_size=8), st.binary(max_size=8))
_PAIR = st.one_of(
    _ANY,
    st.tuples(st.text(max_size=8), st.integers(0, 65535)),
    st.lists(st.one_of(st.text(max_size=8), st.integers(), st.none()), max_size=3),
    st.tuples(_ANY, _ANY),
)
_SCOPES = st.fixed_dictionaries(
    {"type": st.just("http")},
    optional={
        "method": st.one_of(st.sampled_from(["GET", "POST", ""]), _ANY),
        "path": st.one_of(st.text(max_size=10), _ANY),
        "scheme": st.one_of(st.sampled_from(["http", "https", ""]), _ANY),
        "headers": st.one_of(
            st.lists(_HEADER, max_size=6), st.lists(_HEADER, max_size=6).map(tuple), _ANY
        ),
        "server": _PAIR,
        "client": _PAIR,
    },
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(scope=_SCOPES)
def test_the_compiled_reader_agrees_with_python_or_defers(scope: dict[str, object]) -> None:
    if COMPILED_READER is None:
        pytest.fail("spanline._accel was not built (no C compiler at install time?)")
    expected = asgi._request_python(scope)
    got = COMPILED_READER(scope)
    if got is None:  # an unusual shape: the middleware runs the Python reader
        return
    method, attributes, carrier = got
    assert method == expected[0]
    assert list(attributes.items()) == list(expected[1].items())  # same keys, same order
    assert carrier == expected[2]


def test_the_compiled_reader_reads_what_servers_send() -> None:
    # the shape uvicorn, hypercorn and daphne pass must not fall back to Python
    if COMPILED_READER is None:
        pytest.fail("spanline._accel was not built (no C compiler at install time?)")
    scope = _scope("/", [(b"host", b"x"), (b"traceparent", b"t"), (b"traceparent", b"u")])
    scope["server"] = ["::1", 8000]  # some servers send lists
    got = COMPILED_READER(scope)
    assert got is not None
    assert got == asgi._request_python(scope)
    assert got[2] == {"traceparent": ["t", "u"]}
    # without a method the Python reader decides (it defaults to GET)
    assert COMPILED_READER({"type": "http"}) is None
    assert asgi._request_python({"type": "http"})[0] == "GET"


# -- the compiled request span and the Python path make the same spans ---------------


class Message(dict):  # type: ignore[type-arg]
    """A message that is a mapping but not exactly a dict (read through .get)."""


class BadRoute:
    """A matched route whose path cannot be read."""

    @property
    def path(self) -> str:
        raise RuntimeError("no path today")


class Halt(BaseException):
    """Not an Exception: it must end the span and reach the server."""


class HaltingRoute:
    """A matched route whose path raises a BaseException."""

    @property
    def path(self) -> str:
        raise Halt("stop reading routes")


async def _raw_app(scope: dict[str, object], receive: object, send: object) -> None:
    """A plain ASGI app whose behaviour the scope's path picks."""
    path = scope["path"]
    if path == "/named":
        asgi.set_route(scope, "/named/{x}")  # type: ignore[arg-type]
    elif path == "/bad-route":
        scope["route"] = BadRoute()
    elif path == "/halting-route":
        scope["route"] = HaltingRoute()
    elif path == "/str-route":
        scope["spanline.route"] = 7  # not a str: the Starlette route is read instead
        scope["route"] = Route("/str/{x}", order)
    elif path == "/raises":
        raise LookupError("the app failed")
    elif path == "/cancelled":
        raise asyncio.CancelledError
    status = 502 if path == "/502" else 200
    start = {"type": "http.response.start", "status": status, "headers": []}
    if path == "/keyword":
        await send(message=start)  # type: ignore[operator]
    else:
        await send(Message(start) if path == "/mapping" else start)  # type: ignore[operator]
    if path == "/bool-status":
        await send({"type": "http.response.start", "status": True})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]


_CASES: list[tuple[str, dict[str, object], dict[str, bool]]] = [
    ("/", {}, {}),
    ("/named", {"headers": [(b"traceparent", f"00-{TRACE}-{PARENT}-01".encode())]}, {}),
    (
        "/named",
        {
            "headers": [
                (b"baggage", b"spanline.actor.type=user,spanline.actor.id=9"),
                (b"tracestate", b"a=1"),
            ]
        },
        {"trust_actor": True},
    ),
    ("/named", {"headers": [(b"baggage", b"spanline.actor.type=user")]}, {}),
    ("/502", {"query_string": b"q=1&r=%20"}, {"record_query": True}),
    ("/502", {"query_string": b""}, {"record_query": True}),
    ("/", {"query_string": 3}, {"record_query": True}),  # bytes(3): three NULs
    ("/keyword", {}, {}),
    ("/halting-route", {}, {}),
    ("/raises", {}, {}),
    ("/cancelled", {}, {}),
    ("/bad-route", {}, {}),
    ("/str-route", {}, {}),
    ("/mapping", {}, {}),
    ("/bool-status", {}, {}),
    ("/", {"headers": [[b"User-Agent", b"odd/1"]], "method": None}, {}),  # Python reader
    ("/", {"headers": [(bytearray(b"traceparent"), b"00-bad")], "server": None}, {}),
]


def _run_cases() -> list[object]:
    """Every case through the middleware, with fresh deterministic ids and clock:
    what each sent or raised, and every span as a dict."""
    capture = Capture()
    capture.deterministic(start_id=100)
    spanline.tracer.add_processor(capture)
    seen: list[object] = []
    try:
        for path, extra, options in _CASES:
            app = SpanlineASGIMiddleware(_raw_app, **options)  # type: ignore[arg-type]
            scope = {**_scope(path, []), **extra}
            try:
                seen.append(_call(app, scope))
            except BaseException as error:  # compared, not handled
                seen.append(repr(error))
        with spanline.span("server lifetime"):
            seen.append(_call(SpanlineASGIMiddleware(_raw_app), _scope("/", [])))  # type: ignore[arg-type]
        spanline.configure(enabled=False)
        try:
            seen.append(_call(SpanlineASGIMiddleware(_raw_app), _scope("/", [])))  # type: ignore[arg-type]
        finally:
            spanline.configure(enabled=True)
    finally:
        spanline.tracer.remove_processor(capture)
    spans = [span.to_dict() for span in capture.spans]
    for span in spans:  # the traces differ in the middleware's own lines only
        for event in span["events"]:
            trace = event["attributes"].get("exception.stacktrace")
            if trace:
                lines = trace.splitlines()
                kept = [line for line in lines if "test_asgi.py" in line] + lines[-1:]
                event["attributes"]["exception.stacktrace"] = kept
    return seen + spans


def test_the_compiled_request_span_makes_the_same_spans_as_python(
    spanline_capture: Capture,
) -> None:
    asgi._Request = COMPILED_REQUEST
    compiled = _run_cases()
    asgi._Request = None
    python = _run_cases()
    assert compiled == python
    spans = [s for s in compiled if isinstance(s, dict) and "name" in s]
    assert len(spans) >= len(_CASES)
    names = {s["name"] for s in spans}
    assert {"GET /named/{x}", "GET /str/{x}", "GET"} <= names
    assert {"error"} < {s["status"] for s in spans}


def test_the_compiled_request_span_is_used_once() -> None:
    assert COMPILED_REQUEST is not None
    app = SpanlineASGIMiddleware(_raw_app)  # type: ignore[arg-type]

    async def send(message: object) -> None:
        pass

    made = COMPILED_REQUEST(app, _scope("/", []), send)
    with pytest.raises(TypeError, match="one message"):
        made()
    with made:
        with pytest.raises(RuntimeError, match="entered once"):
            made.__enter__()
    with pytest.raises(RuntimeError, match="exits once"):
        made.__exit__(None, None, None)
    with pytest.raises(TypeError):
        COMPILED_REQUEST(app, _scope("/", []))
