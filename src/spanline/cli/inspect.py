"""``spanline tree``, ``query`` and ``stats``: reading the store from a terminal."""

from __future__ import annotations

import datetime
from typing import Any

import click

from spanline.cli.options import ATTRIBUTE, MOMENT, opened, store_option
from spanline.cli.render import (
    console,
    operations_table,
    print_json,
    spans_table,
    trace_tree,
    traces_table,
)

__all__ = ["query", "stats", "tree"]

_SPAN_ORDERS = ("-start", "start", "-duration", "duration", "name")
_TRACE_ORDERS = ("-start", "start", "-duration", "duration", "-spans", "spans", "-errors", "errors")


@click.command()
@click.argument("trace_id")
@store_option
@click.option("--json", "as_json", is_flag=True, help="print the tree as nested JSON")
def tree(trace_id: str, store: str | None, as_json: bool) -> None:
    """Show the call tree of one trace, with durations, status, service and actor.

    TRACE_ID is the tr_… id, the external id the trace was started with, or the
    32-hex W3C id (as Jaeger and Tempo show it).
    """
    with opened(store) as handle:
        roots = handle.tree(trace_id)
        if not roots:
            raise click.ClickException(
                f"no trace {trace_id!r} in the store {handle.location.display}"
            )
        summary = handle.summary(trace_id)
    if as_json:
        print_json([root.to_dict() for root in roots])
        return
    console().print(trace_tree(roots, summary))


@click.command()
@store_option
@click.option("--traces", "by_trace", is_flag=True, help="list matching traces instead of spans")
@click.option("--trace", "trace_id", metavar="TRACE_ID", help="only the spans of this trace")
@click.option("--actor", help="the trace's actor: TYPE:ID (user:42) or a TYPE alone")
@click.option("--name", help="span name (with --traces: a span of the trace has it)")
@click.option("--service", help="service name (with --traces: a span of the trace has it)")
@click.option(
    "--status",
    type=click.Choice(["unset", "ok", "error"]),
    help="span status (with --traces: error = has an error, ok/unset = has none)",
)
@click.option("--kind", help="span kind: internal, server, client, producer or consumer")
@click.option("--type", "span_type", help="spanline span type: span, operation or handler")
@click.option("--since", type=MOMENT, help="started at or after: ISO time or an age (15m, 2h)")
@click.option("--until", type=MOMENT, help="started before: ISO time or an age (15m, 2h)")
@click.option("--min-ms", type=float, help="lasted at least this many milliseconds")
@click.option("--max-ms", type=float, help="lasted at most this many milliseconds")
@click.option(
    "--attr",
    "attributes",
    type=ATTRIBUTE,
    multiple=True,
    help="attribute KEY=VALUE (repeatable; all must match)",
)
@click.option(
    "--order",
    help=f"sort: spans {', '.join(_SPAN_ORDERS)}; traces {', '.join(_TRACE_ORDERS)} "
    "(default -start: newest first)",
    default="-start",
    show_default=False,
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, help="rows per page (20)")
@click.option("--page", type=click.IntRange(1), default=1, help="page number, from 1")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def query(
    store: str | None,
    by_trace: bool,
    trace_id: str | None,
    actor: str | None,
    name: str | None,
    service: str | None,
    status: str | None,
    kind: str | None,
    span_type: str | None,
    since: datetime.datetime | None,
    until: datetime.datetime | None,
    min_ms: float | None,
    max_ms: float | None,
    attributes: tuple[tuple[str, str], ...],
    order: str,
    limit: int,
    page: int,
    as_json: bool,
) -> None:
    """Search spans (or traces, with --traces) by actor, name, service, status,
    time, duration and attributes, a page at a time."""
    for option, value in (("--min-ms", min_ms), ("--max-ms", max_ms)):
        if value is not None and value < 0:
            raise click.BadParameter(f"{value} must be >= 0", param_hint=option)
    if by_trace:
        for option, given in (("--trace", trace_id), ("--kind", kind), ("--type", span_type)):
            if given is not None:
                raise click.UsageError(f"{option} applies to spans, not to --traces")
    common: dict[str, Any] = {
        "actor": actor,
        "name": name,
        "service": service,
        "status": status,
        "since": since,
        "until": until,
        "min_duration": None if min_ms is None else round(min_ms * 1e6),
        "max_duration": None if max_ms is None else round(max_ms * 1e6),
        "attributes": dict(attributes) or None,
        "order": order,
        "limit": limit,
        "offset": (page - 1) * limit,
    }
    with opened(store) as handle:
        if by_trace:
            traces = handle.traces(**common)
            items = [item.to_dict() for item in traces.items]
            table, has_more = traces_table(traces.items), traces.has_more
        else:
            spans = handle.spans(trace=trace_id, kind=kind, type=span_type, **common)
            items = [row.to_dict() for row in spans.items]
            table, has_more = spans_table(spans.items), spans.has_more
    if as_json:
        print_json({"items": items, "page": page, "limit": limit, "has_more": has_more})
        return
    out = console()
    if not items:
        out.print("nothing matches")
        return
    out.print(table)
    first = (page - 1) * limit + 1
    more = f"; next: --page {page + 1}" if has_more else ""
    out.print(f"{first}-{first + len(items) - 1}{more}", style="dim")


@click.command()
@store_option
@click.option("--since", type=MOMENT, help="spans started at or after: ISO time or an age (1h)")
@click.option("--until", type=MOMENT, help="spans started before: ISO time or an age")
@click.option("--service", help="only this service")
@click.option("--name", help="only this operation (span name)")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def stats(
    store: str | None,
    since: datetime.datetime | None,
    until: datetime.datetime | None,
    service: str | None,
    name: str | None,
    as_json: bool,
) -> None:
    """Per-operation numbers: count, errors, rate and p50/p95/p99/max duration,
    busiest first."""
    with opened(store) as handle:
        found = handle.operations(since=since, until=until, service=service, name=name)
        counts = handle.counts()
    if as_json:
        print_json([op.to_dict() for op in found])
        return
    out = console()
    if not found:
        out.print("no spans in that window")
        return
    out.print(operations_table(found))
    out.print(f"{counts['spans']} spans in {counts['traces']} traces in the store", style="dim")
