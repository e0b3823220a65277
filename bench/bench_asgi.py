"""ASGI throughput: requests per second of a minimal Starlette app under uvicorn, with
and without spanline's middleware and OTLP export.

Run:  python bench/bench_asgi.py            (60 cycles x 0.3 s per server, ~80 s)
      python bench/bench_asgi.py --quick    (20 cycles)
      python bench/bench_asgi.py --pin      (servers on one CPU, the rest on others)

Every part is its own process, on 127.0.0.1:

* four servers, started once: ``untraced`` (the bare app), ``middleware`` (the app
  in ``SpanlineASGIMiddleware``, no processor: the cost of making the spans),
  ``queued`` (the same with a ``BatchSpanProcessor`` whose exporter discards each
  batch: the cost of queueing, without encoding or sending) and ``traced`` (the
  processor feeding an ``OtlpHttpExporter``, default settings, so uncompressed
  protobuf: the full cost);
* the OTLP receiver the traced server exports to (reads and discards bodies);
* one load generator holding ``--connections`` keep-alive connections to each server
  (asyncio, raw sockets), each sending ``GET /`` and reading the whole response
  before the next.

The load moves between the servers in slices of ``--slice`` seconds: each cycle
loads every server once, each cycle starting with the next one, so that the
machine's speed, which drifts by tens of percent within seconds on a shared host,
is shared by all of them.  Reported per server: requests per second over all its
slices and its share of the untraced server's, the median and 10th-90th percentile
of the cycles' own shares, and the server's CPU time per request (Linux ``/proc``).
At the end the traced server shuts down and reports what its batch processor
exported and dropped: a benchmark that dropped spans would flatter the traced side.
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
        # a server waits its turn for several seconds between slices: keep the
        # load generator's connections open meanwhile (uvicorn closes idle ones after 5 s)
        timeout_keep_alive=3600,
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


class _Client:
    """One keep-alive connection sending ``GET /`` and reading whole responses."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def until(self, stop: float) -> int:
        """Send requests one after another until ``stop``; how many completed."""
        done = 0
        while time.monotonic() < stop:
            self.writer.write(REQUEST)
            head = await self.reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"unexpected response: {head[:40]!r}")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await self.reader.readexactly(length)
            done += 1
        return done


Slot = tuple[int, float, float, int]  # requests, seconds, server CPU seconds, process


async def _interleaved(
    configurations: list[list[tuple[int, int]]], cycles: int, slice_s: float, connections: int
) -> list[list[Slot]]:
    """Load each configuration in turn for ``slice_s``, ``cycles`` times, each cycle
    starting with the next configuration and using each configuration's next server
    process ((port, pid) pairs); per cycle and configuration: requests completed,
    seconds taken, the server's CPU seconds (``/proc``) and which process served."""
    clients = []
    for processes in configurations:
        groups = []
        for port, _ in processes:
            opened = [await asyncio.open_connection("127.0.0.1", port) for _ in range(connections)]
            group = [_Client(reader, writer) for reader, writer in opened]
            # warm-up: connections, first requests, caches
            await asyncio.gather(*(c.until(time.monotonic() + WARMUP_S) for c in group))
            groups.append(group)
        clients.append(groups)
    table: list[list[Slot]] = []
    for cycle in range(cycles):
        row: list[Slot] = [(0, 0.0, 0.0, 0)] * len(configurations)
        for step in range(len(configurations)):
            index = (cycle + step) % len(configurations)
            process = cycle % len(configurations[index])
            pid = configurations[index][process][1]
            cpu = _cpu_seconds(pid)
            began = time.monotonic()
            group = clients[index][process]
            counts = await asyncio.gather(*(c.until(began + slice_s) for c in group))
            took = time.monotonic() - began
            row[index] = (sum(counts), took, _cpu_seconds(pid) - cpu, process)
        table.append(row)
    for groups in clients:
        for group in groups:
            for client in group:
                client.writer.close()
    return table


