"""The store writer: rows in, committed batches out, from one background thread.

:meth:`StoreWriter.submit` (rows) or :meth:`StoreWriter.submit_spans` (finished
spans, converted on the writer thread) is all a producer does: it appends the batch to
a bounded queue and wakes the writer thread (optionally waiting until it is committed,
or parked because the store is unreachable).  The thread alone talks to the database:

* it writes what is queued in transactions of up to ``max_transaction_rows`` rows
  (each submitted batch is all in or all out);
* when the store cannot be reached or written (PostgreSQL down, a full disk, a
  read-only file, a schema from a newer spanline), the rows stay queued, the error is
  counted in :meth:`stats` and logged (rate-limited), and the write is retried with
  exponential backoff (``retry_initial_s`` doubling up to ``retry_max_s``); rows a
  database refuses outright (a value it cannot store) are skipped one by one and
  counted ``refused``, so one bad row never blocks the queue;
* when the queue holds ``max_pending`` rows, newer batches are dropped and counted
  (memory stays bounded during an outage);
* between batches it enforces the :class:`~spanline.store.retention.Retention`
  policy in short steps.

Nothing here raises into the producer.  **Fork**: a forked child gets an empty queue,
zeroed counters, its own thread and, on first write, its own connection; the
parent's connection is never touched by the child.  **Close** writes what is queued
within its deadline, with one immediate attempt if the store was unreachable (so an
application exiting during an outage is not held for the whole deadline); what is
left is counted ``abandoned_at_close``.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
import threading
import time
import weakref
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from spanline._log import report
from spanline.core.location import StoreLocation, resolve_store
from spanline.store.backend import Backend, open_backend
from spanline.store.convert import row_tuples
from spanline.store.retention import Retention
from spanline.store.row import RowValues, SpanRow

if TYPE_CHECKING:
    from spanline.core.span import Span

__all__ = ["StoreWriter"]


class _Chunk:
    """One submitted batch: committed (or parked) together.  Spans handed over by
    :meth:`StoreWriter.submit_spans` become rows on the writer thread, when the
    chunk is first taken for writing."""

    __slots__ = ("done", "rows", "service", "size", "spans")

    def __init__(
        self,
        rows: Sequence[RowValues] | None,
        spans: Sequence[Span] | None = None,
        service: str | None = None,
    ) -> None:
        self.rows = rows
        self.spans = spans
        self.service = service
        self.size = len(rows if rows is not None else spans or ())
        self.done = threading.Event()

    def materialize(self) -> Sequence[RowValues]:
        """The chunk's rows (converting its spans the first time)."""
        if self.rows is None:
            self.rows = row_tuples(self.spans or (), self.service)
            self.spans = None
        return self.rows


