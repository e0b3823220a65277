"""HTTP clients: a CLIENT span per request, with the trace context injected.

``spanline.instrument("urllib", "requests", "httpx")`` wraps
``urllib.request.OpenerDirector.open``, ``requests.Session.send`` and
``httpx.Client.send`` / ``httpx.AsyncClient.send`` (the application's own code is
not touched); ``spanline.uninstrument(...)`` restores them.

The span is named after the method and records ``http.request.method``,
``server.address``, ``server.port``, ``url.full`` (without credentials and without
the query string, which may hold secrets) and ``http.response.status_code``; a 4xx
or 5xx response or an exception marks it ERROR (the exception passes through).
``traceparent`` (and ``tracestate``/``baggage``) are added to the request headers, so
the server continues the trace under this span.
"""

from __future__ import annotations

import functools
import importlib
import urllib.parse
from collections.abc import Callable, MutableMapping
from typing import Any

from spanline.core.span import Span, SpanKind, StatusCode
from spanline.propagation.carrier import inject

__all__ = ["INTEGRATIONS", "client_span", "finish_client_span"]


def _safe_url(url: str) -> tuple[str, str | None, int | None]:
    try:
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "", None, None
    netloc = host or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", "")), host, port


def client_span(method: str, url: str) -> Span:
    """A CLIENT span for ``method url`` (not started)."""
    full, host, port = _safe_url(url)
    attributes: dict[str, Any] = {"http.request.method": method, "url.full": full}
    if host:
        attributes["server.address"] = host
    if port:
        attributes["server.port"] = port
    return Span(method, kind=SpanKind.CLIENT, attributes=attributes)


def finish_client_span(span: Span, status: int | None) -> None:
    """Record the response status; 4xx and 5xx are errors for a client."""
    if status:
        span.set_attribute("http.response.status_code", status)
        if status >= 400:
            span.set_status(StatusCode.ERROR, f"HTTP {status}")


def _headers_to_inject() -> dict[str, str]:
    headers: MutableMapping[str, str] = {}
    inject(headers)
    return dict(headers)


# -- urllib.request -------------------------------------------------------------------


def _wrap_urllib(original: Callable[..., Any]) -> Callable[..., Any]:
    import urllib.error
    import urllib.request

    @functools.wraps(original)
    def open_traced(self: Any, fullurl: Any, data: Any = None, *args: Any, **kw: Any) -> Any:
        if isinstance(fullurl, urllib.request.Request):
            request = fullurl
        else:  # the app's own URL, exactly as it gave it
            request = urllib.request.Request(fullurl, data)  # noqa: S310
        if data is not None:
            request.data = data
        with client_span(request.get_method(), request.full_url) as span:
            for key, value in _headers_to_inject().items():
                request.add_unredirected_header(key.capitalize(), value)
            try:
                response = original(self, request, None, *args, **kw)
            except urllib.error.HTTPError as error:
                if isinstance(span, Span):
                    finish_client_span(span, error.code)
                raise
            if isinstance(span, Span):
                finish_client_span(span, getattr(response, "status", None))
            return response

    return open_traced


# -- requests and httpx (same request/response shape) ------------------------------


def _wrap_send(original: Callable[..., Any]) -> Callable[..., Any]:
    """``requests.Session.send`` and ``httpx.Client.send``: both take a request object
    with ``method``, ``url`` and mutable ``headers`` and return ``status_code``."""

    @functools.wraps(original)
    def send_traced(self: Any, request: Any, **kwargs: Any) -> Any:
        with client_span(str(request.method), str(request.url)) as span:
            request.headers.update(_headers_to_inject())
            response = original(self, request, **kwargs)
            if isinstance(span, Span):
                finish_client_span(span, response.status_code)
            return response

    return send_traced


def _wrap_httpx_async(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def send_traced(self: Any, request: Any, **kwargs: Any) -> Any:
        with client_span(str(request.method), str(request.url)) as span:
            request.headers.update(_headers_to_inject())
            response = await original(self, request, **kwargs)
            if isinstance(span, Span):
                finish_client_span(span, response.status_code)
            return response

    return send_traced


# integration name -> [(module, class, method, wrapper factory)]
INTEGRATIONS: dict[str, list[tuple[str, str, str, Callable[..., Any]]]] = {
    "urllib": [("urllib.request", "OpenerDirector", "open", _wrap_urllib)],
    "requests": [("requests.sessions", "Session", "send", _wrap_send)],
    "httpx": [
        ("httpx", "Client", "send", _wrap_send),
        ("httpx", "AsyncClient", "send", _wrap_httpx_async),
    ],
}


def load(module: str, cls: str) -> Any:
    """The class (or, with ``cls=""``, the module) whose attribute is wrapped;
    ``ImportError`` with a clear message if the library is not installed."""
    try:
        imported = importlib.import_module(module)
        return getattr(imported, cls) if cls else imported
    except ImportError as error:
        raise ImportError(
            f"spanline cannot instrument {module}: it is not installed ({error})"
        ) from None
