"""Documentation examples run: every ```python block of a doc page, in order, in one
namespace per page.  Blocks marked ```text are illustrations and are skipped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from spanline.core.config import (
    BATCH_ENVIRONMENT_VARIABLES,
    ENVIRONMENT_VARIABLES,
    OTLP_ENVIRONMENT_VARIABLES,
)
from spanline.testing import Capture

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


@pytest.mark.parametrize("page", ["README.md", "docs/concepts.md", "docs/messaging.md"])
def test_python_examples_run(page: str, spanline_capture: Capture) -> None:
    text = (ROOT / page).read_text()
    blocks = BLOCK.findall(text)
    assert blocks, f"{page} has no python examples"
    namespace: dict[str, object] = {"__name__": f"docs_{Path(page).stem}"}
    for number, block in enumerate(blocks, 1):
        try:
            exec(compile(block, f"{page} block {number}", "exec"), namespace)  # noqa: S102
        except Exception as error:
            raise AssertionError(f"{page} example {number} failed: {error!r}\n{block}") from error


def test_every_environment_variable_is_documented() -> None:
    table = (ROOT / "docs/configuration.md").read_text()
    for name in (*ENVIRONMENT_VARIABLES, *OTLP_ENVIRONMENT_VARIABLES, *BATCH_ENVIRONMENT_VARIABLES):
        assert f"`{name}`" in table, f"{name} missing from docs/configuration.md"


def test_changelog_and_benchmarks_exist() -> None:
    assert "## " in (ROOT / "CHANGELOG.md").read_text()
    bench = (ROOT / "docs/benchmarks.md").read_text()
    assert "python bench/bench_core.py" in bench
