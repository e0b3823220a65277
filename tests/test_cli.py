"""The ``spanline`` command line, on real SQLite stores under tmp_path (and one
PostgreSQL store), through click's runner in-process and real subprocesses."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import psycopg
import pytest
from click.testing import CliRunner, Result

import spanline.store
from spanline.cli.app import cli
from spanline.cli.main import main
from spanline.testing import Capture
from tests.receiver import free_port

ROOT = Path(__file__).resolve().parent.parent
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
TRACEBACK = "Traceback"


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    """The command in-process; an exception escaping click fails the test."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env)


def ok(*args: str) -> Result:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result


def as_json(*args: str) -> Any:
    return json.loads(ok(*args, "--json").stdout)


@pytest.fixture
def shop(tmp_path: Path, spanline_capture: Capture) -> str:
    """A store holding the demo workload (5 orders)."""
    path = str(tmp_path / "shop.db")
    ok("demo", "--quiet", "--store", path)
    return path


def trace_of(store: str, *filters: str) -> str:
    found = as_json("query", "--traces", "--store", store, *filters)["items"]
    assert found, filters
    return str(found[0]["trace_id"])


# -- the command set ------------------------------------------------------------------


def commands() -> dict[str, click.Command]:
    return dict(cli.commands)


def test_every_command_and_option_has_help() -> None:
    assert set(commands()) == {
        "demo", "serve", "tree", "query", "stats", "export", "import", "retention",
    }  # fmt: skip
    for name, command in commands().items():
        assert command.help, name
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{name} {param.name}"
            else:  # arguments are described in the command's help text
                assert str(param.name).upper() in (command.help or ""), f"{name} {param.name}"
        shown = ok(name, "--help").output
        assert f"Usage: cli {name}" in shown or f"Usage: spanline {name}" in shown


def test_every_command_and_option_is_documented() -> None:
    text = (ROOT / "docs/cli.md").read_text()
    sections = re.split(r"^## ", text, flags=re.M)
    for name, command in commands().items():
        section = next((s for s in sections if s.startswith(f"`spanline {name}`")), None)
        assert section is not None, f"spanline {name} missing from docs/cli.md"
        assert f"$ spanline {name}" in section, f"spanline {name} has no example"
        for param in command.params:
            if isinstance(param, click.Option):
                assert f"`{param.opts[0]}" in section, f"{name} {param.opts[0]} undocumented"


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    shown = capsys.readouterr()
    assert "demo" in shown.out + shown.err
    assert main(["--help"]) == 0
    assert main(["nonsense"]) == 2
    assert "No such command 'nonsense'" in capsys.readouterr().err


def test_core_import_needs_no_click_and_main_says_what_to_install() -> None:
    probe = (
        "import sys\n"
        "import spanline, spanline.store\n"
        "assert 'click' not in sys.modules and 'rich' not in sys.modules\n"
        "sys.modules['click'] = None  # as if click were not installed\n"
        "from spanline.cli.main import main\n"
        "sys.exit(main(['demo']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'spanline[cli]'" in done.stderr
    assert TRACEBACK not in done.stderr


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).with_name("spanline")
    done = subprocess.run(
        [str(exe), "--help"], capture_output=True, text=True, check=True, timeout=60
    )
    assert "demo" in done.stdout
    assert "retention" in done.stdout


# -- demo -------------------------------------------------------------------------------


