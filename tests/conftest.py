"""Shared test setup: spanline's own pytest plugin is active through its entry point."""

from __future__ import annotations

pytest_plugins = ["pytester"]
