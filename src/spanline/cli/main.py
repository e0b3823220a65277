"""``spanline`` command line entry point (the console script and ``python -m spanline``).

The commands use click and rich (the ``cli`` extra), imported only here -- never by
``import spanline`` -- so the core keeps zero dependencies.  Without them,
:func:`main` says what to install and returns 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

MISSING = "spanline: the command line needs click and rich: pip install 'spanline[cli]'"


def main(argv: Sequence[str] | None = None) -> int:  # noqa: PLR0911 - one exit per outcome
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``); returns the
    exit code: 0 done, 1 an error the message explains, 2 a usage error."""
    try:
        import click

        from spanline.cli.app import cli
    except ImportError as error:
        if error.name not in ("click", "rich") and not str(error.name).startswith("rich."):
            raise
        print(MISSING, file=sys.stderr)
        return 2
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = cli.main(args=args, prog_name="spanline", standalone_mode=False)
    except click.exceptions.Exit as done:
        return int(done.exit_code)
    except click.ClickException as error:
        error.show()
        return int(error.exit_code)
    except click.exceptions.Abort:
        print("Aborted!", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `spanline query | head`
        return 0
    return result if isinstance(result, int) else 0  # --help and --version return 0


if __name__ == "__main__":
    sys.exit(main())
