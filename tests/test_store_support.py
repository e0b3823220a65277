"""Helpers shared by the tests/test_store_*.py files (no tests here).

Real parts only: SQLite files under ``tmp_path``, the real PostgreSQL on
127.0.0.1:5432 (a fresh schema per test, dropped afterwards) and, for outages, a real
TCP proxy on 127.0.0.1 that can be stopped and started again.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from spanline.core import ids
from spanline.store import SpanRow, StoreWriter

DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z, in ns
MS = 1_000_000


def row(
    trace: int = 1,
    span: int = 1,
    parent: int | None = None,
    *,
    start_ms: int = 0,
    duration_ms: float = 1,
    name: str = "work",
    **overrides: Any,
) -> SpanRow:
    """A hand-made row: ``trace``/``span``/``parent`` are small numbers made into
    W3C ids (trace ids of spanline's generated shape, so they have a ``tr_`` form),
    times are milliseconds after :data:`T0`."""
    start = T0 + start_ms * MS
    trace_int = ((start // MS) << 80) | trace
    trace_hex = f"{trace_int:032x}"
    values: dict[str, Any] = {
        "trace_hex": trace_hex,
        "span_hex": f"{span:016x}",
        "parent_hex": None if parent is None else f"{parent:016x}",
        "trace_id": ids.trace_id_from_int(trace_int),
        "span_id": ids.format_id("sp_", start, span),
        "parent_id": None,
        "name": name,
        "type": "span",
        "kind": "internal",
        "status": "unset",
        "status_message": None,
        "start_ns": start,
        "end_ns": start + int(duration_ms * MS),
        "duration_ns": int(duration_ms * MS),
        "service": "shop",
        "actor_type": None,
        "actor_id": None,
        "actor": None,
        "frames": None,
        "attributes": None,
        "records": None,
        "meta": None,
        "events": None,
    }
    for key in ("attributes", "records", "meta", "actor", "frames", "events"):
        if key in overrides and not isinstance(overrides[key], str | None):
            overrides[key] = json.dumps(overrides[key])
    values.update(overrides)
    if "duration_ns" not in overrides:
        values["duration_ns"] = values["end_ns"] - values["start_ns"]
    return SpanRow(**values)


def same_trace(first: SpanRow, *, span: int, parent: int | None, **overrides: Any) -> SpanRow:
    """Another row of ``first``'s trace."""
    made = row(span=span, parent=parent, **overrides)
    return made._replace(trace_hex=first.trace_hex, trace_id=first.trace_id)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema name, dropped (with everything in it) afterwards."""
    name = f"spanline_test_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def writers() -> Iterator[list[StoreWriter]]:
    """Writers made by a test, closed afterwards (their threads must not leak)."""
    made: list[StoreWriter] = []
    yield made
    for writer in made:
        writer.close(timeout_s=5)


def wait_for(check: Callable[[], object], timeout_s: float = 20.0, what: str = "") -> None:
    """Poll ``check`` until it is true (a deadline, not a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what or check}")
        time.sleep(0.02)


class TcpProxy:
    """A real TCP hop on 127.0.0.1 to ``upstream``: :meth:`stop` closes the listener
    and every open connection (an outage), :meth:`start` listens again on the same
    port."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown wakes the thread blocked in accept(); close() alone would not
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/test"


def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "spans.db"
