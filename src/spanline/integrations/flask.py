"""Flask: request spans named after the matched route.

::

    app.wsgi_app = SpanlineMiddleware(app.wsgi_app)   # the SERVER span per request
    spanline.instrument("flask")                      # route names, handled errors

The WSGI middleware (:mod:`spanline.integrations.wsgi`) makes the span;
``spanline.instrument("flask")`` connects to two of Flask's public signals, for
every Flask app in the process:

* ``request_started``: the span becomes ``METHOD route`` with ``http.route`` set to
  the matched URL rule in Flask's own syntax, after the application root
  (``GET /orders/<int:order_id>``), as the semantic conventions ask ("the path
  template in the format used by the respective server framework") and as
  OpenTelemetry's Flask instrumentation reports it.  A request that matches no rule
  (a 404) keeps the bare method: never the raw path;
* ``got_request_exception``: an exception Flask turns into a 500 page is recorded on
  the span (Flask catches it, so the middleware would only see the status).

``spanline.uninstrument("flask")`` disconnects both.
"""

from __future__ import annotations

from typing import Any

from flask import got_request_exception, request, request_started

from spanline._log import report
from spanline.integrations.wsgi import set_error, set_route

__all__ = ["install", "uninstall"]


def _on_request_started(sender: Any, **extra: Any) -> None:
    try:
        rule = request.url_rule
        if rule is not None:
            set_route(request.environ, request.script_root + rule.rule)
    except Exception as error:  # noqa: BLE001 - tracing never breaks the app
        report("flask-route", "spanline: could not read the Flask route: %r", error)


def _on_request_exception(sender: Any, exception: BaseException, **extra: Any) -> None:
    try:
        set_error(request.environ, exception)
    except Exception as error:  # noqa: BLE001 - tracing never breaks the app
        report("flask-error", "spanline: could not record a Flask exception: %r", error)


def install() -> None:
    """Connect to ``request_started`` and ``got_request_exception`` (connecting
    twice does nothing: a signal keeps one connection per receiver)."""
    request_started.connect(_on_request_started)
    got_request_exception.connect(_on_request_exception)


def uninstall() -> None:
    """Disconnect from both signals."""
    request_started.disconnect(_on_request_started)
    got_request_exception.disconnect(_on_request_exception)
