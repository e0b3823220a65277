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


def set_route(scope: Scope, route: str) -> None:
    """Report the matched route template for apps that do not set ``scope["route"]``."""
    if isinstance(route, str) and route:
        scope[_SCOPE_ROUTE] = route


_NAMES: dict[tuple[str, str], str] = {}
_NAMES_MAX = 1024


def _span_name(method: str, route: str) -> str:
    """``METHOD route``, built once per pair (routes are templates: few pairs)."""
    key = (method, route)
    name = _NAMES.get(key)
    if name is None:
        if len(_NAMES) >= _NAMES_MAX:
            _NAMES.clear()
        name = _NAMES[key] = f"{method} {route}"
    return name


def _route_of(scope: Scope) -> str | None:
    explicit = scope.get(_SCOPE_ROUTE)
    if isinstance(explicit, str):
        return explicit
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else None


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
        method = scope.get("method")
        if type(method) is not str:
            method = str(method or "GET")
        # One pass over the raw headers, decoding only the few that are read (ASGI
        # names are lower-case bytes; anything else is lowered to be safe).
        carrier: dict[str, list[str]] = {}
        for key, value in scope.get("headers") or ():
            name = _WANTED.get(bytes(key)) or _WANTED.get(bytes(key).lower())
            if name is not None:
                carrier.setdefault(name, []).append(value.decode("latin-1"))
        attributes = self._attributes(scope, method, carrier)
        # The caller's trace becomes current for this task only: a Boundary object
        # would also allow re-entry, which a per-request node never needs.
        token = None
        if "traceparent" in carrier or (self.trust_actor and "baggage" in carrier):
            token = current.set(incoming_node(carrier, trust_actor=self.trust_actor))
        elif current.get() is not None or not config.settings.enabled:
            # a request starts its own trace even when the server runs inside one; and
            # with recording off the span below is a no-op that starts nothing, so the
            # request's trace (its ids, its actor, the audit chain) needs its root
            token = current.set(incoming_node({}))
        # else: the span below starts a new trace by itself (cheaper than a root node)
        try:
            with span_with_attributes(method, SpanKind.SERVER, attributes) as span:

                async def traced_send(message: Message) -> None:
                    if message.get("type") == "http.response.start":
                        code = message.get("status")
                        if type(code) is int:
                            attributes["http.response.status_code"] = code
                            if code >= 500:
                                span.set_status(StatusCode.ERROR, f"HTTP {code}")
                    await send(message)

                try:
                    await self.app(scope, receive, traced_send)
                finally:
                    route = _route_of(scope)
                    if route:
                        attributes["http.route"] = route
                        span.update_name(_span_name(method, route))
        finally:
            if token is not None:
                with contextlib.suppress(ValueError):  # the app switched contexts
                    current.reset(token)

    def _attributes(
        self, scope: Scope, method: str, carrier: dict[str, list[str]]
    ) -> dict[str, Any]:
        path = scope.get("path")
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": path if type(path) is str and path else "/",
            "url.scheme": str(scope.get("scheme") or "http"),
        }
        server = scope.get("server")
        if isinstance(server, _PAIRS) and len(server) == 2:
            attributes["server.address"] = str(server[0])
            if type(server[1]) is int:
                attributes["server.port"] = server[1]
        client = scope.get("client")
        if isinstance(client, _PAIRS) and client:
            attributes["client.address"] = str(client[0])
        agent = carrier.get("user-agent")
        if agent and agent[0]:
            attributes["user_agent.original"] = agent[0]
        query = scope.get("query_string")
        if self.record_query and query:
            attributes["url.query"] = bytes(query).decode("latin-1")
        return attributes
