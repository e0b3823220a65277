from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from spanline.cli.main import build_parser, main


def test_demo_runs_and_prints_trees(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "spanline", "demo", "--orders", "4", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    out = done.stdout
    assert "orders.Place" in out
    assert "├── orders.Validate" in out
    assert "[user:41 via support-bot]" in out
    assert "ERROR PaymentDeclinedError: card declined" in out
    assert "billing.NightlySettle" in out
    assert '"chain":"user:40 > orders.Place(op_' in out
    assert out.rstrip().endswith(f"JSON written to {tmp_path}")
    files = sorted(tmp_path.glob("*.json"))
    assert files
    tree = json.loads(files[0].read_text())
    assert tree["trace_id"].startswith("tr_")


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).with_name("spanline")
    done = subprocess.run(
        [str(exe), "--help"], capture_output=True, text=True, check=True, timeout=60
    )
    assert "demo" in done.stdout


def test_every_command_has_help() -> None:
    parser = build_parser()
    subparsers = [a for a in parser._actions if a.dest == "command"]
    assert subparsers
    for name, sub in subparsers[0].choices.items():  # type: ignore[union-attr]
        assert sub.description, name
        for action in sub._actions:
            if action.dest != "help":
                assert action.help, f"{name} {action.dest}"


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_bad_orders_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--orders", "0"]) == 2
    assert "--orders must be at least 1" in capsys.readouterr().err
