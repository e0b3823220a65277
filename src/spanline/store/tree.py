"""A trace's call tree, rebuilt from the parent links of its stored rows.

Spans whose parent is not in the store (it ran in a service that does not report
here, or it was pruned) become roots marked ``orphan``; so do spans caught in a
parent-link cycle (only malformed input can make one), which is broken where it is
found.  Children are in start order.  Nothing here recurses, so a tree of any depth
is safe.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from spanline.store.row import SpanRow

__all__ = ["TreeNode", "build_tree"]


@dataclass(eq=False, slots=True)
class TreeNode:
    """One span in the tree: its row, its children, its depth (roots are 0) and
    whether it is a root only because its parent is missing."""

    span: SpanRow
    children: list[TreeNode] = field(default_factory=list)
    depth: int = 0
    orphan: bool = False

    def walk(self) -> Iterator[TreeNode]:
        """This node and everything below it, depth first, in start order."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def to_dict(self) -> dict[str, Any]:
        """The subtree as nested dicts (the row's :meth:`SpanRow.to_dict` plus
        ``children``, ``depth`` and ``orphan``), built without recursion."""
        root = {**self.span.to_dict(), "depth": self.depth, "orphan": self.orphan}
        pending = [(self, root)]
        while pending:
            node, data = pending.pop()
            data["children"] = [
                {**c.span.to_dict(), "depth": c.depth, "orphan": c.orphan} for c in node.children
            ]
            pending.extend(zip(node.children, data["children"], strict=True))
        return root


def build_tree(rows: Sequence[SpanRow]) -> list[TreeNode]:
    """The roots of the trees ``rows`` form, in start order (see the module docs)."""
    ordered = sorted(rows, key=lambda r: (r.start_ns, r.span_hex))
    nodes: dict[str, TreeNode] = {}
    for row in ordered:
        nodes.setdefault(row.span_hex, TreeNode(row))  # a duplicate row is shown once
    roots: list[TreeNode] = []
    parent_of: dict[str, TreeNode] = {}
    for node in nodes.values():
        parent_hex = node.span.parent_hex
        parent = nodes.get(parent_hex) if parent_hex and parent_hex != node.span.span_hex else None
        if parent is None:
            node.orphan = parent_hex is not None
            roots.append(node)
        else:
            parent.children.append(node)
            parent_of[node.span.span_hex] = parent
    reached: set[str] = set()
    _mark(roots, reached)
    for node in nodes.values():  # in start order: cycles are broken at their earliest span
        if node.span.span_hex not in reached:
            parent = parent_of.pop(node.span.span_hex)
            parent.children.remove(node)
            node.orphan = True
            roots.append(node)
            _mark([node], reached)
    roots.sort(key=lambda n: (n.span.start_ns, n.span.span_hex))
    return roots


def _mark(roots: list[TreeNode], reached: set[str]) -> None:
    """Set depths below ``roots`` and record every node reached."""
    stack = [(root, 0) for root in roots]
    while stack:
        node, depth = stack.pop()
        if node.span.span_hex in reached:
            continue
        reached.add(node.span.span_hex)
        node.depth = depth
        stack.extend((child, depth + 1) for child in node.children)
