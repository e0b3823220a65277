"""``spanline serve``: the trace viewer and the OTLP/HTTP receiver, on one port.

The command only parses options; the server is :func:`spanline.viewer.serve.run`,
imported when the command runs (it needs the ``viewer`` extra).
"""

from __future__ import annotations

from typing import Any

import click

from spanline.cli.options import location_of, store_option

__all__ = ["serve"]


@click.command()
@store_option
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", type=click.IntRange(0, 65535), default=4318, show_default=True, help="port")
@click.option(
    "--token",
    help="require this token on every request (off loopback a random one is made "
    "when none is given)",
)
@click.option(
    "--max-body",
    type=click.IntRange(1),
    metavar="BYTES",
    help="largest OTLP request accepted, in bytes (default 16 MiB)",
)
def serve(store: str | None, host: str, port: int, token: str | None, max_body: int | None) -> None:
    """Serve the trace viewer and an OTLP/HTTP receiver (POST /v1/traces) that
    stores what it gets, until Ctrl-C."""
    location_of(store)  # a bad --store fails here, before the server starts
    try:
        from spanline.viewer.serve import run
    except ImportError as error:
        raise click.ClickException(
            f"the viewer needs its extra: pip install 'spanline[viewer]' ({error})"
        ) from None
    options: dict[str, Any] = {"host": host, "port": port, "token": token}
    if max_body is not None:
        options["max_body"] = max_body
    try:
        run(store=store, **options)
    except KeyboardInterrupt:
        pass
    except (ValueError, OSError) as error:
        raise click.ClickException(f"cannot serve on {host}:{port}: {error}") from None
