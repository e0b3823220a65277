"""Terminal output with rich: call trees, span and trace tables, per-operation numbers.

Colors say the status (red: error, green: ok), the cost (yellow: a span taking at
least half of its trace) and who (cyan: service, magenta: actor); rich drops them
when the output is not a terminal, so piped output is plain text.
"""

from __future__ import annotations

import datetime
import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from spanline.store import OperationStats, SpanRow, TraceSummary, TreeNode

__all__ = [
    "console",
    "ms",
    "operations_table",
    "print_json",
    "spans_table",
    "trace_tree",
    "traces_table",
]

_STATUS_STYLE = {"error": "bold red", "ok": "green", "unset": "dim"}


_PIPED_WIDTH = 220


def console(stderr: bool = False) -> Console:
    """A console on stdout (or stderr).  Piped, it is wide enough to keep ids and
    names whole (rich would assume 80 columns)."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else _PIPED_WIDTH
    return Console(stderr=stderr, highlight=False, width=width)


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (plain, so it can be piped to ``jq``)."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def ms(duration_ns: int) -> str:
    """A duration in milliseconds, two decimals."""
    return f"{duration_ns / 1e6:.2f} ms"


def _when(start_ns: int) -> str:
    moment = datetime.datetime.fromtimestamp(start_ns / 1e9).astimezone()
    return moment.strftime("%m-%d %H:%M:%S.%f")[:-3]


def _actor(row: SpanRow) -> str:
    if not row.actor_type:
        return ""
    return f"{row.actor_type}:{row.actor_id}" if row.actor_id else row.actor_type


def _label(node: TreeNode, trace_ns: int, root: bool) -> Text:
    row = node.span
    text = Text()
    text.append(row.name, style="bold red" if row.status == "error" else "bold")
    if row.type != "span":
        text.append(f" ({row.type})", style="dim")
    slow = trace_ns > 0 and row.duration_ns * 2 >= trace_ns and not root
    text.append(f"  {ms(row.duration_ns)}", style="yellow" if slow else "")
    if row.service:
        text.append(f"  {row.service}", style="cyan")
    if row.status != "unset":
        text.append(f"  {row.status.upper()}", style=_STATUS_STYLE.get(row.status, ""))
        if row.status_message:
            text.append(f" {row.status_message}", style="red")
    if root and row.actor_type:
        text.append(f"  [{_actor(row)}]", style="magenta")
    if node.orphan:
        text.append("  (parent not in the store)", style="dim italic")
    text.append(f"  {row.span_id}", style="dim")
    return text


def trace_tree(roots: Sequence[TreeNode], summary: TraceSummary | None) -> Tree:
    """The call tree of one trace, headed by its ids and counts."""
    first = roots[0].span
    spans = sum(1 for root in roots for _ in root.walk())
    errors = sum(1 for root in roots for n in root.walk() if n.span.status == "error")
    start = min(r.span.start_ns for r in roots)
    end = max(n.span.end_ns for r in roots for n in r.walk())
    if summary is not None:
        start, end = summary.start_ns, summary.end_ns
    head = Text()
    head.append(f"trace {first.trace_id}", style="bold")
    head.append(f"  {first.trace_hex}", style="dim")
    head.append(f"  {spans} spans  {ms(end - start)}  {_when(start)}")
    if errors:
        head.append(f"  {errors} errors", style="bold red")
    tree = Tree(head)
    stack: list[tuple[TreeNode, Tree, bool]] = [(root, tree, True) for root in reversed(roots)]
    while stack:  # no recursion: a deep tree is safe
        node, parent, is_root = stack.pop()
        branch = parent.add(_label(node, end - start, is_root))
        stack.extend((child, branch, False) for child in reversed(node.children))
    return tree


def spans_table(rows: Sequence[SpanRow]) -> Table:
    """Spans as a table, one per line."""
    table = Table(show_edge=False, pad_edge=False)
    for column, justify in (
        ("start", "left"),
        ("trace", "left"),
        ("name", "left"),
        ("service", "left"),
        ("actor", "left"),
        ("status", "left"),
        ("duration", "right"),
    ):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for row in rows:
        table.add_row(
            _when(row.start_ns),
            row.trace_id,
            row.name,
            Text(row.service or "", style="cyan"),
            Text(_actor(row), style="magenta"),
            Text(row.status, style=_STATUS_STYLE.get(row.status, "")),
            ms(row.duration_ns),
        )
    return table


def traces_table(summaries: Sequence[TraceSummary]) -> Table:
    """Trace summaries as a table."""
    table = Table(show_edge=False, pad_edge=False)
    for column, justify in (
        ("start", "left"),
        ("trace", "left"),
        ("root", "left"),
        ("service", "left"),
        ("actor", "left"),
        ("spans", "right"),
        ("errors", "right"),
        ("duration", "right"),
    ):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for item in summaries:
        actor = item.actor_type or ""
        if item.actor_type and item.actor_id:
            actor = f"{item.actor_type}:{item.actor_id}"
        table.add_row(
            _when(item.start_ns),
            item.trace_id,
            item.root_name or "",
            Text(item.root_service or "", style="cyan"),
            Text(actor, style="magenta"),
            str(item.span_count),
            Text(str(item.error_count), style="bold red" if item.error_count else ""),
            ms(item.duration_ns),
        )
    return table


def operations_table(stats: Sequence[OperationStats]) -> Table:
    """Per-operation numbers as a table (durations in ms)."""
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("operation", overflow="fold")
    table.add_column("service", overflow="fold")
    for column in ("count", "errors", "error %", "rate/s", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="right", no_wrap=True)
    for op in stats:
        table.add_row(
            op.name,
            Text(op.service or "", style="cyan"),
            str(op.count),
            Text(str(op.errors), style="bold red" if op.errors else ""),
            f"{op.error_rate:.1%}",
            f"{op.rate_per_s:.2f}",
            *(f"{value / 1e6:.2f}" for value in (op.p50_ns, op.p95_ns, op.p99_ns, op.max_ns)),
        )
    return table
