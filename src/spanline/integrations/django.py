"""Django: request spans named after the matched URL pattern.

In ``wsgi.py`` (or ``asgi.py``), wrap the application -- the middleware makes the
SERVER span per request::

    from spanline.integrations.django import get_wsgi_application
    application = get_wsgi_application()          # or get_asgi_application()

and in ``settings.py`` add the route middleware (anywhere in the list)::

    MIDDLEWARE = ["spanline.integrations.django.SpanlineRouteMiddleware", ...]

:class:`SpanlineRouteMiddleware` reads ``request.resolver_match.route`` when Django
has resolved the view (``process_view``) and the span becomes ``METHOD route`` with
``http.route`` -- in Django's own syntax, as the semantic conventions ask ("the path
template in the format used by the respective server framework"): ``path()``
patterns after the application root and a ``/`` (``GET /orders/<int:order_id>/``;
OpenTelemetry's Django instrumentation reports the same pattern without the leading
``/``), ``re_path()`` patterns as the regular expression Django reports
(``^archive/(?P<year>[0-9]{4})/$``).  A request that resolves no view (a 404) keeps
the bare method: never the raw path.

It also reports an exception a view raised and Django answered with a 500 page
(``process_exception``), so the span records it although Django caught it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from spanline._log import report
from spanline.integrations import asgi, wsgi

__all__ = [
    "SpanlineRouteMiddleware",
    "get_asgi_application",
    "get_wsgi_application",
    "route_of",
]


def route_of(request: Any) -> str | None:
    """The route template of a resolved Django request (``None`` before or without
    a match)."""
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None)
    if match is None or not isinstance(route, str):
        return None
    if route.startswith("^"):
        return route  # a regular expression (re_path): leave it as Django wrote it
    path, path_info = str(request.path), str(request.path_info)
    root = path[: len(path) - len(path_info)] if path.endswith(path_info) else ""
    return f"{root.rstrip('/')}/{route}"


class SpanlineRouteMiddleware:
    """Django middleware: names the request's span after its URL pattern and
    reports exceptions Django turns into error pages.  Works in sync (WSGI) and
    async (ASGI) stacks; without spanline's WSGI/ASGI middleware around the
    application it does nothing."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        """Pass the request on (the work happens in the hooks below)."""
        if self._async:
            return self._acall(request)
        return self.get_response(request)

    async def _acall(self, request: Any) -> Any:
        return await self.get_response(request)

    def process_view(
        self,
        request: Any,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> None:
        """Report the resolved route to the request's span."""
        try:
            route = route_of(request)
            if route is None:
                return
            scope = getattr(request, "scope", None)
            if isinstance(scope, dict):  # an ASGI request
                asgi.set_route(scope, route)
            else:
                wsgi.set_route(request.environ, route)
        except Exception as error:  # noqa: BLE001 - tracing never breaks the app
            report("django-route", "spanline: could not read the Django route: %r", error)

    def process_exception(self, request: Any, exception: Exception) -> None:
        """Hand the view's exception to the span (Django answers it with an error
        page; only a 5xx answer marks the span ERROR)."""
        try:
            environ = getattr(request, "environ", None)
            if isinstance(environ, dict) and getattr(request, "scope", None) is None:
                wsgi.set_error(environ, exception)
        except Exception as error:  # noqa: BLE001 - tracing never breaks the app
            report("django-error", "spanline: could not record a Django exception: %r", error)


def get_wsgi_application(
    *, trust_actor: bool = False, record_query: bool = False
) -> wsgi.SpanlineMiddleware:
    """Django's WSGI application inside :class:`~spanline.integrations.wsgi.SpanlineMiddleware`
    (same options)."""
    from django.core.wsgi import (  # type: ignore[import-untyped]  # Django ships no types
        get_wsgi_application as django_wsgi_application,
    )

    return wsgi.SpanlineMiddleware(
        django_wsgi_application(), trust_actor=trust_actor, record_query=record_query
    )


def get_asgi_application(
    *, trust_actor: bool = False, record_query: bool = False
) -> asgi.SpanlineASGIMiddleware:
    """Django's ASGI application inside
    :class:`~spanline.integrations.asgi.SpanlineASGIMiddleware` (same options)."""
    from django.core.asgi import (  # type: ignore[import-untyped]  # Django ships no types
        get_asgi_application as django_asgi_application,
    )

    return asgi.SpanlineASGIMiddleware(
        django_asgi_application(), trust_actor=trust_actor, record_query=record_query
    )
