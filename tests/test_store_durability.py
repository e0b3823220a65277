"""A writer process killed with SIGKILL in the middle of a batch leaves a readable
SQLite file with every committed batch whole (a real process, really killed).

The child writes with a tiny page cache, so SQLite spills a batch's pages to the WAL
while the batch is still being written: a kill then leaves uncommitted frames on
disk, which recovery must ignore.  The test kills children until it has seen that
happen (the WAL grew past its size at the last commit), checking the file each time.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import spanline.store

ROOT = Path(__file__).resolve().parent.parent
BATCH = 2000

WRITER = textwrap.dedent(
    f"""
    import sys
    from spanline.store import StoreWriter
    from tests.test_store_support import row

    writer = StoreWriter(sys.argv[1], max_pending=100_000, pragmas={{"cache_size": 20}})
    first = int(sys.argv[2])
    for batch in range(first, first + 1000):
        rows = [
            row(trace=batch * {BATCH} + i + 1, span=i + 1, name=f"b{{batch}}",
                attributes={{"batch": batch, "payload": "x" * 100}})
            for i in range({BATCH})
        ]
        print("start", batch, flush=True)
        writer.submit(rows, wait_s=60)  # returns once the batch is committed
        print("committed", batch, flush=True)
    """
)


def _wal_size(db: Path) -> int:
    wal = Path(f"{db}-wal")
    return wal.stat().st_size if wal.exists() else 0


def _kill_mid_batch(db: Path, first: int, delay_s: float) -> tuple[int, int, bool]:
    """Run a writer; once two batches are committed, SIGKILL it ``delay_s`` after it
    starts the next one.  Returns (last committed batch, the batch being written,
    whether uncommitted frames were left in the WAL)."""
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), str(first)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    committed, size_at_commit = -1, 0
    try:
        for line in child.stdout:
            event, batch = line.split()
            if event == "committed":
                committed, size_at_commit = int(batch), _wal_size(db)
            elif committed >= first + 1:
                time.sleep(delay_s)
                child.send_signal(signal.SIGKILL)
                child.wait(timeout=30)
                return committed, int(batch), _wal_size(db) > size_at_commit
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
        child.stdout.close()
    raise AssertionError("the writer ended before it could be killed")


def _batches(db: Path) -> dict[int, int]:
    """Batch number -> rows stored, after checking the file and the summaries."""
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        counts = conn.execute("SELECT name, count(*) FROM spans GROUP BY name").fetchall()
        traces = conn.execute(
            "SELECT count(*), coalesce(sum(span_count), 0) FROM traces"
        ).fetchone()
    found = {int(name[1:]): count for name, count in counts}
    assert traces == (sum(found.values()), sum(found.values()))  # summaries went with rows
    return found


def test_sigkill_mid_batch_keeps_every_committed_batch_whole(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    picks = random.Random(5)
    first, kills, torn = 0, 0, 0
    committed: set[int] = set()
    while kills < 2 or (not torn and kills < 10):
        last, killed_in, left_frames = _kill_mid_batch(db, first, picks.uniform(0.002, 0.03))
        kills += 1
        torn += left_frames
        committed |= set(range(first, last + 1))
        found = _batches(db)  # opening it recovers the WAL, dropping the torn batch
        assert all(count == BATCH for count in found.values()), found  # none half there
        assert committed <= set(found)  # every committed batch survived
        assert max(found) <= killed_in
        assert not os.path.exists(f"{db}-journal")
        first = killed_in + 1
    assert torn, "no kill landed while a batch was being written; the test proved nothing"
    with spanline.store.open(db) as store:  # the crashed file is a working store
        assert store.counts()["spans"] == BATCH * len(_batches(db))
