"""Pure ASGI middleware: one SERVER span per HTTP request (Starlette, FastAPI, any
ASGI app).  Pure ASGI, not ``BaseHTTPMiddleware``, so context variables -- spanline's
current span -- flow into the app unchanged.

::

    app = SpanlineASGIMiddleware(app)       # or app.add_middleware(SpanlineASGIMiddleware)

Like the WSGI middleware: the caller's W3C context is continued (its actor only with
``trust_actor=True``), the span is named ``METHOD route`` from the matched route
template (Starlette and FastAPI put it in ``scope["route"]``; others may call
:func:`set_route`), attributes follow the HTTP semantic conventions, and a 5xx
response or an exception marks it ERROR.  The span ends when the app returns, after
the whole response has been sent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from spanline._native import load
from spanline.core import config
from spanline.core.context import current
from spanline.core.span import SpanKind, StatusCode, span_with_attributes
from spanline.propagation.carrier import incoming_node

__all__ = ["SpanlineASGIMiddleware", "set_route"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_SCOPE_ROUTE = "spanline.route"
_PAIRS = (tuple, list)  # what ASGI servers put in scope["server"] and scope["client"]
# the request headers the middleware reads, by their raw (ASGI) name
_WANTED = {name.encode(): name for name in ("traceparent", "tracestate", "baggage", "user-agent")}
# the compiled scope reader (spanline/_csrc/asgi.c), when built; see _request_python
_accel = load()
_request_compiled: Callable[[Scope], Any] | None = (
    _accel.asgi_request if _accel is not None else None
)


def set_route(scope: Scope, route: str) -> None:
    """Report the matched route template for apps that do not set ``scope["route"]``."""
    if isinstance(route, str) and route:
        scope[_SCOPE_ROUTE] = route


_NAMES: dict[tuple[str, str], str] = {}
_NAMES_MAX = 1024


def _span_name(method: str, route: str) -> str:
    """``METHOD route``, built once per pair (routes are templates: few pairs)."""
    if len(_NAMES) >= _NAMES_MAX:
        _NAMES.clear()
    name = _NAMES[(method, route)] = f"{method} {route}"
    return name


def _request_python(scope: Scope) -> tuple[str, dict[str, Any], dict[str, list[str]] | None]:
    """The request method, the SERVER span's attributes and the trace-context
    headers read (``None`` when there are none) from an HTTP scope.  The compiled
    ``asgi_request`` (``spanline/_csrc/asgi.c``) returns the same for the usual
    scope shape, and ``None`` -- this runs instead -- for anything else."""
    method = scope.get("method")
    if type(method) is not str:
        method = str(method or "GET")
    carrier = _read_headers(scope.get("headers"))
    path = scope.get("path")
    scheme = scope.get("scheme")
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "url.path": path if type(path) is str and path else "/",
        "url.scheme": scheme if type(scheme) is str and scheme else str(scheme or "http"),
    }
    server = scope.get("server")
    if isinstance(server, _PAIRS) and len(server) == 2:
        host, port = server
        attributes["server.address"] = host if type(host) is str else str(host)
        if type(port) is int:
            attributes["server.port"] = port
    client = scope.get("client")
    if isinstance(client, _PAIRS) and client:
        host = client[0]
        attributes["client.address"] = host if type(host) is str else str(host)
    if carrier:
        agent = carrier.get("user-agent")
        if agent and agent[0]:
            attributes["user_agent.original"] = agent[0]
    return method, attributes, carrier


def _read_headers(headers: object) -> dict[str, list[str]] | None:
    """The wanted request headers, by name (``None`` when there are none).  ASGI
    servers send lower-case ``bytes`` names; other case and other bytes-like types
    are accepted too, and an entry that is not a name/value pair is skipped."""
    if not headers:
        return None
    carrier: dict[str, list[str]] | None = None
    wanted = _WANTED.get
    try:
        for key, value in headers:  # type: ignore[attr-defined]
            name = wanted(key)
            if name is None and (key.islower() or (name := wanted(key.lower())) is None):
                continue
            if carrier is None:
                carrier = {name: [value.decode("latin-1")]}
            elif name in carrier:
                carrier[name].append(value.decode("latin-1"))
            else:
                carrier[name] = [value.decode("latin-1")]
    except (TypeError, ValueError, AttributeError):
        return _read_odd_headers(headers)
    return carrier


def _read_odd_headers(headers: object) -> dict[str, list[str]] | None:
    """:func:`_read_headers` for headers that are not all (bytes, bytes) pairs:
    bytes-like names and values are read, anything else skipped."""
    carrier: dict[str, list[str]] = {}
    try:
        entries = list(headers)  # type: ignore[call-overload]
    except TypeError:
        return None
    for entry in entries:
        try:
            key, value = entry
            name = _WANTED.get(bytes(key).lower())
            if name is not None:
                carrier.setdefault(name, []).append(bytes(value).decode("latin-1"))
        except (TypeError, ValueError):
            continue
    return carrier or None


class SpanlineASGIMiddleware:
    """Wrap an ASGI application so that every HTTP request is a SERVER span."""

    def __init__(
        self, app: ASGIApp, *, trust_actor: bool = False, record_query: bool = False
    ) -> None:
        self.app = app
        self.trust_actor = trust_actor
        self.record_query = record_query

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Trace HTTP requests; pass anything else (lifespan, websocket) through."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        if _Request is not None:
            # spanline/_csrc/asgi_span.c: what _python() does, without its frames
            with _Request(self, scope, send) as traced_send:
                await self.app(scope, receive, traced_send)
            return
        await self._python(scope, receive, send)

    async def _python(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One HTTP request's SERVER span: what defines the middleware's behaviour
        (the compiled AsgiRequest does the same; the tests run both)."""
        # Written flat (no helper calls where a line will do): without the compiled
        # helpers, each Python call saved is ~1% of a minimal app's throughput.
        request = _request_compiled(scope) if _request_compiled is not None else None
        method, attributes, carrier = request or _request_python(scope)
        if self.record_query:
            query = scope.get("query_string")
            if query:
                attributes["url.query"] = bytes(query).decode("latin-1")
        # The caller's trace becomes current for this task only: a Boundary object
        # would also allow re-entry, which a per-request node never needs.
        token = None
        if carrier and ("traceparent" in carrier or (self.trust_actor and "baggage" in carrier)):
            token = current.set(incoming_node(carrier, trust_actor=self.trust_actor))
        elif current.get() is not None or not config.settings.enabled:
            # a request starts its own trace even when the server runs inside one; and
            # with recording off the span below is a no-op that starts nothing, so the
            # request's trace (its ids, its actor, the audit chain) needs its root
            token = current.set(incoming_node({}))
        # else: the span below starts a new trace by itself (cheaper than a root node)
        try:
            with span_with_attributes(method, SpanKind.SERVER, attributes) as span:

                def traced_send(message: Message) -> Awaitable[None]:
                    # a plain function returning the server's awaitable: no extra
                    # coroutine per message
                    if message.get("type") == "http.response.start":
                        code = message.get("status")
                        if type(code) is int:
                            attributes["http.response.status_code"] = code
                            if code >= 500:
                                span.set_status(StatusCode.ERROR, f"HTTP {code}")
                    return send(message)

                try:
                    await self.app(scope, receive, traced_send)
                finally:
                    try:
                        route = scope.get(_SCOPE_ROUTE)
                        if type(route) is not str:
                            route = getattr(scope.get("route"), "path", None)
                    except Exception:  # noqa: BLE001 - an odd route object: no route
                        route = None
                    if type(route) is str and route:
                        attributes["http.route"] = route
                        name = _NAMES.get((method, route))
                        span.update_name(name or _span_name(method, route))
        finally:
            if token is not None:
                with contextlib.suppress(ValueError):  # the app switched contexts
                    current.reset(token)


# the compiled request span (spanline/_csrc/asgi_span.c), when built: configured with
# this module's own reader, names and span pieces
_Request: Callable[[SpanlineASGIMiddleware, Scope, Send], Any] | None = None
if _accel is not None:
    _accel.asgi_configure(
        _request_python,
        incoming_node,
        config,
        current,
        SpanKind.SERVER,
        StatusCode.ERROR,
        _NAMES,
        _span_name,
    )
    _Request = _accel.AsgiRequest