class StoreWriter:
    """Write :class:`~spanline.store.row.SpanRow` batches to a store from one thread.

    ``store`` is a path, a ``postgresql://`` URL or a resolved location (default:
    ``SPANLINE_STORE``, else ``./spanline.db``).  Backend options pass through:
    ``busy_timeout_s`` and ``pragmas`` for SQLite, ``connect_timeout_s`` and
    ``application_name`` for PostgreSQL.  Invalid options raise here, at
    construction; nothing raises later.
    """

    def __init__(
        self,
        store: str | os.PathLike[str] | StoreLocation | None = None,
        *,
        schema: str | None = None,
        retention: Retention | None = None,
        max_pending: int = 20_000,
        max_transaction_rows: int = 10_000,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 30.0,
        **backend_options: Any,
    ) -> None:
        for name, value in (
            ("max_pending", max_pending),
            ("max_transaction_rows", max_transaction_rows),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name}={value!r} must be a whole number > 0")
        if not 0 < retry_initial_s <= retry_max_s:
            raise ValueError(
                f"retry_initial_s={retry_initial_s!r} and retry_max_s={retry_max_s!r}: "
                "need 0 < retry_initial_s <= retry_max_s"
            )
        self.location = resolve_store(store, schema=schema)
        self._backend: Backend = open_backend(self.location, **backend_options)
        self.retention = retention if retention is not None else Retention()
        self._max_pending = max_pending
        self._max_transaction = max_transaction_rows
        self._retry_initial = retry_initial_s
        self._retry_max = retry_max_s
        self._closed = False
        self._start_runtime()
        ref = weakref.ref(self)
        if hasattr(os, "register_at_fork"):  # pragma: no branch - absent only on Windows
            os.register_at_fork(after_in_child=lambda: _reinit(ref))

    def _start_runtime(self) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._pending: collections.deque[_Chunk] = collections.deque()
        self._pending_rows = 0
        self._in_flight = 0
        self._stopping = False
        self._deadline = 0.0
        self._counts: collections.Counter[str] = collections.Counter()
        self._last_error: str | None = None
        self._last_error_at: float | None = None
        self._down = False
        self._retry_at = 0.0
        self._backoff = 0.0
        self._gave_up = False
        self._schema_version: int | None = None
        self._next_retention = time.monotonic()
        self._run_state: dict[str, Any] | None = None
        self._id = next(_IDS)
        self._thread = threading.Thread(target=self._run, name="spanline-store", daemon=True)
        self._thread.start()

    # -- the producer's side ------------------------------------------------------

    def submit(self, rows: Sequence[SpanRow], wait_s: float | None = None) -> bool:
        """Queue ``rows`` to be written as one transaction; ``False`` when they were
        dropped (queue full, or the writer closed).  With ``wait_s``, wait up to that
        long until they are committed or parked for a retry."""
        return self._submit(_Chunk(rows), wait_s)

    def submit_spans(
        self, spans: Sequence[Span], service: str | None = None, wait_s: float | None = None
    ) -> bool:
        """Like :meth:`submit` for finished spanline spans: they are converted to
        rows (:func:`~spanline.store.convert.rows_from_spans`) on the writer thread,
        the thread that writes them -- measurably cheaper than building the rows on
        one thread and writing them on another."""
        return self._submit(_Chunk(None, spans, service), wait_s)

    def _submit(self, chunk: _Chunk, wait_s: float | None) -> bool:
        count = chunk.size
        if not count:
            return True
        with self._lock:
            if self._stopping or self._pending_rows + count > self._max_pending:
                self._counts["dropped"] += count
                full: bool | None = not self._stopping
            else:
                self._pending.append(chunk)
                self._pending_rows += count
                full = None
        if full is not None:
            report(
                f"store-drop:{self._id}",
                "spanline: the store writer for %s %s; dropping %d spans (counted in stats)",
                self.location.display,
                f"has {self._max_pending} spans queued" if full else "is closed",
                count,
                level=30,
            )
            return False
        self._wake.set()
        if wait_s is not None:
            chunk.done.wait(wait_s)
        return True

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until everything queued so far is committed; ``False`` if the
        deadline passed first (for instance while the store is unreachable)."""
        deadline = time.monotonic() + timeout_s
        self._wake.set()
        with self._idle:
            while self._pending_rows or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._idle.wait(min(left, 0.1))
        return True

    def close(self, timeout_s: float = 30.0) -> None:
        """Write what is queued (within ``timeout_s``), stop the thread and close the
        connection.  Later batches are dropped and counted; a second call does
        nothing."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            self._deadline = time.monotonic() + timeout_s
            self._retry_at = 0.0  # one last attempt now, whatever the backoff said
        self._closed = True
        self._wake.set()
        self._thread.join(timeout_s + 1.0)
        with self._lock:
            left = self._pending_rows
            abandoned = list(self._pending)
            if left:
                self._counts["abandoned_at_close"] += left
                self._pending.clear()
                self._pending_rows = 0
            self._idle.notify_all()
        for chunk in abandoned:
            chunk.done.set()  # nobody waits for rows that will not be written
        if left:
            report(
                f"store-close:{self._id}",
                "spanline: the store %s could not be written before it was closed; "
                "%d spans abandoned",
                self.location.display,
                left,
            )
        if not self._thread.is_alive():
            try:
                self._backend.close()
            except Exception as error:  # noqa: BLE001 - closing must not raise into the app
                report(
                    f"store-close-error:{self._id}",
                    "spanline: closing %s: %r",
                    self.location.display,
                    error,
                    level=30,
                )

    def stats(self) -> dict[str, Any]:
        """Counters and state: ``written`` (rows committed), ``transactions``,
        ``pending`` (rows queued), ``dropped`` (queue full or closed), ``refused``
        (rows the database rejected), ``write_errors``, ``last_error`` and
        ``last_error_at`` (ISO time), ``connected``, ``retrying`` (waiting to retry
        after an error), ``schema_version``, ``retention_deleted``, ``retention_errors`` and
        ``abandoned_at_close``."""
        with self._lock:
            counts = dict(self._counts)
            snapshot: dict[str, Any] = {
                "store": self.location.display,
                "backend": self.location.kind,
                "pending": self._pending_rows + self._in_flight,
                "connected": self._backend.connected,
                "retrying": self._down,
                "last_error": self._last_error,
                "last_error_at": (
                    datetime.fromtimestamp(self._last_error_at, UTC).isoformat()
                    if self._last_error_at is not None
                    else None
                ),
                "schema_version": self._schema_version,
            }
        for key in (
            "written",
            "transactions",
            "dropped",
            "refused",
            "write_errors",
            "retention_deleted",
            "retention_errors",
            "abandoned_at_close",
        ):
            snapshot[key] = counts.get(key, 0)
        return snapshot

    # -- the writer thread --------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                if self._step():
                    return
            except Exception as error:  # noqa: BLE001 - the writer thread must survive a bug
                report(
                    f"store-loop:{self._id}",
                    "spanline: unexpected error in the store writer for %s: %r",
                    self.location.display,
                    error,
                    exc_info=error,
                )
                time.sleep(0.1)

    def _step(self) -> bool:
        """One turn of the writer loop; ``True`` when the thread should end."""
        self._wake.wait(self._sleep_s())
        self._wake.clear()
        now = time.monotonic()
        with self._lock:
            has_rows = bool(self._pending)
            stopping = self._stopping
        if stopping and (not has_rows or now >= self._deadline or self._gave_up):
            return True
        if has_rows:
            if now >= self._retry_at:
                self._write_some()
            else:
                self._park()
        elif self.retention.active and now >= self._next_retention and not self._down:
            self._retention_step()
        return False

    def _sleep_s(self) -> float | None:
        now = time.monotonic()
        with self._lock:
            if self._pending:
                if now < self._retry_at:
                    wait = self._retry_at - now
                    return min(wait, max(0.0, self._deadline - now)) if self._stopping else wait
                return 0.0
        if self.retention.active and not self._down:
            return max(0.0, self._next_retention - now)
        return None

    def _take(self) -> tuple[list[_Chunk], int]:
        with self._lock:
            chunks = [self._pending.popleft()]
            size = chunks[0].size
            while self._pending and size + self._pending[0].size <= self._max_transaction:
                chunk = self._pending.popleft()
                size += chunk.size
                chunks.append(chunk)
            self._pending_rows -= size
            self._in_flight = size
        return chunks, size

    def _write_some(self) -> None:
        chunks, size = self._take()
        rows: Sequence[RowValues] = (
            chunks[0].materialize()
            if len(chunks) == 1
            else list(itertools.chain.from_iterable(c.materialize() for c in chunks))
        )
        refused = 0
        try:
            self._ensure_connected()
            try:
                self._backend.write(rows)
            except Exception as error:
                if not self._backend.is_data_error(error):
                    raise
                refused = self._backend.write_each(rows)
        except Exception as error:  # noqa: BLE001 - counted, logged, retried
            with self._lock:
                self._pending.extendleft(reversed(chunks))
                self._pending_rows += size
                self._in_flight = 0
            self._failed(error, len(rows))
            self._park()
            self._gave_up = self._stopping  # closing: the last attempt failed, stop now
            return
        if refused:
            report(
                f"store-refused:{self._id}",
                "spanline: the store %s refused %d spans (values it cannot store); "
                "the rest of the batch was written",
                self.location.display,
                refused,
                level=30,
            )
        with self._lock:
            self._in_flight = 0
            self._counts["written"] += len(rows) - refused
            self._counts["refused"] += refused
            self._counts["transactions"] += 1
            self._down = False
            self._backoff = 0.0
            self._idle.notify_all()
        for chunk in chunks:
            chunk.done.set()

    def _ensure_connected(self) -> None:
        if not self._backend.connected:
            version = self._backend.connect()
            with self._lock:
                self._schema_version = version

    def _failed(self, error: BaseException, queued: int) -> None:
        self._backoff = min(self._retry_max, max(self._retry_initial, self._backoff * 2))
        message = _describe(error)
        with contextlib.suppress(Exception):  # the connection is broken anyway
            self._backend.close()
        report(
            f"store-write:{self._id}",
            "spanline: cannot write to the store %s: %s; %d spans kept queued, "
            "retrying in %.1f s (see the exporter's stats())",
            self.location.display,
            message,
            queued,
            self._backoff,
        )
        with self._lock:
            self._counts["write_errors"] += 1
            self._down = True
            self._retry_at = time.monotonic() + self._backoff
            self._last_error = message
            self._last_error_at = time.time()

    def _park(self) -> None:
        """The store is unreachable: release producers waiting on queued rows."""
        with self._lock:
            chunks = list(self._pending)
        for chunk in chunks:
            chunk.done.set()

    def _retention_step(self) -> None:
        policy = self.retention
        state = self._run_state
        if state is None:
            age = policy.max_age_ns
            state = self._run_state = {
                "before": time.time_ns() - age if age is not None else None,
                "excess": None,
            }
        try:
            self._ensure_connected()
            deleted = 0
            if state["before"] is not None:
                deleted = self._backend.delete_oldest(policy.chunk, state["before"])
                if deleted == 0:
                    state["before"] = None
            elif policy.max_spans is not None:
                if state["excess"] is None:
                    state["excess"] = self._backend.count_spans() - policy.max_spans
                if state["excess"] > 0:
                    deleted = self._backend.delete_oldest(min(policy.chunk, state["excess"]), None)
                    state["excess"] -= deleted
                if deleted == 0 or state["excess"] <= 0:
                    state["excess"] = 0
            finished = state["before"] is None and (
                policy.max_spans is None or state["excess"] == 0
            )
        except Exception as error:  # noqa: BLE001 - counted, logged, tried again later
            finished = True
            deleted = 0
            with self._lock:
                self._counts["retention_errors"] += 1
                self._last_error = _describe(error)
                self._last_error_at = time.time()
            report(
                f"store-retention:{self._id}",
                "spanline: retention on the store %s failed: %s; trying again in %.0f s",
                self.location.display,
                _describe(error),
                policy.interval_s,
                level=30,
            )
        with self._lock:
            self._counts["retention_deleted"] += deleted
        if finished:
            self._run_state = None
            self._next_retention = time.monotonic() + policy.interval_s


_IDS = itertools.count(1)


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    name = type(error).__name__
    lowered = text.lower()
    hint = ""
    if "disk is full" in lowered or "no space" in lowered:
        hint = " (the disk or the file's size limit is full)"
    elif "readonly" in lowered or "read-only" in lowered:
        hint = " (the store file or its folder is read-only)"
    return f"{name}: {text}{hint}" if text else name


def _reinit(ref: weakref.ref[StoreWriter]) -> None:
    """In a forked child: drop the parent's connection, start a fresh runtime."""
    writer = ref()
    if writer is not None and not writer._closed:
        writer._backend.forget()
        writer._start_runtime()
