"""The optional compiled helpers (``spanline._accel``) are built and can be switched off."""

from __future__ import annotations

import os
import subprocess
import sys

from spanline import _native
from spanline.export import otlp_wire
from spanline.store import convert


def test_the_compiled_helpers_are_built_and_used_here() -> None:
    # hatch_build.py compiles them when the package is installed; a missing compiler
    # would silently cost the speed, so CI checks that they really are in use.
    module = _native.load()
    assert module is not None
    assert otlp_wire.ACCELERATED
    assert otlp_wire._accel is module
    assert convert._accel is module


def test_spanline_no_accel_selects_the_python_code() -> None:
    code = (
        "import spanline.export.otlp_wire as w, spanline.store.convert as c;"
        "print(w.ACCELERATED, c._accel)"
    )
    for value, expected in (("1", "False None"), ("on", "False None"), ("0", "True <module")):
        env = {**os.environ, "SPANLINE_NO_ACCEL": value}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.startswith(expected), (value, out.stdout)
