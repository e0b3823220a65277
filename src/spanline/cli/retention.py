"""``spanline retention``: apply a retention policy to a store now.

The same steps the store writer takes in the background (whole traces, oldest
first, one short transaction of at most ``--chunk`` spans at a time), run to the
end once, so it can be run from cron against a store nobody writes with a policy.
"""

from __future__ import annotations

import datetime
import os
import time

import click

from spanline.cli.options import AGE, location_of, store_option, user_errors
from spanline.cli.render import console, print_json

__all__ = ["retention"]


@click.command()
@store_option
@click.option("--max-age", type=AGE, help="delete traces that started longer ago (7d, 12h)")
@click.option(
    "--max-spans",
    type=click.IntRange(0),
    help="then delete the oldest traces beyond this many spans",
)
@click.option(
    "--chunk",
    type=click.IntRange(1),
    default=2000,
    show_default=True,
    help="spans deleted per transaction",
)
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def retention(
    store: str | None,
    max_age: datetime.timedelta | None,
    max_spans: int | None,
    chunk: int,
    as_json: bool,
) -> None:
    """Delete old traces now: those older than --max-age, then the oldest beyond
    --max-spans spans.  Whole traces go, oldest first; on SQLite the trace of the
    newest span is always kept."""
    from spanline.store.backend import open_backend

    if max_age is None and max_spans is None:
        raise click.UsageError("give --max-age, --max-spans or both")
    location = location_of(store)
    if location.kind == "sqlite" and not os.path.exists(location.target):
        raise click.ClickException(f"there is no store at {location.target}")
    backend = open_backend(location)
    by_age = by_count = 0
    with user_errors(f"retention on {location.display}: "):
        try:
            backend.connect()
            if max_age is not None:
                before = time.time_ns() - int(max_age.total_seconds() * 1e9)
                while (deleted := backend.delete_oldest(chunk, before)) > 0:
                    by_age += deleted
            if max_spans is not None:
                excess = backend.count_spans() - max_spans
                while excess > 0 and (deleted := backend.delete_oldest(min(chunk, excess), None)):
                    by_count += deleted
                    excess -= deleted
            left = backend.count_spans()
        finally:
            backend.close()
    result = {
        "store": location.display,
        "deleted": by_age + by_count,
        "deleted_by_age": by_age,
        "deleted_by_count": by_count,
        "spans_left": left,
    }
    if as_json:
        print_json(result)
        return
    why = []
    if max_age is not None:
        why.append(f"{by_age} older than {_age(max_age)}")
    if max_spans is not None:
        why.append(f"{by_count} beyond {max_spans} spans")
    console().print(
        f"deleted {by_age + by_count} spans from {location.display} ({', '.join(why)}); "
        f"{left} spans left"
    )


def _age(age: datetime.timedelta) -> str:
    """``7d``, ``12h``, ``90s``: the largest unit that divides the age."""
    seconds = age.total_seconds()
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
