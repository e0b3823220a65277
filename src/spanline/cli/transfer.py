"""``spanline export`` and ``spanline import``: traces out of a store and into one."""

from __future__ import annotations

import json
from pathlib import Path

import click

from spanline.cli.formats import load, otlp_document, rows_document
from spanline.cli.options import location_of, opened, store_option, user_errors
from spanline.cli.render import console

__all__ = ["export", "import_"]

_CHUNK = 5000


@click.command()
@click.argument("trace_id")
@store_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "otlp-json"]),
    default="json",
    show_default=True,
    help="json: spanline rows, every column; otlp-json: an OTLP/HTTP JSON request "
    "(hex ids) that Jaeger, Tempo or 'spanline import' read",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="write to this file instead of stdout",
)
def export(trace_id: str, store: str | None, fmt: str, output: Path | None) -> None:
    """Export one trace's spans as spanline JSON or OTLP JSON.

    TRACE_ID is the tr_… id, the external id or the 32-hex W3C id.
    """
    with opened(store) as handle:
        rows = handle.trace(trace_id)
        if not rows:
            raise click.ClickException(
                f"no trace {trace_id!r} in the store {handle.location.display}"
            )
    with user_errors("cannot write the OTLP JSON: " if fmt == "otlp-json" else ""):
        try:
            document = rows_document(rows) if fmt == "json" else otlp_document(rows)
        except ImportError:
            raise click.ClickException(
                "--format otlp-json needs opentelemetry-proto: pip install 'spanline[otlp]'"
            ) from None
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    with user_errors(f"cannot write {output}: "):
        output.write_text(text, encoding="utf-8")
    console(stderr=True).print(f"{len(rows)} spans written to {output}")


@click.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@store_option
def import_(file: Path, store: str | None) -> None:
    """Import spans from a file: spanline JSON (from 'spanline export') or OTLP
    (JSON with hex or base64 ids, or protobuf).  FILE may be - for stdin."""
    from spanline.store import StoreWriter
    from spanline.store import open as open_store

    name = "stdin" if str(file) == "-" else str(file)
    with user_errors(f"cannot read {name}: "):
        data = _read(file)
    with user_errors(f"cannot import {name}: "):
        loaded = load(data)
    if not loaded.rows:
        problem = f": {loaded.problems}" if loaded.problems else ""
        raise click.ClickException(f"cannot import {name}: no valid spans{problem}")
    location = location_of(store)
    with user_errors():
        open_store(location).close()  # an unusable store fails here, at once and clearly
        writer = StoreWriter(location, max_pending=max(20_000, 2 * _CHUNK))
    try:
        for start in range(0, len(loaded.rows), _CHUNK):
            writer.submit(loaded.rows[start : start + _CHUNK], wait_s=120)
        writer.flush(60)
        stats = writer.stats()
    finally:
        writer.close()
    written = int(stats["written"])
    if written < len(loaded.rows) - int(stats["refused"]):
        raise click.ClickException(
            f"only {written} of {len(loaded.rows)} spans from {name} reached the store "
            f"{location.display}: {stats['last_error'] or 'the writer gave up'}"
        )
    traces = len({row.trace_hex for row in loaded.rows})
    out = console()
    out.print(
        f"imported {written} spans of {traces} trace{'' if traces == 1 else 's'} "
        f"({loaded.format}) from {name} "
        f"into {location.display}"
    )
    if stats["refused"]:
        out.print(f"{stats['refused']} spans refused by the database", style="yellow")
    if loaded.rejected:
        out.print(f"{loaded.rejected} spans rejected: {loaded.problems}", style="yellow")


def _read(file: Path) -> bytes:
    """The file's bytes (``-``: stdin)."""
    with click.open_file(str(file), "rb") as stream:
        data: bytes = stream.read()
    return data
