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

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from spanline.core.span import Span, SpanKind, StatusCode
from spanline.propagation.carrier import continue_trace

__all__ = ["SpanlineASGIMiddleware", "set_route"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_SCOPE_ROUTE = "spanline.route"


def set_route(scope: Scope, route: str) -> None:
    """Report the matched route template for apps that do not set ``scope["route"]``."""
    if isinstance(route, str) and route:
        scope[_SCOPE_ROUTE] = route


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
        method = str(scope.get("method", "GET"))
        headers = [
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers") or ()
        ]
        with (
            continue_trace(headers, trust_actor=self.trust_actor).quietly,
            Span(
                method, kind=SpanKind.SERVER, attributes=self._attributes(scope, method, headers)
            ) as span,
        ):

            async def traced_send(message: Message) -> None:
                if message.get("type") == "http.response.start":
                    code = message.get("status")
                    if isinstance(code, int):
                        span.set_attribute("http.response.status_code", code)
                        if code >= 500:
                            span.set_status(StatusCode.ERROR, f"HTTP {code}")
                await send(message)

            try:
                await self.app(scope, receive, traced_send)
            finally:
                route = _route_of(scope)
                if route:
                    span.set_attribute("http.route", route)
                    span.update_name(f"{method} {route}")

    def _attributes(
        self, scope: Scope, method: str, headers: list[tuple[str, str]]
    ) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": scope.get("path") or "/",
            "url.scheme": scope.get("scheme", "http"),
        }
        server = scope.get("server")
        if isinstance(server, list | tuple) and len(server) == 2:
            attributes["server.address"] = str(server[0])
            if isinstance(server[1], int):
                attributes["server.port"] = server[1]
        client = scope.get("client")
        if isinstance(client, list | tuple) and client:
            attributes["client.address"] = str(client[0])
        agent = next((v for k, v in headers if k.lower() == "user-agent"), None)
        if agent:
            attributes["user_agent.original"] = agent
        query = scope.get("query_string")
        if self.record_query and query:
            attributes["url.query"] = query.decode("latin-1")
        return attributes