def test_demo_prints_trees_records_the_store_and_tree_reads_it(tmp_path: Path) -> None:
    store = str(tmp_path / "demo.db")
    cmd = [sys.executable, "-m", "spanline", "demo", "--orders", "4", "--out", str(tmp_path)]
    done = subprocess.run(
        [*cmd, "--store", store], capture_output=True, text=True, check=True, timeout=120
    )
    out = done.stdout
    assert "orders.Place" in out
    assert "├── orders.Validate" in out
    assert "[user:41 via support-bot]" in out
    assert "ERROR PaymentDeclinedError: card declined" in out
    assert "billing.NightlySettle" in out
    assert '"chain":"user:40 > orders.Place(op_' in out
    assert f"JSON written to {tmp_path}" in out
    assert f"recorded in {store} (services: billing, mailer, payments, shop-web)" in out
    tree_json = json.loads(sorted(tmp_path.glob("*.json"))[0].read_text())
    assert tree_json["trace_id"].startswith("tr_")
    # a new process sees every span: the demo flushed before it exited
    with spanline.store.open(store, create=False) as handle:
        counts = handle.counts()
        assert counts["traces"] == 5  # 4 orders (their mailer jobs join them) + billing
        assert set(handle.services()) == {"billing", "mailer", "payments", "shop-web"}
        declined = handle.traces(status="error").items[0]
    shown = subprocess.run(
        [sys.executable, "-m", "spanline", "tree", declined.trace_id, "--store", store],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert f"trace {declined.trace_id}" in shown
    assert "payments.Charge (operation)" in shown
    assert "ERROR PaymentDeclinedError: card declined" in shown
    assert "[user:42]" in shown


def test_demo_without_store_only_prints(
    tmp_path: Path, spanline_capture: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = ok("demo", "--no-store", "--orders", "1")
    assert "orders.Place" in result.stdout
    assert "recorded" not in result.stdout
    assert not list(tmp_path.iterdir())


def test_demo_store_comes_from_the_environment(tmp_path: Path, spanline_capture: Capture) -> None:
    path = tmp_path / "env.db"
    result = run("demo", "-q", "--orders", "1", env={"SPANLINE_STORE": str(path)})
    assert result.exit_code == 0, result.output
    assert path.exists()
    assert f"recorded in {path}" in result.stdout


def test_demo_bad_values(tmp_path: Path) -> None:
    result = run("demo", "--orders", "0")
    assert result.exit_code == 2
    assert "--orders" in result.output
    result = run("demo", "--store", "redis://localhost/0")
    assert result.exit_code == 1
    assert "'redis' stores are not supported" in result.output


# -- tree, query, stats -------------------------------------------------------------------


def test_tree_shows_services_status_actor_and_accepts_every_id_form(shop: str) -> None:
    trace = trace_of(shop, "--actor", "user:43")
    out = ok("tree", trace, "--store", shop).stdout
    lines = out.splitlines()
    assert lines[0].startswith(f"trace {trace}")
    assert "7 spans" in lines[0]
    assert "orders.Place (operation)" in lines[1]
    assert "[user:43]" in lines[1]
    assert "shop-web" in lines[1]
    assert re.search(r"├── payments\.Charge \(operation\)  \d+\.\d\d ms  payments", out)
    assert re.search(r"└── mail\.SendConfirmation \(operation\)  \d+\.\d\d ms  mailer", out)
    hex_id = lines[0].split()[2]
    assert ok("tree", hex_id, "--store", shop).stdout == out
    nested = as_json("tree", trace, "--store", shop)
    assert [root["name"] for root in nested] == ["orders.Place"]
    assert {child["name"] for child in nested[0]["children"]} >= {
        "payments.Charge",
        "mail.SendConfirmation",
    }


def test_query_filters_and_pages(shop: str) -> None:
    errors = as_json("query", "--store", shop, "--status", "error", "--service", "payments")
    assert [item["name"] for item in errors["items"]] == ["payments.Charge"]
    assert errors["items"][0]["status_message"].startswith("PaymentDeclinedError")
    slow = as_json("query", "--store", shop, "--name", "payments.Charge", "--min-ms", "30")
    assert len(slow["items"]) == 1  # the slow payment (50 ms); the others take ~3 ms
    assert (
        as_json("query", "--store", shop, "--actor", "user:43", "--max-ms", "0.0001")["items"] == []
    )
    by_actor = as_json("query", "--store", shop, "--actor", "user:44", "--limit", "100")
    assert {item["actor_id"] for item in by_actor["items"]} == {"44"}
    sale = as_json("query", "--store", shop, "--type", "handler")["items"]
    assert {item["name"] for item in sale} == {"analytics.RecordSale"}
    first = as_json("query", "--store", shop, "--limit", "10", "--order", "start")
    second = as_json("query", "--store", shop, "--limit", "10", "--order", "start", "--page", "2")
    assert first["has_more"]
    assert len(first["items"]) == 10
    firsts = {item["span_id"] for item in first["items"]}
    assert not firsts & {item["span_id"] for item in second["items"]}
    recent = as_json("query", "--store", shop, "--since", "1h", "--limit", "1")
    assert recent["items"]
    assert recent["has_more"]
    assert as_json("query", "--store", shop, "--until", "1h")["items"] == []
    table = ok("query", "--store", shop, "--status", "error").stdout
    assert "payments.Charge" in table
    assert "error" in table
    assert "nothing matches" in ok("query", "--store", shop, "--name", "nope").stdout


def test_query_attribute_filter(tmp_path: Path) -> None:
    store = str(tmp_path / "attrs.db")
    rows = [
        spanline.store.SpanRow(
            f"{7:032x}", f"{n + 1:016x}", None, "tr_external-7", f"sp_{n}", None,
            f"GET /orders/{n}", "span", "server", "error" if n else "ok", None,
            1_700_000_000_000_000_000 + n, 1_700_000_000_001_000_000 + n, 1_000_000,
            "api", None, None, None, None,
            json.dumps({"http.response.status_code": 500 if n else 200}), None, None, None,
        )
        for n in range(3)
    ]  # fmt: skip
    writer = spanline.store.StoreWriter(store)
    writer.submit(rows)
    assert writer.flush(30)
    writer.close()
    found = as_json("query", "--store", store, "--attr", "http.response.status_code=500")
    assert sorted(item["name"] for item in found["items"]) == ["GET /orders/1", "GET /orders/2"]
    traces = as_json(
        "query", "--traces", "--store", store, "--attr", "http.response.status_code=200"
    )
    assert [item["span_count"] for item in traces["items"]] == [3]


def test_query_traces(shop: str) -> None:
    found = as_json("query", "--traces", "--store", shop, "--status", "error")["items"]
    assert len(found) == 1
    assert (found[0]["root_name"], found[0]["actor_id"], found[0]["error_count"]) == (
        "orders.Place",
        "42",
        2,
    )
    slowest = as_json("query", "--traces", "--store", shop, "--order", "-duration", "--limit", "1")
    assert slowest["items"][0]["actor_id"] == "43"  # the slow payment
    billing = as_json("query", "--traces", "--store", shop, "--service", "billing")["items"]
    assert [item["root_name"] for item in billing] == ["billing.NightlySettle"]
    table = ok("query", "--traces", "--store", shop).stdout
    assert "billing.NightlySettle" in table
    assert "system:nightly_settlement" in table
    result = run("query", "--traces", "--kind", "server", "--store", shop)
    assert result.exit_code == 2
    assert "--kind applies to spans" in result.output


def test_stats(shop: str) -> None:
    stats = {(op["name"], op["service"]): op for op in as_json("stats", "--store", shop)}
    assert stats[("payments.Charge", "payments")]["count"] == 5
    assert stats[("payments.Charge", "payments")]["errors"] == 1
    assert stats[("mail.SendConfirmation", "mailer")]["count"] == 4
    assert stats[("billing.NightlySettle", "billing")]["count"] == 1
    only = as_json("stats", "--store", shop, "--service", "payments")
    assert [op["name"] for op in only] == ["payments.Charge"]
    table = ok("stats", "--store", shop).stdout
    assert "p95 ms" in table
    assert "orders.Place" in table
    assert "spans in 6 traces in the store" in table
    assert "no spans in that window" in ok("stats", "--store", shop, "--until", "1h").stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["tree", "tr_nope"], 1, "no trace 'tr_nope' in the store"),
        (["tree", " "], 1, "trace id must be a non-empty string"),
        (["export", "tr_nope"], 1, "no trace 'tr_nope'"),
        (["query", "--min-ms", "abc"], 2, "'abc' is not a valid float"),
        (["query", "--min-ms", "-1"], 2, "must be >= 0"),
        (["query", "--since", "yesterday"], 2, "'yesterday' is not a time"),
        (["query", "--attr", "novalue"], 2, "'novalue' is not KEY=VALUE"),
        (["query", "--order", "sideways"], 1, "order='sideways' is invalid"),
        (["query", "--status", "bad"], 2, "'bad' is not one of"),
        (["stats", "--since", "0m"], 2, "must be longer than zero"),
        (["retention"], 2, "give --max-age, --max-spans or both"),
        (["retention", "--max-age", "soon"], 2, "'soon' is not a span of time"),
    ],
)
def test_bad_input_is_one_clear_error(shop: str, args: list[str], code: int, message: str) -> None:
    result = run(*args, "--store", shop)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert TRACEBACK not in result.output


