"""The URL configuration of tests/test_django.py's Django project (settings are
configured in that module)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import include, path, re_path

import spanline


def order(request: HttpRequest, order_id: int) -> HttpResponse:
    with spanline.span("load-order"):
        return HttpResponse(f"order {order_id}")


def archive(request: HttpRequest, year: str) -> HttpResponse:
    return HttpResponse(year)


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("view exploded")


def unavailable(request: HttpRequest) -> HttpResponse:
    return HttpResponse("later", status=503)


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("home")


async def async_order(request: HttpRequest, order_id: int) -> HttpResponse:
    with spanline.span("load-order"):
        return HttpResponse(f"async order {order_id}")


api = [path("items/<slug:name>/", lambda request, name: HttpResponse(name))]

urlpatterns = [
    path("", home),
    path("orders/<int:order_id>/", order),
    path("async/orders/<int:order_id>/", async_order),
    re_path(r"^archive/(?P<year>[0-9]{4})/$", archive),
    path("api/", include(api)),
    path("boom/", boom),
    path("unavailable/", unavailable),
]
