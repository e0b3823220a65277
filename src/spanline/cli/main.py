"""``spanline`` command line entry point.

Only ``demo`` exists so far; it uses argparse so the core keeps zero dependencies.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spanline import Span

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    import spanline
    from spanline.core.render import render_tree
    from spanline.demo.workload import run

    if args.orders < 1:
        print("spanline demo: --orders must be at least 1", file=sys.stderr)
        return 2
    spanline.configure(ring_size=max(spanline.settings.ring_size, args.orders * 3 + 10))
    roots = run(orders=args.orders)
    for root in roots:
        print(f"trace {root.trace_id}")
        print(render_tree(root))
        print()
    written = []
    if args.out:
        for root in roots:
            path = spanline.tracer.write(args.out, root)
            if path is not None:
                written.append(path)
    errors = sum(1 for r in roots for s in _walk(r) if s.status == spanline.StatusCode.ERROR)
    spans = sum(1 for r in roots for _ in _walk(r))
    print(f"{len(roots)} traces, {spans} spans, {errors} with errors", end="")
    print(f"; JSON written to {args.out}" if written else "")
    return 0


def _walk(span: Span) -> list[Span]:
    out: list[Span] = [span]
    for child in span.children:
        out.extend(_walk(child))
    return out


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed so tests can check every command has help)."""
    parser = argparse.ArgumentParser(
        prog="spanline", description="spanline: always-on application tracing."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run a small shop workload (actors, operations, events, a background job, "
        "an error and a slow path) and print its trace trees",
        description="Run a demo workload and print each trace as a tree.",
    )
    demo.add_argument("--orders", type=int, default=5, help="orders to place (default 5)")
    demo.add_argument("--out", metavar="DIR", help="also write each trace as JSON into DIR")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