def test_unreadable_stores(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    retention = ["retention", "--max-spans", "1"]
    for command in (["tree", "tr_x"], ["query"], ["stats"], ["export", "tr_x"], retention):
        result = run(*command, "--store", str(missing))
        assert result.exit_code == 1, command
        assert f"there is no store at {missing}" in result.output
    assert not missing.exists()  # reading never creates a store
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    result = run("query", "--store", str(garbage))
    assert result.exit_code == 1
    assert result.output.startswith("Error: ")
    assert "garbage.db" in result.output or "not a database" in result.output
    assert TRACEBACK not in result.output
    result = run("stats", "--store", "postgresql://db:99999/x")
    assert result.exit_code == 1
    assert "PostgreSQL URL" in result.output


# -- export and import ----------------------------------------------------------------------


def _comparable(row: spanline.store.SpanRow) -> dict[str, Any]:
    data = row.to_dict()
    del data["frames"]  # OTLP does not carry the operation frames
    actor = data.pop("actor")
    data["actor"] = {k: str(v) for k, v in actor.items()} if actor else None
    data["actor_id"] = None if data["actor_id"] is None else str(data["actor_id"])
    return data


def test_round_trip_demo_query_tree_export_import(shop: str, tmp_path: Path) -> None:
    trace = trace_of(shop, "--actor", "user:43")
    assert "mail.SendConfirmation" in ok("tree", trace, "--store", shop).stdout
    exported = tmp_path / "trace.json"
    result = ok("export", trace, "--store", shop, "--format", "otlp-json", "-o", str(exported))
    assert f"7 spans written to {exported}" in result.output
    document = json.loads(exported.read_text())
    services = {
        a["value"]["stringValue"]
        for rs in document["resourceSpans"]
        for a in rs["resource"]["attributes"]
        if a["key"] == "service.name"
    }
    assert services == {"shop-web", "payments", "mailer"}
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert re.fullmatch(r"[0-9a-f]{32}", span["traceId"])
    assert re.fullmatch(r"[0-9a-f]{16}", span["spanId"])

    copy = str(tmp_path / "copy.db")
    result = ok("import", str(exported), "--store", copy)
    assert f"imported 7 spans of 1 trace (OTLP JSON) from {exported}" in result.stdout
    with spanline.store.open(shop) as one, spanline.store.open(copy) as two:
        before, after = one.trace(trace), two.trace(trace)
    assert [_comparable(r) for r in after] == [_comparable(r) for r in before]
    assert ok("tree", trace, "--store", copy).stdout == ok("tree", trace, "--store", shop).stdout

    # spanline JSON keeps every column, frames included
    rows_file = tmp_path / "rows.json"
    rows_file.write_text(ok("export", trace, "--store", shop).stdout)
    third = str(tmp_path / "third.db")
    assert "(spanline JSON)" in ok("import", str(rows_file), "--store", third).stdout
    with spanline.store.open(third) as three:
        assert three.trace(trace) == before


def test_import_otlp_from_another_tracer_and_stdin(tmp_path: Path) -> None:
    document = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "go-api"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "GET /users",
                                "kind": 2,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000000250000000",
                                "attributes": [
                                    {"key": "http.route", "value": {"stringValue": "/users"}}
                                ],
                                "status": {"code": 2, "message": "boom"},
                            },
                            {"traceId": "00", "spanId": "01", "name": "broken"},
                        ]
                    }
                ],
            }
        ]
    }
    store = str(tmp_path / "foreign.db")
    result = CliRunner().invoke(
        cli, ["import", "-", "--store", store], input=json.dumps(document), catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "imported 1 spans of 1 trace (OTLP JSON) from stdin" in result.stdout
    assert "1 spans rejected: span 'broken': trace_id must be 16 bytes" in result.stdout
    found = as_json("query", "--store", store, "--attr", "http.route=/users")["items"]
    assert [(s["name"], s["service"], s["kind"], s["status"]) for s in found] == [
        ("GET /users", "go-api", "server", "error")
    ]
    out = ok("tree", "5b8efff798038103d269b633813fc60c", "--store", store).stdout
    assert "GET /users  250.00 ms  go-api  ERROR boom" in out


def otlp_with(span: str) -> bytes:
    return f'{{"resourceSpans": [{{"scopeSpans": [{{"spans": [{span}]}}]}}]}}'.encode()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"x": 1}', "neither spanline JSON"),
        (b'{"spanline": "rows", "version": 9, "spans": []}', "spanline JSON version 9"),
        (b'{"spanline": "rows", "version": 1, "spans": [{"name": "x"}]}', "span 0 lacks trace_hex"),
        (otlp_with('{"traceId": "zz"}'), "span 0 traceId 'zz' is neither hex nor base64"),
        (otlp_with('{"name": 5, "kind": "odd"}'), "not an OTLP ExportTraceServiceRequest"),
        (b'{"resourceSpans": []}', "no valid spans"),
        (b"\x00\xff\x13binary junk", "cannot import"),
    ],
)  # fmt: skip
def test_import_bad_files(tmp_path: Path, content: bytes, message: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    store = tmp_path / "target.db"
    result = run("import", str(bad), "--store", str(store))
    assert result.exit_code == 1, result.output
    assert f"cannot import {bad}" in result.output
    assert message in result.output
    assert TRACEBACK not in result.output
    missing = run("import", str(tmp_path / "nope.json"), "--store", str(store))
    assert missing.exit_code == 1
    assert "cannot read" in missing.output
    assert "nope.json" in missing.output


# -- retention ------------------------------------------------------------------------------


def test_retention_by_count_then_by_age(shop: str) -> None:
    with spanline.store.open(shop) as handle:
        before = handle.counts()
    result = as_json("retention", "--store", shop, "--max-spans", "10", "--chunk", "3")
    assert result["deleted_by_count"] > 0
    assert result["deleted_by_age"] == 0
    assert result["spans_left"] <= 10
    assert result["spans_left"] == before["spans"] - result["deleted"]
    with spanline.store.open(shop) as handle:
        left = handle.counts()
        kept = handle.traces(order="start").items
    assert left["spans"] == result["spans_left"]
    assert all(summary.span_count == len(handle_rows(shop, summary.trace_id)) for summary in kept)
    text = ok("retention", "--store", shop, "--max-age", "1s").stdout
    assert text.startswith(f"deleted 0 spans from {shop} (0 older than 1s)")


def handle_rows(store: str, trace_id: str) -> list[spanline.store.SpanRow]:
    with spanline.store.open(store) as handle:
        return handle.trace(trace_id)


def test_retention_by_age_deletes_old_traces(tmp_path: Path) -> None:
    store = str(tmp_path / "old.db")
    old = [
        spanline.store.SpanRow(
            f"{trace:032x}", f"{trace:016x}", None, f"tr_old{trace}", f"sp_{trace}", None,
            "job", "span", "internal", "unset", None, 1_600_000_000_000_000_000 + trace,
            1_600_000_000_000_000_001 + trace, 1, "batch", None, None, None, None, None,
            None, None, None,
        )
        for trace in (1, 2, 3)
    ]  # fmt: skip
    now = time.time_ns()
    fresh = old[0]._replace(trace_hex=f"{9:032x}", span_hex=f"{9:016x}", start_ns=now, end_ns=now)
    writer = spanline.store.StoreWriter(store)
    writer.submit([*old, fresh])
    assert writer.flush(30)
    writer.close()
    result = ok("retention", "--store", store, "--max-age", "30d")
    assert f"deleted 3 spans from {store} (3 older than 30d); 1 spans left" in result.stdout


# -- serve ----------------------------------------------------------------------------------


def test_serve_passes_its_options_to_the_viewer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # a stand-in for the server loop (which runs until Ctrl-C): only the hand-over
    # is checked here; test_serve_answers_http runs the real server
    import spanline.viewer.serve

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(spanline.viewer.serve, "run", lambda **kw: calls.append(kw))
    store = str(tmp_path / "v.db")
    ok("serve", "--store", store, "--port", "5000", "--token", "t0k", "--max-body", "1024")
    ok("serve")
    assert calls == [
        {"store": store, "host": "127.0.0.1", "port": 5000, "token": "t0k", "max_body": 1024},
        {"store": None, "host": "127.0.0.1", "port": 4318, "token": None},
    ]
    result = run("serve", "--port", "70000")
    assert result.exit_code == 2
    result = run("serve", "--store", "ftp://x")
    assert result.exit_code == 1
    assert "'ftp' stores are not supported" in result.output


@pytest.fixture
def served(shop: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "spanline", "serve", "--store", shop, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def test_serve_answers_http(served: tuple[str, subprocess.Popen[str]]) -> None:
    url, process = served
    deadline = time.monotonic() + 30
    status = None
    while status is None:
        assert process.poll() is None, process.communicate()
        try:
            with urllib.request.urlopen(f"{url}/", timeout=5) as answer:
                status = answer.status
        except OSError:
            assert time.monotonic() < deadline, "the viewer did not start"
            time.sleep(0.1)
    assert status == 200
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0


# -- PostgreSQL -----------------------------------------------------------------------------


@pytest.fixture
def pg_store() -> Iterator[str]:
    schema = f"spanline_cli_{uuid.uuid4().hex[:12]}"
    yield f"{PG_URL}?schema={schema}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_postgresql_store(pg_store: str, spanline_capture: Capture, tmp_path: Path) -> None:
    result = ok("demo", "-q", "--orders", "3", "--store", pg_store)
    assert "recorded in postgresql://postgres@127.0.0.1:5432/test (schema spanline_cli_" in (
        result.stdout
    )
    trace = trace_of(pg_store, "--status", "error")
    assert "payments.Charge (operation)" in ok("tree", trace, "--store", pg_store).stdout
    stats = {op["name"]: op for op in as_json("stats", "--store", pg_store)}
    assert stats["orders.Place"]["count"] == 3
    exported = tmp_path / "pg.json"
    ok("export", trace, "--store", pg_store, "--format", "otlp-json", "-o", str(exported))
    local = str(tmp_path / "from_pg.db")
    ok("import", str(exported), "--store", local)
    assert (
        ok("tree", trace, "--store", local).stdout == ok("tree", trace, "--store", pg_store).stdout
    )
    deleted = as_json("retention", "--store", pg_store, "--max-spans", "1")
    assert deleted["spans_left"] <= 1
