"""ASGI tracing cost in CPU instructions: the same server as ``bench_asgi.py``, run
under valgrind's callgrind, which counts instructions rather than time -- repeatable
on a noisy machine, where throughput ratios drift by +-10% between rounds.

Run:  python bench/bench_asgi_instructions.py        (needs valgrind; about 5 minutes)

For each configuration of ``bench_asgi.py`` (``untraced``; ``middleware``; ``queued``:
the batch processor with a discarding exporter; ``traced``: the processor with the
OTLP exporter, to a discarding receiver) the server runs under callgrind twice, serving
N1 and then N2 sequential requests from a plain ``http.client`` connection; the
difference of the two totals divided by N2 - N1 is the instructions one request
costs, start-up and shutdown cancelled out.  The export timer is set to an hour so
that, as under load, the batch processor exports only full batches.  Instructions
are not time (cache misses and GIL hand-offs cost time too), so read this beside
``bench_asgi.py``'s throughput.
"""

from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import callgrind

HERE = Path(__file__).resolve().parent
# Under load (bench_asgi.py) the batch processor exports full batches of 512 spans;
# under callgrind requests are ~50x slower, and the default 5 s timer would export
# a few dozen spans at a time, each batch's fixed cost (a thread, an HTTP request)
# shared by few spans.  An hour's delay keeps batches full, as under load.
FULL_BATCHES_ONLY = "3600000"


def _requests(port: int, count: int) -> None:
    for _ in range(1200):  # the server starts slowly under valgrind
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("GET", "/")
            conn.getresponse().read()
            break
        except OSError:
            time.sleep(0.25)
    else:
        raise RuntimeError("the server did not start")
    for _ in range(count - 1):
        conn.request("GET", "/")
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"unexpected status {response.status}")


def instructions(mode: str, count: int, endpoint: str, folder: Path) -> int:
    """Total instructions of a server process that served ``count`` requests."""
    out_file = folder / f"callgrind.{mode}.{count}"
    server = subprocess.Popen(
        [
            *callgrind.command(out_file),
            sys.executable,
            str(HERE / "bench_asgi.py"),
            "--serve",
            mode,
            "--endpoint",
            endpoint,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=HERE,
        env={**os.environ, "OTEL_BSP_SCHEDULE_DELAY": FULL_BATCHES_ONLY},
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        _requests(port, count)
    finally:
        server.terminate()
        server.wait(300)
    return callgrind.total(out_file)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n1", type=int, default=300)
    parser.add_argument("--n2", type=int, default=1300)
    args = parser.parse_args()
    callgrind.valgrind()
    with callgrind.receiver() as endpoint, tempfile.TemporaryDirectory() as folder:
        per_request: dict[str, float] = {}
        for mode in ("untraced", "middleware", "queued", "traced"):
            low = instructions(mode, args.n1, endpoint, Path(folder))
            high = instructions(mode, args.n2, endpoint, Path(folder))
            per_request[mode] = (high - low) / (args.n2 - args.n1)
            extra = per_request[mode] - per_request["untraced"]
            print(
                f"{mode:10s} {per_request[mode]:10,.0f} instructions per request "
                f"(+{extra:,.0f}; untraced/this {per_request['untraced'] / per_request[mode]:.1%})",
                flush=True,
            )


if __name__ == "__main__":
    main()
