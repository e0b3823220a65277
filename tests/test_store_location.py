"""Where the store lives: argument, then SPANLINE_STORE, then ./spanline.db."""

from __future__ import annotations

from pathlib import Path

import pytest

from spanline.store import DEFAULT_STORE, StoreConfigError, StoreLocation, resolve_store


def test_argument_then_environment_then_default(tmp_path: Path) -> None:
    env = {"SPANLINE_STORE": "/var/lib/app/traces.db"}
    assert resolve_store(tmp_path / "a.db", environ=env) == StoreLocation(
        "sqlite", str(tmp_path / "a.db")
    )
    assert resolve_store(environ=env) == StoreLocation("sqlite", "/var/lib/app/traces.db")
    assert resolve_store(environ={"SPANLINE_STORE": "  "}).target == DEFAULT_STORE
    assert resolve_store(environ={}) == StoreLocation("sqlite", "./spanline.db")


def test_sqlite_urls_and_postgresql_urls() -> None:
    assert resolve_store("sqlite:///var/lib/x.db").target == "/var/lib/x.db"
    assert resolve_store("sqlite:x.db").target == "x.db"
    located = resolve_store("postgresql://app:pw@db:5432/traces?schema=tracing&sslmode=disable")
    assert (located.kind, located.schema) == ("postgresql", "tracing")
    assert located.target == "postgresql://app:pw@db:5432/traces?sslmode=disable"
    assert located.display == "postgresql://app:***@db:5432/traces (schema tracing)"
    assert resolve_store("postgres://db/traces").schema == "public"
    assert resolve_store("postgres://db/traces", schema="other").schema == "other"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("mysql://db/x", "'mysql' stores are not supported"),
        (":memory:", "in-memory SQLite database cannot be shared"),
        ("sqlite://host/x.db", "a SQLite URL has no host"),
        ("postgresql://db/x?schema=1bad", "not a valid schema name"),
        ("postgresql://db:99999/x", "PostgreSQL URL"),
    ],
)
def test_bad_locations_name_the_culprit(value: str, message: str) -> None:
    with pytest.raises(StoreConfigError, match=message):
        resolve_store(value)


def test_the_environment_variable_is_named_when_it_is_wrong() -> None:
    with pytest.raises(StoreConfigError, match="SPANLINE_STORE='redis://x'"):
        resolve_store(environ={"SPANLINE_STORE": "redis://x"})
    with pytest.raises(StoreConfigError, match="applies to PostgreSQL stores only"):
        resolve_store("x.db", schema="tracing")


def test_configure_store_and_the_store_exporter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import spanline
    import spanline.store
    from spanline.core.config import ConfigError
    from spanline.testing import reset_all

    try:
        # the environment variable, through configure() and the store exporter
        monkeypatch.setenv("SPANLINE_STORE", str(tmp_path / "from-env.db"))
        spanline.configure(exporter="store")
        assert resolve_store().target == str(tmp_path / "from-env.db")
        with spanline.span("env span"):
            pass
        # an argument beats the variable, and stays set for later calls
        spanline.configure(store=tmp_path / "from-arg.db")
        spanline.configure(exporter="store")
        assert spanline.settings.store == str(tmp_path / "from-arg.db")
        assert resolve_store().target == str(tmp_path / "from-arg.db")
        with spanline.span("argument span"):
            pass
        spanline.configure(exporter="none")  # flushes and closes the store exporter
        names = {
            path.name: [row.name for row in spanline.store.open(path).spans().items]
            for path in (tmp_path / "from-env.db", tmp_path / "from-arg.db")
        }
        assert names == {"from-env.db": ["env span"], "from-arg.db": ["argument span"]}
        # bad values are refused when configure() runs, naming where they came from
        with pytest.raises(ConfigError, match=r"configure\(store=...\).*'mysql' stores"):
            spanline.configure(store="mysql://db/x")
        monkeypatch.setenv("SPANLINE_STORE", ":memory:")
        spanline.configure(store=tmp_path / "from-arg.db")  # the argument still wins
        from spanline.core import config

        config._pinned.pop("store")
        with pytest.raises(ConfigError, match=r"SPANLINE_STORE.*in-memory"):
            spanline.configure()
    finally:
        monkeypatch.delenv("SPANLINE_STORE", raising=False)
        reset_all()


def test_import_with_spanline_store_set(tmp_path: Path) -> None:
    # the store setting is checked while the configuration loads: with the variable
    # set, import must work (a bad value warns and keeps the default)
    import os
    import subprocess
    import sys

    code = "import spanline, spanline.store; print(spanline.store.resolve_store().target)"
    for value, expected in ((str(tmp_path / "t.db"), str(tmp_path / "t.db")), ("mysql://x", "")):
        env = {**os.environ, "SPANLINE_STORE": value}
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if expected:
            assert done.returncode == 0, done.stderr
            assert done.stdout.strip() == expected
        else:  # the bad value is named when something resolves the store
            assert "SPANLINE_STORE='mysql://x'" in done.stderr
            assert "'mysql' stores are not supported" in done.stderr
