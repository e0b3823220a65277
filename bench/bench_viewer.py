"""The viewer on a large store: search server time and rendering a big trace.

Run:  python bench/bench_viewer.py            (1,000,000 spans; --quick for 100,000)

1. Builds a SQLite store of synthetic traces (``bench_store.build_store``: traces of
   10 spans over 24 hours, 500 actors, 1% errors) plus one trace of 10,000 spans
   (a 4-ary tree, 7 levels).
2. Serves it with the real viewer (uvicorn on 127.0.0.1) and times searches over
   HTTP -- the search page (HTML) and its JSON twin with filters -- median and worst
   of several rounds: this is server time plus a loopback round trip.
3. Opens the 10,000-span trace in Debian's headless Chromium and reads the time from
   navigation start until the waterfall is built (``performance.now()``, set by the
   page script), median of several loads.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.viewer_support import viewer

from bench_store import build_store, synthetic_rows
from spanline.store import StoreWriter

SEARCHES = {
    "search page (HTML, newest 50)": "/",
    "json: newest 50": "/api/traces",
    "json: actor user:42": "/api/traces?actor=user:42",
    "json: status error": "/api/traces?status=error",
    "json: slowest in the last hour": "/api/traces?window=1h&sort=-duration",
    "json: operation name (common)": "/api/traces?name=GET%20/3",
    "json: operation name (absent)": "/api/traces?name=orders.Place",
    "json: min duration 5 ms": "/api/traces?min_ms=5",
    "json: attribute http.route=/r/3": "/api/traces?attr=http.route%3D/r/3",
}


def big_trace(location: str, now_ns: int, spans: int = 10_000) -> str:
    rows = synthetic_rows(0, 1, 1, spans, now_ns - 60_000_000_000)
    tree = [rows[0]]
    for index, row in enumerate(rows[1:], 1):
        tree.append(row._replace(parent_hex=rows[(index - 1) // 4].span_hex))
    writer = StoreWriter(location)
    writer.submit(tree, wait_s=120)
    writer.close()
    return tree[0].trace_id


def time_get(url: str, rounds: int) -> tuple[float, float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - http only
            response.read()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


def render_ms(url: str, rounds: int) -> list[int]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("needs Debian's chromium (apt install chromium)")
    results = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for _ in range(rounds):
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url)
            page.wait_for_selector("body[data-render-ms]", timeout=60_000)
            results.append(int(page.get_attribute("body", "data-render-ms") or 0))
            page.close()
        browser.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 spans, fewer rounds")
    args = parser.parse_args()
    traces = 10_000 if args.quick else 100_000
    rounds = 5 if args.quick else 15
    now_ns = time.time_ns()
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "viewer.db"
        started = time.perf_counter()
        build_store(str(store), traces, 10, now_ns)
        trace_id = big_trace(str(store), now_ns)
        print(
            f"python {sys.version.split()[0]}; store of {traces * 10 + 10_000:,} spans "
            f"built in {time.perf_counter() - started:.0f} s"
        )
        with viewer(store) as base:
            for label, path in SEARCHES.items():
                time_get(base + path, 1)  # warm the page cache
                median, worst = time_get(base + path, rounds)
                print(f"{label:36s} median {median:7.1f} ms   worst {worst:7.1f} ms")
            times = render_ms(f"{base}/traces/{trace_id}", 3 if args.quick else 5)
            print(
                f"10,000-span trace rendered in the browser: median "
                f"{statistics.median(times)} ms (all: {times})"
            )


if __name__ == "__main__":
    main()
