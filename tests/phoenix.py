"""A real third-party OTLP receiver for end-to-end tests: Arize Phoenix from PyPI.

Phoenix has a large dependency tree, so it lives in its own virtual environment,
``.venv-phoenix`` beside the project (``.ci/run`` creates it; this module creates it
too when missing, so the README's test command works on a fresh machine).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.receiver import free_port

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("SPANLINE_PHOENIX_VENV", ROOT / ".venv-phoenix"))
PHOENIX = "arize-phoenix==20.26.1"


def ensure_phoenix() -> Path:
    """The ``phoenix`` executable, installing it into its own venv if needed."""
    executable = VENV / "bin" / "phoenix"
    if executable.exists():
        return executable
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(str(VENV) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time
        if not executable.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
            subprocess.run(
                [str(VENV / "bin" / "pip"), "install", "-q", PHOENIX], check=True, timeout=1200
            )
    return executable


@contextlib.contextmanager
def phoenix_server(workdir: Path) -> Iterator[str]:
    """Run ``phoenix serve`` on free 127.0.0.1 ports; yields its base URL."""
    executable = ensure_phoenix()
    port = free_port()
    env = {
        **os.environ,
        "PHOENIX_WORKING_DIR": str(workdir),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(free_port()),
    }
    log = open(workdir / "phoenix.log", "wb")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen([str(executable), "serve"], env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(base + "/v1/projects", timeout=2).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "phoenix did not start: " + (workdir / "phoenix.log").read_text()[-2000:]
                    ) from None
                time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def spans_in(base: str, project: str = "default") -> list[dict[str, Any]]:
    """The spans Phoenix stored for ``project`` (its REST API)."""
    url = f"{base}/v1/projects/{project}/spans?limit=1000"
    data: list[dict[str, Any]] = json.loads(urllib.request.urlopen(url, timeout=10).read())["data"]
    return data
