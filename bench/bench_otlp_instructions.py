"""The OTLP pipeline's cost in CPU instructions: spanline against the OpenTelemetry
SDK, both with a batch processor and an OTLP/HTTP exporter (uncompressed protobuf) to
the same discarding receiver -- counted by valgrind's callgrind, which does not drift
with machine load the way ``bench_otlp.py``'s timings do.

Run:  python bench/bench_otlp_instructions.py      (needs valgrind; about 2 minutes)

Each side runs in its own process under callgrind twice, producing N1 and then N2
spans (``with span("op") as s: s.set_attribute("k", i)``) and flushing; the
difference of the two totals over N2 - N1 is what one span costs, from creation to
the HTTP request that carries it, on every thread.  Start-up cancels out.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import callgrind

SPANLINE = textwrap.dedent("""
    import sys
    import spanline
    from spanline.export import BatchSpanProcessor
    from spanline.export.otlp_http import OtlpHttpExporter
    n, endpoint = int(sys.argv[1]), sys.argv[2]
    exporter = OtlpHttpExporter(endpoint=endpoint, compression="none")
    processor = BatchSpanProcessor(exporter, max_queue_size=max(n + 1, 2048))
    spanline.tracer.add_processor(processor)
    span = spanline.span
    for i in range(n):
        with span("op") as s:
            s.set_attribute("k", i)
    processor.force_flush(60_000)
    assert processor.stats()["exported"] == n
    processor.shutdown()
""")

SDK = textwrap.dedent("""
    import logging, sys
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    logging.getLogger("opentelemetry").setLevel(logging.ERROR)
    n, endpoint = int(sys.argv[1]), sys.argv[2]
    provider = TracerProvider()
    exporter = OTLPSpanExporter(endpoint=endpoint)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=max(n + 1, 2048)))
    start = provider.get_tracer("bench").start_as_current_span
    for i in range(n):
        with start("op") as s:
            s.set_attribute("k", i)
    provider.force_flush(60_000)
    provider.shutdown()
""")


def instructions(code: str, count: int, endpoint: str, folder: Path) -> int:
    out_file = folder / f"callgrind.{abs(hash(code))}.{count}"
    subprocess.run(
        [*callgrind.command(out_file), sys.executable, "-c", code, str(count), endpoint],
        check=True,
        capture_output=True,
    )
    return callgrind.total(out_file)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n1", type=int, default=2000)
    parser.add_argument("--n2", type=int, default=12000)
    args = parser.parse_args()
    callgrind.valgrind()
    with callgrind.receiver() as endpoint, tempfile.TemporaryDirectory() as folder:
        cost: dict[str, float] = {}
        for name, code in (("spanline", SPANLINE), ("otel sdk", SDK)):
            low = instructions(code, args.n1, endpoint, Path(folder))
            high = instructions(code, args.n2, endpoint, Path(folder))
            cost[name] = (high - low) / (args.n2 - args.n1)
            print(f"{name:9s} {cost[name]:10,.0f} instructions per span")
        print(f"spanline costs 1/{cost['otel sdk'] / cost['spanline']:.2f} of the SDK")


if __name__ == "__main__":
    main()
