"""The recording store: ingest rate into SQLite and PostgreSQL, and query latency on
a store of 1,000,000 spans.

Run:  python bench/bench_store.py               (PostgreSQL at 127.0.0.1:5432, db test)
      python bench/bench_store.py --quick       (smaller numbers, for a smoke run)
      python bench/bench_store.py --no-postgres

1. ingest: N finished spanline spans (traces of 8: an HTTP root, two operations,
   database and cache spans with attributes, an actor; 1 in 50 fails) are made first,
   then timed from the moment they are handed to the exporter until their rows are
   committed -- ``StoreExporter.export`` per batch of 2,048 (what the batch processor's
   worker calls), then ``force_flush``.  Three rounds, median.  The spans are made
   before the clock starts and frozen out of the garbage collector's view
   (``gc.freeze``), so the figure is the store path, not the collection of a heap of
   spans no application would hold.
2. queries: a store of 1,000,000 synthetic rows (100,000 traces of 10 spans, 30 span
   names, 3 services, 1% errors, spread over 24 hours) is written through the same
   writer, then each query runs repeatedly and the median and worst are printed:
   a trace by ``tr_`` id and by hex id, trace search (newest 50, and errors only), the
   per-operation aggregates over the whole day and over the last hour.  On
   PostgreSQL the tables are vacuumed and analyzed after the load, as autovacuum
   does shortly after one.

Targets: ingest >= 100,000 spans/s (SQLite) and >= 50,000 (PostgreSQL); a trace
lookup <= 20 ms and the aggregate query <= 500 ms on 1,000,000 spans.
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import spanline
import spanline.store
import spanline.testing
from spanline.core import ids
from spanline.store import SpanRow, StoreExporter, StoreWriter

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
DAY_NS = 86_400 * 1_000_000_000
NAMES = [f"{verb} /{thing}" for verb in ("GET", "POST", "PUT") for thing in range(10)]
SERVICES = ("api", "worker", "billing")


@spanline.operation
def place_order(order: int) -> None:
    spanline.record("order_id", order)
    for table in ("orders", "items", "stock"):
        with spanline.span("db.query", kind=spanline.SpanKind.CLIENT) as query:
            query.set_attribute("db.system.name", "postgresql")
            query.set_attribute("db.collection.name", table)
            query.set_attribute("db.query.text", "SELECT * FROM t WHERE id = $1")
    with spanline.span("cache.get") as cache:
        cache.set_attribute("cache.hit", order % 3 == 0)
    charge(order)


@spanline.operation
def charge(order: int) -> None:
    with spanline.span("http.post", kind=spanline.SpanKind.CLIENT) as call:
        call.set_attribute("http.request.method", "POST")
        call.set_attribute("url.full", "https://payments.example/charge")
    if order % 50 == 0:
        raise ValueError("card declined")


def make_spans(count: int) -> list[spanline.Span]:
    """Finished spans of the benchmark's traces (8 spans each)."""
    spanline.testing.reset_all()
    capture = spanline.testing.Capture()
    spanline.tracer.add_processor(capture)
    order = 0
    while len(capture.spans) < count:
        order += 1
        actor = {"type": "user", "id": order % 1000}
        with (
            spanline.start_trace(actor=actor),
            spanline.span("POST /orders", kind=spanline.SpanKind.SERVER) as root,
        ):
            root.set_attribute("http.route", "/orders")
            try:
                place_order(order)
            except ValueError:
                root.set_attribute("http.response.status_code", 402)
    spans = capture.spans[:count]
    spanline.testing.reset_all()
    return spans


def ingest(location: str, spans: list[spanline.Span], batch: int) -> float:
    """Spans per second from export() to committed rows."""
    exporter = StoreExporter(location, service="bench", max_pending=len(spans) + batch)
    exporter.writer.flush()  # connected and migrated before the clock starts
    exporter.export(spans[:1])  # warm up the connection and the statements
    exporter.force_flush()
    started = time.perf_counter()
    for start in range(1, len(spans), batch):
        exporter.export(spans[start : start + batch])
    if not exporter.force_flush(600_000):
        raise RuntimeError(f"flush failed: {exporter.stats()}")
    elapsed = time.perf_counter() - started
    written = exporter.stats()["written"]
    exporter.shutdown()
    if written != len(spans):
        raise RuntimeError(f"{written} of {len(spans)} rows written")
    return (len(spans) - 1) / elapsed


