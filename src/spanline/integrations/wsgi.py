"""WSGI middleware: one SERVER span per request (Flask, Django, any WSGI app).

::

    app.wsgi_app = SpanlineMiddleware(app.wsgi_app)          # Flask
    application = SpanlineMiddleware(get_wsgi_application())  # Django

* the incoming W3C context is continued (a new trace without one); the caller's
  actor is taken from baggage only with ``trust_actor=True`` (internal services);
* the span is named ``METHOD`` and renamed ``METHOD route`` once the app reports the
  route template with :func:`set_route` (``GET /orders/{id}``, never the raw path);
* attributes follow the HTTP semantic conventions: ``http.request.method``,
  ``url.path``, ``url.scheme``, ``url.query`` (not its values' secrets: the raw
  query is kept only with ``record_query=True``), ``server.address``,
  ``server.port``, ``client.address``, ``user_agent.original``,
  ``http.response.status_code``, ``http.route``;
* a 5xx status or an exception marks it ERROR (the exception passes through); an
  exception the framework turned into a 5xx response itself is recorded too when
  the framework integration reports it with :func:`set_error`;
* the span ends when the response body has been sent (``close()``), so streamed
  responses are timed whole.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

from spanline._log import report
from spanline.core import exception_text
from spanline.core.span import Span, SpanKind, StatusCode
from spanline.propagation.carrier import continue_trace

__all__ = ["SpanlineMiddleware", "set_error", "set_route"]

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

_ENVIRON_SPAN = "spanline.span"
_ENVIRON_ERROR = "spanline.error"


def _headers(environ: Environ) -> list[tuple[str, str]]:
    return [
        (key[5:].replace("_", "-").lower(), value)
        for key, value in environ.items()
        if key.startswith("HTTP_") and isinstance(value, str)
    ]


def set_route(environ: Environ, route: str) -> None:
    """Report the matched route template (``/orders/{id}``) for the request's span."""
    span = environ.get(_ENVIRON_SPAN)
    if isinstance(span, Span) and isinstance(route, str) and route:
        span.set_attribute("http.route", route)
        method = environ.get("REQUEST_METHOD", "GET")
        span.update_name(f"{method} {route}")


def set_error(environ: Environ, error: BaseException) -> None:
    """Report an exception the framework caught and answered with an error page
    (Flask's ``got_request_exception``, Django's ``process_exception``): if the
    response is a 5xx, the request's span records it and its status says what
    failed.  An exception that reaches the middleware is recorded anyway."""
    if isinstance(error, BaseException) and isinstance(environ.get(_ENVIRON_SPAN), Span):
        environ[_ENVIRON_ERROR] = error


class SpanlineMiddleware:
    """Wrap a WSGI application so that every request is a SERVER span."""

    def __init__(
        self, app: WSGIApp, *, trust_actor: bool = False, record_query: bool = False
    ) -> None:
        self.app = app
        self.trust_actor = trust_actor
        self.record_query = record_query

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Run the request in a private copy of the context, inside its span."""
        context = contextvars.copy_context()
        return context.run(self._start, environ, start_response, context)

    def _start(
        self, environ: Environ, start_response: StartResponse, context: contextvars.Context
    ) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET"))
        boundary = continue_trace(_headers(environ), trust_actor=self.trust_actor)
        boundary.enter()  # the trace id is not rendered per request
        span = Span(method, kind=SpanKind.SERVER, attributes=self._attributes(environ, method))
        entered = span.__enter__()
        environ[_ENVIRON_SPAN] = span

        def traced_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            try:
                code = int(status.split(" ", 1)[0])
            except ValueError:
                code = 0
            if code:
                entered.set_attribute("http.response.status_code", code)
                if code >= 500:
                    entered.set_status(StatusCode.ERROR, f"HTTP {code}")
            if exc_info is None:
                return start_response(status, headers)
            return start_response(status, headers, exc_info)

        finish = _Finish(span, boundary, environ)
        try:
            body = self.app(environ, traced_start_response)
        except BaseException as error:
            finish(type(error), error, error.__traceback__)
            raise
        return _ClosingBody(body, finish, context)

    def _attributes(self, environ: Environ, method: str) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": environ.get("PATH_INFO") or "/",
            "url.scheme": environ.get("wsgi.url_scheme", "http"),
            "server.address": environ.get("SERVER_NAME", ""),
        }
        port = environ.get("SERVER_PORT")
        if port and str(port).isdigit():
            attributes["server.port"] = int(port)
        if environ.get("REMOTE_ADDR"):
            attributes["client.address"] = environ["REMOTE_ADDR"]
        if environ.get("HTTP_USER_AGENT"):
            attributes["user_agent.original"] = environ["HTTP_USER_AGENT"]
        if self.record_query and environ.get("QUERY_STRING"):
            attributes["url.query"] = environ["QUERY_STRING"]
        return attributes


class _Finish:
    """Ends the span and leaves the trace boundary, once (always called inside the
    request's context)."""

    __slots__ = ("boundary", "done", "environ", "span")

    def __init__(self, span: Span, boundary: Any, environ: Environ) -> None:
        self.span = span
        self.boundary = boundary
        self.environ = environ
        self.done = False

    def __call__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        if self.done:
            return
        self.done = True
        handled = self.environ.pop(_ENVIRON_ERROR, None)
        if exc is None and handled is not None:
            self._record_handled(handled)
        self.span.__exit__(exc_type, exc, tb)
        self.boundary.__exit__(None, None, None)

    def _record_handled(self, error: BaseException) -> None:
        span = self.span
        try:
            status = span.attributes.get("http.response.status_code")
            if span.is_recording() and isinstance(status, int) and status >= 500:
                span.record_exception(error)
                span.set_status(StatusCode.ERROR, exception_text.describe(error))
        except Exception as problem:  # noqa: BLE001 - tracing never breaks the app
            report("wsgi-error", "spanline: could not record a handled exception: %r", problem)


class _ClosingBody:
    """The app's response body; iterated and closed in the request's context, and the
    span ends on ``close()`` (WSGI servers always call it)."""

    def __init__(
        self, body: Iterable[bytes], finish: _Finish, context: contextvars.Context
    ) -> None:
        self._body = body
        self._finish = finish
        self._context = context
        self._iterator: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._iterator is None:
            self._iterator = iter(self._body)
        try:
            return self._context.run(next, self._iterator)
        except StopIteration:
            raise
        except BaseException as error:  # the body failed while streaming
            self._context.run(self._finish, type(error), error, error.__traceback__)
            raise

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                self._context.run(close)
        finally:
            self._context.run(self._finish)
