"""Plain-text rendering of a span tree (the demo, the testing kit's outlines)."""

from __future__ import annotations

import json

from spanline.core.actor import actor_label
from spanline.core.jsonsafe import jsonable
from spanline.core.span import Span, StatusCode

__all__ = ["outline", "render_tree"]

_MAX_RECORDS = 80


def _short(ident: str | None) -> str:
    return f"{ident[:3]}{ident[-6:]}" if ident else "-"


def _line(span: Span) -> str:
    duration = span.duration
    parts = [
        span.name,
        _short(span.id),
        f"{duration * 1000:.2f} ms" if duration is not None else "running",
    ]
    if span.status == StatusCode.ERROR:
        parts.append(f"ERROR {span.status_message or ''}".rstrip())
    if span.records:
        text = json.dumps(jsonable(span.records), ensure_ascii=False, separators=(",", ":"))
        parts.append(text if len(text) <= _MAX_RECORDS else text[: _MAX_RECORDS - 1] + "…")
    return "  ".join(parts)


def render_tree(root: Span) -> str:
    """The tree as indented text with box-drawing branches, one span per line."""
    lines = [_line(root)]
    actor = root.actor
    if actor:
        lines[0] += f"  [{actor_label(actor)}]"

    def walk(span: Span, prefix: str) -> None:
        children = sorted(span.children, key=lambda c: c.start_ns)
        for i, child in enumerate(children):
            last = i == len(children) - 1
            lines.append(prefix + ("└── " if last else "├── ") + _line(child))
            walk(child, prefix + ("    " if last else "│   "))

    walk(root, "")
    return "\n".join(lines)


def outline(root: Span) -> str:
    """Only the names, indented two spaces per level (stable, for assertions)."""
    lines: list[str] = []

    def walk(span: Span, depth: int) -> None:
        lines.append("  " * depth + span.name)
        for child in sorted(span.children, key=lambda c: c.start_ns):
            walk(child, depth + 1)

    walk(root, 0)
    return "\n".join(lines)
