"""The query API, on a real SQLite file and on the real PostgreSQL (same tests)."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import spanline.store
from spanline import StatusCode
from spanline.store import SpanRow, Store, StoreWriter
from tests.test_store_support import MS, PG_URL, T0, pg_schema, row, same_trace, writers

__all__ = ["pg_schema", "writers"]  # fixtures used through their names

Make = Callable[[list[SpanRow]], Store]


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "query.db")
    schema = request.getfixturevalue("pg_schema")
    return f"{PG_URL}?schema={schema}"


@pytest.fixture
def make_store(location: str, writers: list[StoreWriter]) -> Iterator[Make]:
    opened: list[Store] = []

    def make(rows: list[SpanRow]) -> Store:
        writer = StoreWriter(location)
        writers.append(writer)
        assert writer.submit(rows)
        assert writer.flush(timeout_s=20), writer.stats()
        store = spanline.store.open(location)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


ACTOR_42: dict[str, Any] = {
    "actor_type": "user",
    "actor_id": "42",
    "actor": {"type": "user", "id": "42"},
}
ACTOR_7: dict[str, Any] = {
    "actor_type": "user",
    "actor_id": "7",
    "actor": {"type": "user", "id": "7"},
}


def shop_rows() -> list[SpanRow]:
    """Three traces: a good order, a failed order, a payment in another service
    (with a span whose parent ran elsewhere)."""
    good = row(1, 1, name="GET /orders", kind="server", status="ok", duration_ms=50, **ACTOR_42)
    failed = row(
        2, 11, name="GET /orders", kind="server", start_ms=1000, duration_ms=200,
        status="error", status_message="boom", attributes={"http.status_code": 500}, **ACTOR_7,
    )  # fmt: skip
    payment = row(3, 21, name="ProcessPayment", service="payments", start_ms=2000, duration_ms=5)
    return [
        good,
        same_trace(good, span=2, parent=1, name="PlaceOrder", type="operation", start_ms=1,
                   duration_ms=40, records={"order": 7}, **ACTOR_42),
        same_trace(good, span=3, parent=2, name="db.query", kind="client", start_ms=2,
                   duration_ms=10, attributes={"db.system.name": "postgresql", "db.rows": 3},
                   **ACTOR_42),
        same_trace(good, span=4, parent=2, name="cache.get", start_ms=20, duration_ms=1,
                   attributes={"hit": True}, **ACTOR_42),
        failed,
        same_trace(failed, span=12, parent=11, name="db.query", kind="client", start_ms=1001,
                   duration_ms=150, status="error", status_message="timeout", **ACTOR_7),
        payment,
        same_trace(payment, span=22, parent=21, name="charge", service="payments",
                   start_ms=2001, duration_ms=3),
        same_trace(payment, span=23, parent=99, name="callback", service="payments",
                   start_ms=2003, duration_ms=1),
    ]  # fmt: skip


def names(rows: list[SpanRow]) -> list[str]:
    return [r.name for r in rows]


def test_a_trace_by_either_id_form_in_start_order(make_store: Make) -> None:
    rows = shop_rows()
    store = make_store(rows)
    good = rows[0]
    assert good.trace_id.startswith("tr_")
    by_text = store.trace(good.trace_id)
    assert names(by_text) == ["GET /orders", "PlaceOrder", "db.query", "cache.get"]
    assert store.trace(good.trace_hex) == by_text
    assert store.trace(good.trace_hex.upper()) == by_text
    assert by_text[2].to_dict()["attributes"] == {"db.system.name": "postgresql", "db.rows": 3}
    assert by_text[1].to_dict()["records"] == {"order": 7}
    assert store.trace("tr_1pAHkXTU17QTDGxSjC94") == []  # well-formed, not stored
    with pytest.raises(ValueError, match="trace id must be a non-empty string"):
        store.trace("")


def test_an_external_trace_id_finds_its_trace(make_store: Make) -> None:
    from spanline.core import ids

    external = "req-2024-0042"
    hex_id = ids.trace_hex(ids.trace_int_from_id(external))
    first = row(5, 1, name="job")._replace(trace_hex=hex_id, trace_id=external)
    store = make_store([first])
    assert names(store.trace(external)) == ["job"]
    assert names(store.trace(hex_id)) == ["job"]


def test_the_call_tree_is_rebuilt_from_parent_links(make_store: Make) -> None:
    rows = shop_rows()
    store = make_store(rows)
    roots = store.tree(rows[0].trace_id)
    outline = [("  " * n.depth) + n.span.name for root in roots for n in root.walk()]
    assert outline == ["GET /orders", "  PlaceOrder", "    db.query", "    cache.get"]
    payment = store.tree(rows[6].trace_hex)
    assert [(r.span.name, r.orphan) for r in payment] == [
        ("ProcessPayment", False),
        ("callback", True),  # its parent ran in a service that does not report here
    ]
    assert roots[0].to_dict()["children"][0]["children"][1]["name"] == "cache.get"


def test_a_parent_cycle_is_broken_not_followed_for_ever(make_store: Make) -> None:
    first = row(8, 1, parent=2, name="a")
    store = make_store([first, same_trace(first, span=2, parent=1, name="b", start_ms=1)])
    roots = store.tree(first.trace_id)
    assert [(r.span.name, r.orphan, [c.span.name for c in r.children]) for r in roots] == [
        ("a", True, ["b"])
    ]


def test_one_span_by_either_id_form(make_store: Make) -> None:
    rows = shop_rows()
    store = make_store(rows)
    wanted = rows[2].to_dict()  # PostgreSQL's jsonb reorders keys: compare decoded

    def found(span_id: str, trace_id: str | None = None) -> object:
        got = store.span(span_id, trace_id)
        return got and got.to_dict()

    assert found(rows[2].span_id) == wanted
    assert found(rows[2].span_hex) == wanted
    assert found(rows[2].span_hex, trace_id=rows[2].trace_id) == wanted
    assert found(rows[2].span_hex, trace_id=rows[4].trace_id) is None
    with pytest.raises(ValueError, match="neither an op_/hd_/sp_ id nor 16 hex"):
        store.span("tr_1pAHkXTU17QTDGxSjC94")


def test_span_filters(make_store: Make) -> None:
    store = make_store(shop_rows())

    def found(**filters: object) -> list[str]:
        return names(store.spans(order="start", **filters).items)  # type: ignore[arg-type]

    assert found(actor="user:42") == ["GET /orders", "PlaceOrder", "db.query", "cache.get"]
    assert found(actor=("user", 7)) == ["GET /orders", "db.query"]
    assert found(actor={"type": "user", "id": 7}) == ["GET /orders", "db.query"]
    assert len(found(actor="user")) == 6
    assert found(name="db.query") == ["db.query", "db.query"]
    assert found(service="payments") == ["ProcessPayment", "charge", "callback"]
    assert found(status="error") == ["GET /orders", "db.query"]
    assert found(status=StatusCode.OK) == ["GET /orders"]
    assert found(kind="client") == ["db.query", "db.query"]
    assert found(type="operation") == ["PlaceOrder"]
    assert found(since=T0 + 1000 * MS, until=T0 + 2000 * MS) == ["GET /orders", "db.query"]
    moment = datetime.datetime.fromtimestamp((T0 + 2000 * MS) / 1e9, datetime.UTC)
    assert found(since=moment) == ["ProcessPayment", "charge", "callback"]
    assert found(min_duration=150 * MS) == ["GET /orders", "db.query"]
    assert found(max_duration=datetime.timedelta(milliseconds=1)) == ["cache.get", "callback"]
    assert found(trace=shop_rows()[6].trace_id, max_duration=3 * MS) == ["charge", "callback"]
    assert found(attributes={"db.system.name": "postgresql"}) == ["db.query"]
    assert found(attributes={"db.rows": 3}) == ["db.query"]
    assert found(attributes={"http.status_code": "500"}) == ["GET /orders"]  # typed text
    assert found(attributes={"http.status_code": 500}) == ["GET /orders"]
    assert found(attributes={"hit": True}) == ["cache.get"]
    assert found(attributes={"hit": "true"}) == ["cache.get"]
    assert found(attributes={"hit": False}) == []
    assert found(records={"order": 7}) == ["PlaceOrder"]
    assert found(name="db.query", status="error", actor="user:7") == ["db.query"]


def test_span_search_is_sorted_and_paginated(make_store: Make) -> None:
    store = make_store(shop_rows())
    first = store.spans(limit=4)
    assert first.has_more
    assert first.next_offset == 4
    assert names(first.items) == ["callback", "charge", "ProcessPayment", "db.query"]
    rest = store.spans(limit=4, offset=first.next_offset or 0)
    last = store.spans(limit=4, offset=8)
    assert len(rest.items) == 4
    assert len(last.items) == 1
    assert not last.has_more
    assert last.next_offset is None
    slowest = store.spans(order="-duration", limit=2)
    assert [(r.name, r.duration_ns) for r in slowest.items] == [
        ("GET /orders", 200 * MS),
        ("db.query", 150 * MS),
    ]
    assert names(store.spans(order="duration", limit=1).items) == ["cache.get"]


def test_hostile_input_is_a_parameter_or_a_clear_error(make_store: Make) -> None:
    store = make_store(shop_rows())
    assert store.spans(name="x' OR '1'='1").items == []
    assert store.spans(attributes={"k') OR 1=1 --": "v"}).items == []
    assert store.traces(service="a'; DROP TABLE spans; --").items == []
    assert len(store.trace(shop_rows()[0].trace_id)) == 4  # still there
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: store.spans(order="start; DROP TABLE spans"), "order="),
        (lambda: store.spans(limit=0), "limit=0"),
        (lambda: store.spans(offset=-1), "offset=-1"),
        (lambda: store.spans(status="broken"), "status='broken' is invalid"),
        (lambda: store.spans(actor=3), "actor=3"),
        (lambda: store.spans(attributes={'a"b': 1}), "without '\"'"),
        (lambda: store.traces(order="name"), "order='name' is invalid"),
        (lambda: store.changes(-1), "cursor=-1"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
    with pytest.raises(TypeError, match="since must be nanoseconds"):
        store.spans(since=1.5)
    with pytest.raises(TypeError, match="min_duration must be nanoseconds"):
        store.spans(min_duration="1s")


def test_trace_search_returns_summaries(make_store: Make) -> None:
    rows = shop_rows()
    store = make_store(rows)
    page = store.traces()
    assert [s.root_name for s in page.items] == ["ProcessPayment", "GET /orders", "GET /orders"]
    good = page.items[2].to_dict()
    assert good == {
        "trace_hex": rows[0].trace_hex,
        "trace_id": rows[0].trace_id,
        "root_name": "GET /orders",
        "root_service": "shop",
        "root_span_hex": rows[0].span_hex,
        "rooted": True,
        "actor_type": "user",
        "actor_id": "42",
        "actor": {"type": "user", "id": "42"},
        "start_ns": T0,
        "end_ns": T0 + 50 * MS,
        "span_count": 4,
        "error_count": 0,
        "duration_ns": 50 * MS,
        "error": False,
    }
    assert store.summary(rows[4].trace_id).error  # type: ignore[union-attr]
    assert store.summary("0" * 31 + "1") is None


def test_trace_search_filters_sorts_and_pages(make_store: Make) -> None:
    store = make_store(shop_rows())

    def roots(**filters: object) -> list[tuple[str | None, int]]:
        return [
            (s.root_name, s.span_count)
            for s in store.traces(order="start", **filters).items  # type: ignore[arg-type]
        ]

    assert roots(service="payments") == [("ProcessPayment", 3)]
    assert roots(name="db.query") == [("GET /orders", 4), ("GET /orders", 2)]
    assert roots(name="db.query", service="payments") == []
    assert roots(actor="user:7") == [("GET /orders", 2)]
    assert roots(status="error") == [("GET /orders", 2)]
    assert roots(status="ok") == [("GET /orders", 4), ("ProcessPayment", 3)]
    assert roots(min_duration=40 * MS) == [("GET /orders", 4), ("GET /orders", 2)]
    assert roots(max_duration=datetime.timedelta(milliseconds=10)) == [("ProcessPayment", 3)]
    assert roots(since=T0 + 500 * MS, until=T0 + 1500 * MS) == [("GET /orders", 2)]
    assert roots(attributes={"db.system.name": "postgresql"}) == [("GET /orders", 4)]
    assert [s.root_name for s in store.traces(order="-duration").items] == [
        "GET /orders",
        "GET /orders",
        "ProcessPayment",
    ]
    assert [s.span_count for s in store.traces(order="-spans").items] == [4, 3, 2]
    first = store.traces(limit=2)
    assert first.has_more
    assert [s.span_count for s in store.traces(limit=2, offset=2).items] == [4]


def test_a_trace_summary_takes_its_root_once_it_arrives(make_store: Make) -> None:
    root = row(9, 1, name="checkout", start_ms=0, duration_ms=100)
    child = same_trace(root, span=2, parent=1, name="child", start_ms=5, duration_ms=10)
    writer_rows = [child]  # the child's batch arrives first
    store = make_store(writer_rows)
    before = store.summary(root.trace_id)
    assert before is not None
    assert (before.root_name, before.rooted, before.span_count) == ("child", False, 1)
    writer = StoreWriter(store.location)
    try:
        writer.submit([root])
        assert writer.flush()
    finally:
        writer.close()
    after = store.summary(root.trace_id)
    assert after is not None
    assert (after.root_name, after.rooted, after.span_count) == ("checkout", True, 2)
    assert (after.start_ns, after.duration_ns) == (T0, 100 * MS)


def test_per_operation_aggregates(make_store: Make) -> None:
    rows = [
        row(100 + i, 1000 + i, name="op.a", start_ms=i * 10, duration_ms=i + 1,
            status="error" if i % 10 == 0 else "unset")
        for i in range(100)
    ] + [
        row(300 + i, 3000 + i, name="op.b", service="worker", start_ms=i * 10, duration_ms=7)
        for i in range(20)
    ]  # fmt: skip
    store = make_store(rows)
    stats = store.operations(since=T0, until=T0 + 10_000 * MS)
    assert [(s.name, s.service, s.count, s.errors) for s in stats] == [
        ("op.a", "shop", 100, 10),
        ("op.b", "worker", 20, 0),
    ]
    a = stats[0]
    # percentile_disc over 1..100 ms: the smallest value with >= p of the spans at or below
    assert (a.p50_ns, a.p95_ns, a.p99_ns, a.max_ns) == (50 * MS, 95 * MS, 99 * MS, 100 * MS)
    assert a.error_rate == pytest.approx(0.1)
    assert a.rate_per_s == pytest.approx(10.0)
    assert a.to_dict()["error_rate"] == pytest.approx(0.1)
    window = store.operations(since=T0 + 500 * MS, until=T0 + 1000 * MS, service="shop")
    assert [(s.name, s.count, s.p50_ns) for s in window] == [("op.a", 50, 75 * MS)]
    assert store.operations(name="op.b")[0].p99_ns == 7 * MS
    assert store.operations(since=T0 + 10**15) == []


def test_live_changes_after_a_cursor(make_store: Make, location: str) -> None:
    store = make_store(shop_rows()[:4])
    cursor = store.cursor()
    assert store.changes(cursor).spans == []
    writer = StoreWriter(location)
    try:
        for batch in (shop_rows()[4:6], shop_rows()[6:]):
            writer.submit(batch)
        assert writer.flush()
    finally:
        writer.close()
    seen: list[SpanRow] = []
    while True:
        changes = store.changes(cursor, limit=2)
        seen += changes.spans
        assert changes.cursor >= cursor
        cursor = changes.cursor
        if not changes.has_more:
            break
    assert sorted(names(seen)) == sorted(names(shop_rows()[4:]))
    assert store.changes(cursor).spans == []
    assert store.cursor() >= cursor
    assert len(changes.trace_ids) <= 2


def test_services_and_counts(make_store: Make) -> None:
    store = make_store(shop_rows())
    assert store.services() == ["payments", "shop"]
    assert store.counts() == {"spans": 9, "traces": 3}
