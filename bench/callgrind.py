"""Shared by the instruction-counting benchmarks: valgrind's callgrind, its totals,
and the discarding OTLP receiver they export to."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


def valgrind() -> str:
    """valgrind's path, or exit with a message saying how to install it."""
    found = shutil.which("valgrind")
    if found is None:
        sys.exit("needs valgrind (apt install valgrind)")
    return found


def command(out_file: Path) -> list[str]:
    """The command prefix that runs a program under callgrind into ``out_file``."""
    return [valgrind(), "--tool=callgrind", f"--callgrind-out-file={out_file}"]


def total(out_file: Path) -> int:
    """The instruction total callgrind wrote to ``out_file``."""
    found = re.search(r"^totals:\s*(\d+)", out_file.read_text(errors="replace"), re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no totals in {out_file}")
    return int(found.group(1))


@contextlib.contextmanager
def receiver() -> Iterator[str]:
    """A discarding OTLP/HTTP receiver process (bench_otlp's); yields its endpoint."""
    from bench_otlp import RECEIVER

    process = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield f"http://127.0.0.1:{int(process.stdout.readline())}/v1/traces"
    finally:
        process.terminate()
        process.wait(10)
