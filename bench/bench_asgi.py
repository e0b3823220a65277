"""ASGI throughput: requests per second of a minimal Starlette app under uvicorn, with
and without spanline's middleware and OTLP export.

Run:  python bench/bench_asgi.py            (3 rounds x 5 s per configuration)
      python bench/bench_asgi.py --quick    (3 rounds x 2 s)

Every part is its own process, on 127.0.0.1:

* three servers, started once: ``untraced`` (the bare app), ``middleware`` (the app
  in ``SpanlineASGIMiddleware``, no processor: the cost of making the spans) and
  ``traced`` (the same with a ``BatchSpanProcessor`` feeding an ``OtlpHttpExporter``,
  default settings, so gzip-compressed protobuf: the full cost);
* the OTLP receiver the traced server exports to (reads and discards bodies);
* the load generator: ``--connections`` keep-alive connections on raw sockets
  (asyncio), each sending ``GET /`` and reading the whole response before the next;
  the first 0.5 s of each run is warm-up and not counted.

The configurations alternate (untraced, middleware, traced, untraced, ...) so machine
noise hits all of them; the median round of each is reported, as a share of
untraced.  At the end the traced server shuts down and reports what its batch
processor exported and dropped: a benchmark that dropped spans would flatter the
traced side.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

WARMUP_S = 0.5
CONFIGURATIONS = ("untraced", "middleware", "traced")
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench-asgi\r\n\r\n"


# -- the server process ------------------------------------------------------------


class _StopServingError(Exception):
    """Raised by the SIGTERM handler once uvicorn has finished."""


def _stop(signum: int, frame: object) -> None:
    raise _StopServingError


def serve(mode: str, endpoint: str) -> None:
    """Serve the app on a free port (printed first) until SIGTERM; ``traced`` prints
    the batch processor's counters after its final flush."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    import spanline
    from spanline.export import BatchSpanProcessor
    from spanline.export.otlp_http import OtlpHttpExporter
    from spanline.integrations.asgi import SpanlineASGIMiddleware

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello")

    app: object = Starlette(routes=[Route("/", hello)])
    processor = None
    if mode == "traced":
        processor = BatchSpanProcessor(OtlpHttpExporter(endpoint=endpoint))
        spanline.tracer.add_processor(processor)
    if mode != "untraced":
        app = SpanlineASGIMiddleware(app)  # type: ignore[arg-type]
    # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY only on sockets whose
    # proto says TCP, and without it every keep-alive response waits ~40 ms (Nagle
    # against delayed ACKs), whatever the app does
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        log_level="critical",
        access_log=False,
        lifespan="off",
    )
    # uvicorn re-raises the SIGTERM it caught once it has shut down, through the
    # handler that was installed before it: make that one end run() normally
    signal.signal(signal.SIGTERM, _stop)
    with contextlib.suppress(_StopServingError):
        uvicorn.Server(config).run(sockets=[sock])
    if processor is not None:
        spanline.shutdown()
        print(json.dumps(processor.stats()), flush=True)


# -- the load generator process ----------------------------------------------------


async def _connection(port: int, start: float, stop: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    done = 0
    try:
        while True:
            writer.write(REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"unexpected response: {head[:40]!r}")
            await reader.readexactly(length)
            now = time.monotonic()
            if now >= stop:
                break
            if now >= start:
                done += 1
    finally:
        counts.append(done)
        writer.close()
        await writer.wait_closed()


async def _load(port: int, seconds: float, connections: int) -> int:
    start = time.monotonic() + WARMUP_S
    stop = start + seconds
    counts: list[int] = []
    await asyncio.gather(*(_connection(port, start, stop, counts) for _ in range(connections)))
    return sum(counts)


def load(port: int, seconds: float, connections: int) -> None:
    """Print the requests per second one run achieved."""
    print(asyncio.run(_load(port, seconds, connections)) / seconds, flush=True)


# -- the orchestrator --------------------------------------------------------------


def _start(*args: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent
    )
    assert process.stdout is not None
    return process, int(process.stdout.readline())


def _run_load(port: int, seconds: float, connections: int) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--load", str(port), str(seconds), str(connections)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 s runs instead of 5 s")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--serve", choices=CONFIGURATIONS, help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", default="", help=argparse.SUPPRESS)
    parser.add_argument("--load", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.endpoint)
        return
    if args.load:
        load(int(args.load[0]), float(args.load[1]), int(args.load[2]))
        return

    from bench_otlp import RECEIVER  # the same discarding receiver (imports the OTel SDK)

    seconds = 2.0 if args.quick else 5.0
    receiver, receiver_port = _start("-c", RECEIVER)
    endpoint = f"http://127.0.0.1:{receiver_port}/v1/traces"
    servers = {
        name: _start(__file__, "--serve", name, "--endpoint", endpoint) for name in CONFIGURATIONS
    }
    results: dict[str, list[float]] = {name: [] for name in CONFIGURATIONS}
    try:
        print(
            f"python {sys.version.split()[0]}, {args.rounds} rounds x {seconds:g} s, "
            f"{args.connections} keep-alive connections, GET / -> 'hello'"
        )
        for round_ in range(1, args.rounds + 1):
            for name, (_, port) in servers.items():
                rps = _run_load(port, seconds, args.connections)
                results[name].append(rps)
                print(f"round {round_}  {name:<10} {rps:9.0f} req/s", flush=True)
    finally:
        for server, _ in servers.values():
            server.send_signal(signal.SIGTERM)
        outputs = {name: server.communicate(timeout=60)[0] for name, (server, _) in servers.items()}
        stats_line = outputs["traced"].strip()
        receiver.terminate()
        receiver.wait(10)
    medians = {name: statistics.median(results[name]) for name in CONFIGURATIONS}
    untraced_rps = medians["untraced"]
    for name, rps in medians.items():
        print(f"median   {name:<10} {rps:9.0f} req/s   {rps / untraced_rps:6.1%} of untraced")
    print("target: traced >= 90% of untraced")
    stats = json.loads(stats_line) if stats_line else {}
    print(
        f"traced server exported {stats.get('exported', 0):.0f} spans in "
        f"{stats.get('batches', 0):.0f} batches, dropped "
        f"{stats.get('dropped_queue_full', 0):.0f}, failed {stats.get('export_failed', 0):.0f}"
    )


if __name__ == "__main__":
    main()