def synthetic_rows(
    first: int, count: int, total: int, per_trace: int, now_ns: int
) -> list[SpanRow]:
    """Rows of traces ``first`` to ``first + count`` of ``total`` spread over the day."""
    picks = random.Random(first)
    rows: list[SpanRow] = []
    for t in range(first, first + count):
        start = now_ns - DAY_NS + t * (DAY_NS // total)
        trace_int = ((start // 1_000_000) << 80) | picks.getrandbits(64) | 1
        trace_hex = f"{trace_int:032x}"
        trace_id = ids.trace_id_from_int(trace_int)
        actor = t % 500
        root_sid = picks.getrandbits(64) | 1
        for s in range(per_trace):
            sid = root_sid if s == 0 else picks.getrandbits(64) | 1
            begin = start + s * 100_000
            duration = int(picks.lognormvariate(14, 1.2))
            error = picks.random() < 0.01
            rows.append(
                SpanRow(
                    trace_hex,
                    f"{sid:016x}",
                    None if s == 0 else f"{root_sid:016x}",
                    trace_id,
                    ids.format_id("sp_", begin, sid),
                    None,
                    NAMES[(t + s) % len(NAMES)],
                    "span",
                    "internal",
                    "error" if error else "unset",
                    "boom" if error else None,
                    begin,
                    begin + duration,
                    duration,
                    SERVICES[s % len(SERVICES)],
                    "user",
                    str(actor),
                    f'{{"type":"user","id":"{actor}"}}',
                    None,
                    f'{{"http.route":"/r/{s}","n":{s}}}',
                    None,
                    None,
                    None,
                )
            )
    return rows


def build_store(location: str, traces: int, per_trace: int, now_ns: int) -> list[str]:
    """Write the synthetic store; returns some trace ids to look up."""
    writer = StoreWriter(location, max_pending=200_000, max_transaction_rows=50_000)
    chunk = 10_000
    ids_seen: list[str] = []
    for first in range(0, traces, chunk // per_trace):
        count = min(chunk // per_trace, traces - first)
        rows = synthetic_rows(first, count, traces, per_trace, now_ns)
        ids_seen.append(rows[0].trace_id)
        writer.submit(rows, wait_s=600)
    if not writer.flush(3600):
        raise RuntimeError(f"building the store failed: {writer.stats()}")
    writer.close()
    return ids_seen


def timed(call: Callable[[], object], rounds: int) -> tuple[float, float]:
    """Median and worst wall time of ``call`` in ms."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


def query_bench(location: str, label: str, traces: int, per_trace: int, rounds: int) -> None:
    now_ns = time.time_ns()
    started = time.perf_counter()
    trace_ids = build_store(location, traces, per_trace, now_ns)
    if location.startswith("postgresql"):
        # what autovacuum does shortly after a bulk load: planner statistics and the
        # visibility map (which lets the aggregates read the name index alone)
        import psycopg

        conninfo, schema = location.split("?schema=")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'VACUUM ANALYZE "{schema}".spans')
            conn.execute(f'VACUUM ANALYZE "{schema}".traces')
    print(f"{label}: built a store of {traces * per_trace:,} spans in "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    with spanline.store.open(location) as store:
        counts = store.counts()
        picks = random.Random(3)
        hexes = [store.trace(t)[0].trace_hex for t in trace_ids[:5]]
        found = store.spans(limit=1000, order="start").items
        hour_ago = now_ns - 3600 * 1_000_000_000
        cases: list[tuple[str, Callable[[], object]]] = [
            ("trace by tr_ id", lambda: store.trace(picks.choice(trace_ids))),
            ("trace by hex id", lambda: store.trace(picks.choice(hexes))),
            ("call tree", lambda: store.tree(picks.choice(trace_ids))),
            ("span by sp_ id", lambda: store.span(picks.choice(found).span_id)),
            ("trace search, newest 50", lambda: store.traces(limit=50)),
            ("trace search, errors", lambda: store.traces(status="error", limit=50)),
            ("spans of an actor", lambda: store.spans(actor=f"user:{picks.randrange(500)}")),
            ("aggregates, last hour", lambda: store.operations(since=hour_ago)),
            ("aggregates, whole store", store.operations),
        ]
        print(f"{label}: {counts['spans']:,} spans, {counts['traces']:,} traces")
        print(f"{'query':32s} {'median ms':>10s} {'worst ms':>10s}")
        for name, call in cases:
            call()  # warm
            median, worst = timed(call, rounds)
            print(f"{name:32s} {median:10.2f} {worst:10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller numbers")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--pg-url", default=PG_URL, help="PostgreSQL to use (a fresh schema)")
    parser.add_argument("--spans", type=int, help="spans per ingest round")
    parser.add_argument("--store-spans", type=int, help="spans in the query benchmark's store")
    parser.add_argument("--batch", type=int, default=2048, help="spans per export call")
    args = parser.parse_args()
    count = args.spans or (20_000 if args.quick else 200_000)
    stored = args.store_spans or (100_000 if args.quick else 1_000_000)
    rounds = 3
    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{count:,} spans per ingest round, batches of {args.batch}")  # fmt: skip
    spans = make_spans(count)
    gc.collect()
    gc.freeze()
    backends = ["sqlite"] + ([] if args.no_postgres else ["postgresql"])
    with tempfile.TemporaryDirectory() as folder:
        schemas: list[str] = []

        def location(kind: str) -> str:
            if kind == "sqlite":
                return str(Path(folder) / f"{uuid.uuid4().hex}.db")
            schemas.append(f"bench_{uuid.uuid4().hex[:10]}")
            return f"{args.pg_url}?schema={schemas[-1]}"

        try:
            for kind in backends:
                rates = [ingest(location(kind), spans, args.batch) for _ in range(rounds)]
                print(f"ingest into {kind:10s} {statistics.median(rates):10,.0f} spans/s "
                      f"(rounds: {', '.join(f'{r:,.0f}' for r in rates)})")  # fmt: skip
            del spans
            gc.unfreeze()
            gc.collect()
            for kind in backends:
                query_bench(location(kind), kind, stored // 10, 10, 20 if args.quick else 30)
        finally:
            if schemas:
                import psycopg

                conninfo = args.pg_url.split("?")[0]
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    for schema in schemas:
                        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
