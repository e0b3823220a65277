"""Build hook: compile spanline's optional C helpers (``spanline._accel``).

spanline has no required runtime dependency and works without this extension; it
accelerates span start/end, OTLP encoding, the store's row conversion and the ASGI
middleware's scope reading, each of which has a
pure-Python equivalent (see docs/benchmarks.md).  When no C compiler is
available the build warns and produces a pure-Python wheel instead of failing.
Set ``SPANLINE_BUILD_PURE=1`` to skip the compiler on purpose.

setuptools' ``build_ext`` does the compiling: it knows every platform's compiler
flags, which a hand-written compiler call would not.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

EXTENSION = "spanline._accel"
SOURCES = ("module.c", "otlp.c", "rows.c", "asgi.c", "span.c", "queue.c", "asgi_span.c", "random.c")
SOURCE_DIR = "src/spanline/_csrc"


def _compile(root: Path, work: Path) -> Path:
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    extension = Extension(
        EXTENSION,
        [str(root / SOURCE_DIR / name) for name in SOURCES],
        include_dirs=[str(root / SOURCE_DIR)],
        extra_compile_args=["-O2"],
    )
    command = build_ext(Distribution({"name": "spanline", "ext_modules": [extension]}))
    command.build_lib = str(work / "lib")
    command.build_temp = str(work / "temp")
    command.ensure_finalized()
    command.run()
    return Path(command.get_ext_fullpath(EXTENSION))


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Compiles the accelerator into the wheel (or next to the sources for ``pip
    install -e``)."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or os.environ.get("SPANLINE_BUILD_PURE"):
            return
        root = Path(self.root)
        work = Path(tempfile.mkdtemp(prefix="spanline-build-"))
        try:
            built = _compile(root, work)
        except Exception as error:  # noqa: BLE001 - any failure means "pure Python"
            self.app.display_warning(
                f"spanline: the C helpers were not built ({error}); "
                "their pure-Python equivalents will be used"
            )
            shutil.rmtree(work, ignore_errors=True)
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        target = "spanline/" + built.name
        if version == "editable":
            # editable installs import from src/: the module must sit beside its package
            shutil.copy2(built, root / "src" / target)
        else:
            build_data["force_include"][str(built)] = target
