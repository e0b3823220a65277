"""ASGI throughput: requests per second of a minimal Starlette app under uvicorn, with
and without spanline's middleware and OTLP export.

Run:  python bench/bench_asgi.py            (9 rounds x 3 s per configuration)
      python bench/bench_asgi.py --quick    (5 rounds x 2 s)

Every part is its own process, on 127.0.0.1:

* four servers, started once: ``untraced`` (the bare app), ``middleware`` (the app
  in ``SpanlineASGIMiddleware``, no processor: the cost of making the spans),
  ``queued`` (the same with a ``BatchSpanProcessor`` whose exporter discards each
  batch: the cost of queueing, without encoding or sending) and ``traced`` (the
  processor feeding an ``OtlpHttpExporter``, default settings, so uncompressed
  protobuf: the full cost);
* the OTLP receiver the traced server exports to (reads and discards bodies);
* the load generator: ``--connections`` keep-alive connections on raw sockets
  (asyncio), each sending ``GET /`` and reading the whole response before the next;
  the first 0.5 s of each run is warm-up and not counted.

Each round runs all four configurations, each round starting with the next one,
so that the machine's drift favours none.  The reported share of untraced is the
median of the rounds' own ratios (each traced run against the untraced run of the
same round), with their range; beside it, the server's CPU time per request
(Linux ``/proc``).  At the end the traced server shuts down and reports what its
batch processor exported and dropped: a benchmark that dropped spans would flatter
the traced side.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

WARMUP_S = 0.5
CONFIGURATIONS = ("untraced", "middleware", "queued", "traced")
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
    from spanline.export import BatchSpanProcessor, ExportResult
    from spanline.export.otlp_http import OtlpHttpExporter
    from spanline.integrations.asgi import SpanlineASGIMiddleware

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello")

    app: object = Starlette(routes=[Route("/", hello)])
    processor = None
    if mode == "traced":
        processor = BatchSpanProcessor(OtlpHttpExporter(endpoint=endpoint))
        spanline.tracer.add_processor(processor)
    elif mode == "queued":

        class Discard:
            def export(self, batch: object, timeout_millis: int = 0) -> ExportResult:
                return ExportResult.SUCCESS

            def shutdown(self) -> None:
                pass

            def force_flush(self, timeout_millis: int = 0) -> bool:
                return True

        spanline.tracer.add_processor(BatchSpanProcessor(Discard()))
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


async def _connection(
    port: int, start: float, stop: float, counts: list[int], totals: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    done = total = 0
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
            total += 1
            now = time.monotonic()
            if now >= stop:
                break
            if now >= start:
                done += 1
    finally:
        counts.append(done)
        totals.append(total)
        writer.close()
        await writer.wait_closed()


async def _load(port: int, seconds: float, connections: int) -> tuple[int, int]:
    start = time.monotonic() + WARMUP_S
    stop = start + seconds
    counts: list[int] = []
    totals: list[int] = []
    await asyncio.gather(
        *(_connection(port, start, stop, counts, totals) for _ in range(connections))
    )
    return sum(counts), sum(totals)


def load(port: int, seconds: float, connections: int) -> None:
    """Print the requests per second one run achieved, and all requests it sent
    (warm-up included)."""
    counted, total = asyncio.run(_load(port, seconds, connections))
    print(counted / seconds, total, flush=True)


# -- the orchestrator --------------------------------------------------------------


# With --pin, the servers run on the first CPU and everything else (the load
# generator, the OTLP receiver) on the others, so the scheduler neither moves a
# server between cores nor puts the load generator on the server's core.
_PINS: dict[str, set[int]] = {}


def _pin(role: str) -> Callable[[], None] | None:
    cpus = _PINS.get(role)
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def _start(*args: str, role: str = "other") -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent,
        preexec_fn=_pin(role),  # noqa: PLW1509 - affinity only, no threads yet
    )
    assert process.stdout is not None
    return process, int(process.stdout.readline())


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run_load(server: subprocess.Popen[str], port: int, seconds: float, connections: int) -> Run:
    before = _cpu_seconds(server.pid)
    out = subprocess.run(
        [sys.executable, __file__, "--load", str(port), str(seconds), str(connections)],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=_pin("other"),
    )
    cpu = _cpu_seconds(server.pid) - before
    rps, total = out.stdout.split()
    return Run(float(rps), cpu * 1e6 / max(1, int(total)))


class Run(NamedTuple):
    """One load run against one server."""

    rps: float
    cpu_us: float  # the server's CPU time per request (all its threads), warm-up included


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 rounds of 2 s runs")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seconds", type=float, default=3.0, help="per run (after warm-up)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--pin", action="store_true", help="servers on CPU 0, load and receiver on the rest"
    )
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

    rounds, seconds = (5, 2.0) if args.quick else (args.rounds, args.seconds)
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            sys.exit("--pin needs at least 2 CPUs")
        _PINS.update(server={cpus[0]}, other=set(cpus[1:]))
    receiver, receiver_port = _start("-c", RECEIVER)
    endpoint = f"http://127.0.0.1:{receiver_port}/v1/traces"
    servers = {
        name: _start(__file__, "--serve", name, "--endpoint", endpoint, role="server")
        for name in CONFIGURATIONS
    }
    runs: list[dict[str, Run]] = []
    try:
        print(
            f"python {sys.version.split()[0]}, {rounds} rounds x {seconds:g} s, "
            f"{args.connections} keep-alive connections, GET / -> 'hello'"
            + (f", pinned: servers on CPU {sorted(_PINS['server'])}" if _PINS else "")
        )
        for round_ in range(rounds):
            # each round starts with the next configuration: slow drift of the
            # machine's speed then favours none of them
            first = round_ % len(CONFIGURATIONS)
            order = CONFIGURATIONS[first:] + CONFIGURATIONS[:first]
            results: dict[str, Run] = {}
            for name in order:
                server, port = servers[name]
                results[name] = run = _run_load(server, port, seconds, args.connections)
                print(
                    f"round {round_ + 1}  {name:<10} {run.rps:7.0f} req/s  "
                    f"{run.cpu_us:6.1f} us CPU/request",
                    flush=True,
                )
            runs.append(results)
    finally:
        for server, _ in servers.values():
            server.send_signal(signal.SIGTERM)
        outputs = {name: server.communicate(timeout=60)[0] for name, (server, _) in servers.items()}
        stats_line = outputs["traced"].strip()
        receiver.terminate()
        receiver.wait(10)
    _report(runs)
    stats = json.loads(stats_line) if stats_line else {}
    print(
        f"traced server exported {stats.get('exported', 0):.0f} spans in "
        f"{stats.get('batches', 0):.0f} batches, dropped "
        f"{stats.get('dropped_queue_full', 0):.0f}, failed {stats.get('export_failed', 0):.0f}"
    )


def _report(runs: list[dict[str, Run]]) -> None:
    """Medians per configuration, and the median of each round's own ratio to the
    untraced run of the same round (pairs within a round share the machine's mood)."""
    for name in CONFIGURATIONS:
        rps = statistics.median(r[name].rps for r in runs)
        cpu = statistics.median(r[name].cpu_us for r in runs)
        shares = sorted(r[name].rps / r["untraced"].rps for r in runs)
        cpu_share = statistics.median(r["untraced"].cpu_us / r[name].cpu_us for r in runs)
        print(
            f"median   {name:<10} {rps:7.0f} req/s  {statistics.median(shares):6.1%} of untraced "
            f"(rounds {shares[0]:.0%}-{shares[-1]:.0%})   {cpu:6.1f} us CPU/request "
            f"(untraced/this {cpu_share:.1%})"
        )
    print("target: traced >= 90% of untraced")


if __name__ == "__main__":
    main()
