"""OTLP export cost: spanline against the OpenTelemetry SDK, in one process run.

Run:  python bench/bench_otlp.py          (needs `pip install -e '.[bench]'`)
      python bench/bench_otlp.py --quick

1. encoding: 2,000 freshly finished spans (two attributes each) encoded to an OTLP
   protobuf request -- spanline's hand-written wire encoder against the SDK's
   ``encode_spans(...).SerializeToString()``.  Alternating rounds, median.
2. pipeline: N spans produced with a batch processor and the OTLP/HTTP exporter
   enabled, then a flush, so the export work that competes for the GIL is counted
   (wall time per span), and separately the CPU time of the producing thread alone --
   spanline's BatchSpanProcessor + OtlpHttpExporter against the SDK's
   BatchSpanProcessor + OTLPSpanExporter (http/protobuf).  Both send to the same
   receiver, which runs in a separate process on 127.0.0.1 and discards bodies.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable

import spanline
import spanline.testing
from spanline.export import BatchSpanProcessor
from spanline.export.otlp_http import OtlpHttpExporter
from spanline.export.otlp_wire import encode_request_bytes

try:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor as OtelBatch
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
except ImportError:  # pragma: no cover
    sys.exit("needs the OpenTelemetry SDK and its OTLP exporter: pip install -e '.[bench]'")

RECEIVER = textwrap.dedent("""
    import sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
        def log_message(self, *args):
            pass
    server = ThreadingHTTPServer(("127.0.0.1", 0), H)
    print(server.server_address[1], flush=True)
    server.serve_forever()
""")


def otel_finished_spans(n: int) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench")
    for i in range(n):
        with tracer.start_as_current_span("op") as span:
            span.set_attribute("http.route", "/orders/{id}")
            span.set_attribute("k", i)
    return list(memory.get_finished_spans())


def spanline_finished_spans(n: int) -> list[spanline.Span]:
    spanline.testing.reset_all()
    capture = spanline.testing.Capture()
    spanline.tracer.add_processor(capture)
    for i in range(n):
        with spanline.span("op") as span:
            span.set_attribute("http.route", "/orders/{id}")
            span.set_attribute("k", i)
    spanline.testing.reset_all()
    return capture.spans


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def encoding(rounds: int, n: int = 2000) -> None:
    resource = spanline.settings.resource
    a: list[float] = []
    b: list[float] = []
    for _ in range(rounds):
        # fresh spans every round: a real exporter encodes each span once, so nothing
        # rendered lazily (ids, trace ids) may be reused from an earlier round
        ours = spanline_finished_spans(n)
        theirs = otel_finished_spans(n)
        a.append(timed(lambda ours=ours: encode_request_bytes(ours, resource)) / n * 1e6)
        b.append(timed(lambda theirs=theirs: encode_spans(theirs).SerializeToString()) / n * 1e6)
    ours_us, theirs_us = statistics.median(a), statistics.median(b)
    print(
        f"encoding     spanline {ours_us:7.2f} µs/span   otel {theirs_us:7.2f} µs/span   "
        f"spanline is {theirs_us / ours_us:.1f}x faster"
    )


def pipeline(rounds: int, endpoint: str, n: int) -> None:
    logging.getLogger("opentelemetry").setLevel(logging.ERROR)
    provider = TracerProvider()
    otel_processor = OtelBatch(OTLPSpanExporter(endpoint=endpoint), max_queue_size=n + 1)
    provider.add_span_processor(otel_processor)
    tracer = provider.get_tracer("bench")
    spanline.testing.reset_all()
    ours_processor = BatchSpanProcessor(
        OtlpHttpExporter(endpoint=endpoint, compression="none"), max_queue_size=n + 1
    )
    spanline.tracer.add_processor(ours_processor)

    on_thread: dict[str, list[float]] = {"ours": [], "theirs": []}

    def run_ours() -> None:
        span = spanline.span
        started = time.thread_time()
        for i in range(n):
            with span("op") as s:
                s.set_attribute("k", i)
        on_thread["ours"].append((time.thread_time() - started) / n * 1e6)
        ours_processor.force_flush(60_000)

    def run_theirs() -> None:
        start = tracer.start_as_current_span
        started = time.thread_time()
        for i in range(n):
            with start("op") as s:
                s.set_attribute("k", i)
        on_thread["theirs"].append((time.thread_time() - started) / n * 1e6)
        provider.force_flush(60_000)

    a: list[float] = []
    b: list[float] = []
    for _ in range(rounds):
        a.append(timed(run_ours) / n * 1e6)
        b.append(timed(run_theirs) / n * 1e6)
    ours_processor.shutdown()
    provider.shutdown()
    spanline.testing.reset_all()
    ours_us, theirs_us = statistics.median(a), statistics.median(b)
    print(
        f"pipeline     spanline {ours_us:7.2f} µs/span   otel {theirs_us:7.2f} µs/span   "
        f"ratio 1/{theirs_us / ours_us:.1f}   (spans + export + flush, {n} per round)"
    )
    ours_cpu, theirs_cpu = (statistics.median(on_thread[k]) for k in ("ours", "theirs"))
    print(
        f"app thread   spanline {ours_cpu:7.2f} µs/span   otel {theirs_cpu:7.2f} µs/span   "
        f"ratio 1/{theirs_cpu / ours_cpu:.1f}   (CPU time of the producing thread only)"
    )
    stats = ours_processor.stats()
    print(
        f"             spanline exported {stats['exported']:.0f}, dropped "
        f"{stats['dropped_queue_full']:.0f}, failed {stats['export_failed']:.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    rounds = 3 if args.quick else 9
    print(f"python {sys.version.split()[0]}, {rounds} rounds")
    encoding(rounds)
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout is not None
        port = int(receiver.stdout.readline())
        pipeline(rounds, f"http://127.0.0.1:{port}/v1/traces", 5000 if args.quick else 20_000)
    finally:
        receiver.terminate()
        receiver.wait(10)


if __name__ == "__main__":
    main()