def load(spec: str, cycles: int, slice_s: float, connections: int) -> None:
    """Print (JSON) the per-cycle table of :func:`_interleaved` for ``spec``: the
    configurations separated by ``;``, each a ``,``-separated list of ``port:pid``."""
    configurations = [
        [(int(p), int(q)) for p, q in (item.split(":") for item in part.split(","))]
        for part in spec.split(";")
    ]
    print(json.dumps(asyncio.run(_interleaved(configurations, cycles, slice_s, connections))))


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 cycles")
    parser.add_argument("--cycles", type=int, default=60)
    parser.add_argument("--slice", type=float, default=0.3, help="seconds per server per cycle")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--processes", type=int, default=4, help="server processes per configuration"
    )
    parser.add_argument(
        "--pin", action="store_true", help="servers on CPU 0, load and receiver on the rest"
    )
    parser.add_argument("--serve", choices=CONFIGURATIONS, help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", default="", help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    cycles = 20 if args.quick else args.cycles
    if args.serve:
        serve(args.serve, args.endpoint)
        return
    if args.load:
        load(args.load, cycles, args.slice, args.connections)
        return

    from bench_otlp import RECEIVER  # the same discarding receiver (imports the OTel SDK)

    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            sys.exit("--pin needs at least 2 CPUs")
        _PINS.update(server={cpus[0]}, other=set(cpus[1:]))
    receiver, receiver_port = _start("-c", RECEIVER)
    endpoint = f"http://127.0.0.1:{receiver_port}/v1/traces"
    servers = {
        name: [
            _start(__file__, "--serve", name, "--endpoint", endpoint, role="server")
            for _ in range(args.processes)
        ]
        for name in CONFIGURATIONS
    }
    spec = ";".join(
        ",".join(f"{port}:{server.pid}" for server, port in processes)
        for processes in servers.values()
    )
    print(
        f"python {sys.version.split()[0]}, {cycles} cycles x {args.slice:g} s per "
        f"configuration, {args.processes} server processes each (one per cycle, in turn), "
        f"{args.connections} keep-alive connections, GET / -> 'hello'"
        + (f", pinned: servers on CPU {sorted(_PINS['server'])}" if _PINS else ""),
        flush=True,
    )
    try:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--load",
                spec,
                "--cycles",
                str(cycles),
                "--slice",
                str(args.slice),
                "--connections",
                str(args.connections),
            ],
            capture_output=True,
            text=True,
            check=False,
            preexec_fn=_pin("other"),
        )
        if out.returncode:
            sys.exit(f"the load generator failed:\n{out.stderr}")
    finally:
        for processes in servers.values():
            for server, _ in processes:
                server.send_signal(signal.SIGTERM)
        traced = [server.communicate(timeout=60)[0] for server, _ in servers["traced"]]
        for processes in servers.values():
            for server, _ in processes:
                server.wait(60)
        receiver.terminate()
        receiver.wait(10)
    _report(json.loads(out.stdout), args.processes)
    stats = [json.loads(text.strip() or "{}") for text in traced]
    print(
        f"traced servers exported {sum(s.get('exported', 0) for s in stats):.0f} spans in "
        f"{sum(s.get('batches', 0) for s in stats):.0f} batches, dropped "
        f"{sum(s.get('dropped_queue_full', 0) for s in stats):.0f}, "
        f"failed {sum(s.get('export_failed', 0) for s in stats):.0f}"
    )


def _report(table: list[list[list[float]]], processes: int) -> None:
    """Per configuration: requests per second over all its slices, its share of the
    untraced servers' (all slices), the median and range of the cycles' own shares
    (neighbouring slices share the machine's mood), CPU time per request, and the
    spread of its processes' own rates (identical processes differ by several percent
    on this kind of host: hence several per configuration)."""
    untraced = CONFIGURATIONS.index("untraced")
    base = sum(row[untraced][0] for row in table) / sum(row[untraced][1] for row in table)
    base_cpu = sum(row[untraced][2] for row in table) / sum(row[untraced][0] for row in table)
    for index, name in enumerate(CONFIGURATIONS):
        requests = sum(row[index][0] for row in table)
        rps = requests / sum(row[index][1] for row in table)
        cpu = sum(row[index][2] for row in table) / requests
        shares = sorted(
            (row[index][0] / row[index][1]) / (row[untraced][0] / row[untraced][1]) for row in table
        )
        low, high = shares[len(shares) // 10], shares[-1 - len(shares) // 10]
        per_process = [
            sum(row[index][0] for row in table if row[index][3] == k)
            / max(1e-9, sum(row[index][1] for row in table if row[index][3] == k))
            / base
            for k in range(processes)
        ]
        print(
            f"{name:<10} {rps:7.0f} req/s  {rps / base:6.1%} of untraced  "
            f"(cycles: median {statistics.median(shares):.1%}, 10th-90th {low:.0%}-{high:.0%}; "
            f"processes {min(per_process):.0%}-{max(per_process):.0%})  "
            f"{cpu * 1e6:6.1f} us CPU/request (untraced/this {base_cpu / cpu:.1%})"
        )
    print("target: traced >= 90% of untraced")


if __name__ == "__main__":
    main()
