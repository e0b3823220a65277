"""The ``spanline`` click group: every command, registered in one place."""

from __future__ import annotations

import click

from spanline._version import __version__
from spanline.cli.demo import demo
from spanline.cli.inspect import query, stats, tree
from spanline.cli.retention import retention
from spanline.cli.serve import serve
from spanline.cli.transfer import export, import_

__all__ = ["cli"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="spanline", message="%(prog)s %(version)s")
def cli() -> None:
    """spanline: always-on application tracing.

    The store commands read and write a SQLite file or a PostgreSQL database:
    --store PATH_OR_DSN, else $SPANLINE_STORE, else ./spanline.db.
    """


for command in (demo, serve, tree, query, stats, export, import_, retention):
    cli.add_command(command)
