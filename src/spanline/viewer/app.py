"""The viewer's Starlette application: HTML pages, their JSON twins, live updates and
the OTLP/HTTP receiver, all on one port.

Every store call runs in a worker thread (``run_in_threadpool``) so a slow query never
stalls the event loop; templates escape every value (Jinja2 autoescape) and the page
script writes span data with ``textContent`` only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from spanline.core.trace import chain
from spanline.viewer.ingest import DEFAULT_MAX_BODY, handle_export, refuse_oversized
from spanline.viewer.query import WINDOW_LABELS, BadQueryError, parse_search, window_start_ns
from spanline.viewer.source import TraceSource

__all__ = ["API_ROUTES", "create_app"]

HERE = Path(__file__).parent
API_ROUTES = {
    "/api": "this index",
    "/api/traces": "trace search: service, name, actor, status, min_ms, max_ms, window, "
    "attr (key=value), sort, limit, offset",
    "/api/traces/{trace_id}": "every span of one trace (tr_ id or W3C hex); ?download=1",
    "/api/operations": "per-operation count, rate, error rate, p50/p95/p99: window, service",
    "/api/services": "service names",
    "/api/live": "server-sent events: a 'traces' event whenever new spans are stored",
    "/v1/traces": "OTLP/HTTP trace receiver (POST, protobuf or JSON, gzip)",
}
LIVE_POLL_S = 0.5


def _duration(ns: int | None) -> str:
    if ns is None:
        return "in progress"
    if ns < 1_000_000:
        return f"{ns / 1000:.0f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.1f} ms"
    return f"{ns / 1e9:.2f} s"


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


class _Views:
    """The route handlers, sharing the source, the templates and the limits."""

    def __init__(self, source: TraceSource, max_body: int, otlp_url: str) -> None:
        self.source = source
        self.max_body = max_body
        self.otlp_url = otlp_url
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )

    def page(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(name).render(store_label=self.source.label, **context)
        return HTMLResponse(html, status_code=status)

    async def search_data(self, request: Request) -> dict[str, Any]:
        query = parse_search(request.query_params)
        since = window_start_ns(query.window)
        traces = await run_in_threadpool(self.source.search, query, since)
        return {"query": query, "traces": traces}

    @staticmethod
    def decorate(traces: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {**t, "duration": _duration(t["duration_ns"]), "started": _when(t["start_ns"])}
            for t in traces
        ]

    async def search_page(self, request: Request) -> Response:
        params = dict(request.query_params)
        services = await run_in_threadpool(self.source.services)
        try:
            data = await self.search_data(request)
            query, traces, error = data["query"], data["traces"], None
        except BadQueryError as bad:
            query, traces, error = parse_search({}), [], str(bad)

        def link(**changes: Any) -> str:
            merged = {k: v for k, v in {**params, **changes}.items() if v not in (None, "")}
            merged.pop("fragment", None)
            return "/?" + urlencode(merged)

        flip = {"start": "-start", "duration": "-duration", "spans": "-spans"}
        sort_links = {
            key: link(sort=key if query.sort == desc else desc, offset="")
            for key, desc in flip.items()
        }
        more = len(traces) == query.limit
        context = {
            "page": "search",
            "q": query,
            "services": services,
            "windows": WINDOW_LABELS,
            "traces": self.decorate(traces),
            "traces_json": traces,
            "error": error,
            "sort_links": sort_links,
            "next_page": link(offset=query.offset + query.limit) if more else None,
            "otlp_url": self.otlp_url,
        }
        name = "results.html" if params.get("fragment") == "results" else "search.html"
        return self.page(name, 400 if error else 200, **context)

    async def api_traces(self, request: Request) -> Response:
        try:
            data = await self.search_data(request)
        except BadQueryError as bad:
            return JSONResponse({"error": str(bad)}, status_code=400)
        return JSONResponse({"traces": data["traces"]})

    async def load_trace(self, request: Request) -> dict[str, Any] | None:
        trace_id = request.path_params["trace_id"]
        spans = await run_in_threadpool(self.source.trace, trace_id)
        if not spans:
            return None
        spans.sort(key=lambda s: s["start_ns"])
        start = spans[0]["start_ns"]
        ends = [s["end_ns"] or s["start_ns"] for s in spans]
        ids = {s["span_id"] for s in spans}
        roots = [s for s in spans if s["parent_span_id"] not in ids]
        root = roots[0] if roots else spans[0]
        return {
            "trace_id": root["trace_id"],
            "trace_hex": root["trace_hex"],
            "root_name": root["name"],
            "start_ns": start,
            "duration_ns": max(ends) - start,
            "span_count": len(spans),
            "services": sorted({s["service"] for s in spans if s["service"]}),
            "chain": _chain(spans),
            "spans": spans,
        }

    async def trace_page(self, request: Request) -> Response:
        trace = await self.load_trace(request)
        if trace is None:
            return self.page(
                "missing.html", 404, page="trace", what=request.path_params["trace_id"]
            )
        summary = {
            **{k: v for k, v in trace.items() if k != "spans"},
            "started": _when(trace["start_ns"]),
            "duration": _duration(trace["duration_ns"]),
        }
        return self.page("trace.html", page="trace", trace=summary)

    async def api_trace(self, request: Request) -> Response:
        trace = await self.load_trace(request)
        if trace is None:
            return JSONResponse({"error": "no such trace"}, status_code=404)
        headers = {}
        if request.query_params.get("download"):
            name = "".join(c for c in trace["trace_id"] if c.isalnum() or c in "_-")
            headers["content-disposition"] = f'attachment; filename="{name}.json"'
        return JSONResponse(trace, headers=headers)

    async def operations_data(self, request: Request) -> dict[str, Any]:
        window = request.query_params.get("window") or "1h"
        if window not in dict(WINDOW_LABELS):
            raise BadQueryError(f"window must be one of {', '.join(dict(WINDOW_LABELS))}")
        service = request.query_params.get("service") or None
        since = window_start_ns(window)
        out = await run_in_threadpool(self.source.operations, since, service)
        return {"window": window, "service": service, "operations": out}

    async def operations_page(self, request: Request) -> Response:
        services = await run_in_threadpool(self.source.services)
        try:
            data = await self.operations_data(request)
        except BadQueryError as bad:
            return self.page("missing.html", 400, page="operations", what=str(bad))
        rows = [
            {
                **r,
                "rate": f"{r['rate_per_s']:.2f}/s",
                "error_rate": f"{r['error_rate'] * 100:.1f}%",
                "p50": _duration(r["p50_ns"]),
                "p95": _duration(r["p95_ns"]),
                "p99": _duration(r["p99_ns"]),
            }
            for r in data["operations"]
        ]
        return self.page(
            "operations.html",
            page="operations",
            windows=WINDOW_LABELS,
            window=data["window"],
            service=data["service"],
            services=services,
            operations=rows,
        )

    async def api_operations(self, request: Request) -> Response:
        try:
            return JSONResponse(await self.operations_data(request))
        except BadQueryError as bad:
            return JSONResponse({"error": str(bad)}, status_code=400)

    async def api_services(self, request: Request) -> Response:
        return JSONResponse({"services": await run_in_threadpool(self.source.services)})

    async def api_index(self, request: Request) -> Response:
        return JSONResponse({"endpoints": API_ROUTES})

    async def live(self, request: Request) -> Response:
        async def events() -> AsyncIterator[str]:
            seen = await run_in_threadpool(self.source.version)
            yield "retry: 2000\n\n"
            while not await request.is_disconnected():
                await asyncio.sleep(LIVE_POLL_S)
                now = await run_in_threadpool(self.source.version)
                if now != seen:
                    seen = now
                    yield f"event: traces\ndata: {json.dumps({'version': now})}\n\n"
                else:
                    yield ": keep-alive\n\n"

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    async def otlp(self, request: Request) -> Response:
        content_type = request.headers.get("content-type")
        declared = request.headers.get("content-length") or ""
        if declared.isdigit() and int(declared) > self.max_body:
            result = refuse_oversized(content_type, self.max_body)  # refused unread
        else:
            body = await _read_capped(request, self.max_body)
            if body is None:
                result = refuse_oversized(content_type, self.max_body)
            else:
                result = await run_in_threadpool(
                    handle_export,
                    body,
                    content_type,
                    request.headers.get("content-encoding"),
                    self.source.ingest,
                    max_body=self.max_body,
                )
        return Response(result.body, status_code=result.status, media_type=result.content_type)


def create_app(
    source: TraceSource,
    *,
    max_body: int = DEFAULT_MAX_BODY,
    otlp_url: str = "http://127.0.0.1:4318/v1/traces",
) -> Starlette:
    """The ASGI app for ``source`` (wrap it in :class:`~spanline.viewer.security.Guard`
    before serving it on a network)."""
    views = _Views(source, max_body, otlp_url)
    routes = [
        Route("/", views.search_page),
        Route("/traces/{trace_id}", views.trace_page),
        Route("/operations", views.operations_page),
        Route("/api", views.api_index),
        Route("/api/traces", views.api_traces),
        Route("/api/traces/{trace_id}", views.api_trace),
        Route("/api/operations", views.api_operations),
        Route("/api/services", views.api_services),
        Route("/api/live", views.live),
        Route("/v1/traces", views.otlp, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes)


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or ``None`` once it grows past ``limit`` (never held in full)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _chain(spans: list[dict[str, Any]]) -> str:
    """The Dex chain of the trace's deepest operation
    (``user:42 > orders.Validate(op_2nFg7K) > orders.Place(op_3kPm8N)``)."""
    deepest: list[dict[str, str]] = []
    for span in spans:
        frames = [f for f in span.get("frames") or [] if isinstance(f, dict)]
        if len(frames) > len(deepest):
            deepest = frames
    try:
        return chain(deepest)
    except Exception:  # noqa: BLE001 - frames from another writer may be odd: no chain
        return ""
