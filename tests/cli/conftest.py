"""Results folders the CLI tests share (each scanned once per session, never changed by a test), and a real
``python -m auditor`` process for what only a process shows."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli, write_class_folder


def audit_process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m auditor ARGS`` in a fresh process (for what only a real process shows: start-up, env read
    at import, pipes)."""
    return subprocess.run(
        [sys.executable, "-m", "auditor", *args], capture_output=True, text=True, timeout=300,
        env={**os.environ, **(env or {})},
    )


def with_reader_gone(*args: str) -> subprocess.CompletedProcess[str]:
    """Run with stdout a pipe whose reader has already left (`| head -0`): every write gets EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "auditor", *args], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=300)
    finally:
        os.close(write_end)


def _scan(data: Path, out: Path, checks: str) -> Path:
    # --no-cache: a session fixture runs before the per-test isolated cache is set up.
    done = run_cli("scan", str(data), "--out", str(out), "--encoder", "builtin", "--workers", "0",
                   "--checks", checks, "--quiet", "--no-cache")
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="session")
def passing_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Results whose gate passes: clean images, only the unreadable check."""
    root = tmp_path_factory.mktemp("passing")
    write_class_folder(root / "data", per_class=3)
    return _scan(root / "data", root / "out", "unreadable")


@pytest.fixture(scope="session")
def results_with_findings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Results whose gate fails: circle/circle_copy.png is an exact copy of circle/circle_000.png, and
    square/broken.png is unreadable."""
    root = tmp_path_factory.mktemp("findings")
    data = root / "data"
    write_class_folder(data, per_class=3)
    shutil.copy(data / "circle" / "circle_000.png", data / "circle" / "circle_copy.png")
    (data / "square" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return _scan(data, root / "out", "unreadable,duplicates")
