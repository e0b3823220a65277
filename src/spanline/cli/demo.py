"""``spanline demo``: run the shop workload, print its trees, record it in the store.

The workload (:mod:`spanline.demo.workload`) plays several services in one process;
each span is stored with the service of its operation
(:func:`~spanline.demo.workload.service_of`), so the store and the viewer show a
multi-service system.  The store is flushed before the command returns, so a
following ``spanline tree`` or ``spanline serve`` sees every span.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from spanline.cli.options import location_of, store_option, user_errors
from spanline.cli.render import console

if TYPE_CHECKING:
    from spanline import Span
    from spanline.store import StoreLocation

__all__ = ["demo"]


@click.command()
@click.option(
    "--orders", type=click.IntRange(1, 10_000), default=5, show_default=True,
    help="orders to place",
)  # fmt: skip
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="also write each trace as JSON into DIR",
)
@store_option
@click.option("--no-store", is_flag=True, help="only print the trees; record nothing")
@click.option("--quiet", "-q", is_flag=True, help="do not print the trees")
@click.option("--seed", type=int, default=7, show_default=True, help="random seed of the workload")
def demo(
    orders: int, out: Path | None, store: str | None, no_store: bool, quiet: bool, seed: int
) -> None:
    """Run a small multi-service shop (users placing orders, a payment service, a
    mailer job in another thread, a nightly billing run; one declined card, one
    slow payment), print each trace as a tree and record it in the store."""
    import spanline
    from spanline.core.render import render_tree
    from spanline.demo.workload import run

    location = None if no_store else location_of(store)
    if location is not None:
        with user_errors():  # an unusable store fails now, not after the workload
            spanline.store.open(location).close()
    spanline.configure(ring_size=max(spanline.settings.ring_size, orders * 3 + 10))
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console(stderr=True),
        transient=True,
    )
    with progress:
        task = progress.add_task("placing orders", total=orders + 1)
        roots = run(orders=orders, seed=seed, progress=lambda n: progress.update(task, completed=n))
    if not quiet:
        for root in roots:
            click.echo(f"trace {root.trace_id}")
            click.echo(render_tree(root))
            click.echo()
    written = []
    if out is not None:
        for root in roots:
            with user_errors(f"cannot write to {out}: "):
                path = spanline.tracer.write(out, root)
            if path is not None:
                written.append(path)
    spans = [span for root in roots for span in _walk(root)]
    errors = sum(1 for span in spans if span.status == spanline.StatusCode.ERROR)
    traces = len({root.trace_id for root in roots})
    line = f"{traces} traces, {len(spans)} spans, {errors} with errors"
    if written:
        line += f"; JSON written to {out}"
    if location is not None:
        services = _record(spans, location)
        line += f"; recorded in {location.display} (services: {', '.join(services)})"
    click.echo(line)
    if location is not None and not quiet:
        hint = "" if store is None else f" --store {store}"
        first = roots[0].trace_id if roots else "TRACE_ID"
        click.echo(f"next: spanline tree {first}{hint}   or   spanline serve{hint}")


def _record(spans: list[Span], location: StoreLocation) -> list[str]:
    """Write ``spans`` with their services and wait until they are committed."""
    from spanline.demo.workload import service_of
    from spanline.store import StoreWriter

    groups: dict[str, list[Span]] = {}
    for span in spans:
        groups.setdefault(service_of(span), []).append(span)
    with user_errors():
        writer = StoreWriter(location)
    try:
        for service, group in groups.items():
            writer.submit_spans(group, service)
        flushed = writer.flush(30)
        stats = writer.stats()
    finally:
        writer.close()
    if not flushed or stats["written"] < len(spans):
        raise click.ClickException(
            f"only {stats['written']} of {len(spans)} spans reached the store "
            f"{location.display}: {stats['last_error'] or 'not written in time'}"
        )
    return sorted(groups)


def _walk(root: Span) -> Iterator[Span]:
    stack = [root]
    while stack:
        span = stack.pop()
        yield span
        stack.extend(reversed(span.children))
