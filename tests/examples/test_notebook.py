"""examples/notebook.py runs as documented, on a small drawn dataset, and leaves what it promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import draw_shape, write_class_folder

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "notebook.py"


def test_the_notebook_example_runs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=8, seed=3)
    draw_shape("circle", 77).save(data / "square" / "really_a_circle.png")  # something to find
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(EXAMPLE.parents[1]), "AUDITOR_CACHE_DIR": str(tmp_path / "cache"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, str(EXAMPLE), str(data), str(out)], capture_output=True, text=True,
                          env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    for said in ("<Audit ", "findings, read back", "characters of notebook HTML", "max_label_error_rate"):
        assert said in done.stdout
    assert (out / "findings.parquet").is_file() and (out / "report.html").read_text(encoding="utf-8").startswith(
        "<!DOCTYPE html>")
