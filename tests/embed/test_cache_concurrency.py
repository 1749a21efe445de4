"""Concurrency: scans sharing one embedding cache at the same time finish with identical results.

Three scans start together on one dataset with an empty cache; in practice one looks its images up
while another is mid-way, so they write the same keys at once (INSERT OR REPLACE of equal vectors).

The cache is SQLite in WAL mode with a busy timeout (auditor/embed/cache.py): writers queue for the lock
and commit whole batches, so racing scans may both embed an image, but never corrupt or lose one.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from auditor.embed.cache import CACHE_FORMAT
from tests.conftest import write_class_folder

TIMEOUT_S = 300


def _scan(data: Path, out: Path, cache: Path) -> subprocess.Popen[str]:
    # Batch size 1: hundreds of small write transactions per scan, so the scans really contend.
    command = [sys.executable, "-m", "auditor", "scan", str(data), "--out", str(out),
               "--cache-dir", str(cache), "--encoder", "builtin", "--batch-size", "1", "--workers", "0", "-q",
               # The checks that read embeddings; the label checks add time, not contention.
               "--checks", "unreadable,class_imbalance,duplicates,outliers"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _table(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path).sort_values("path", kind="stable").reset_index(drop=True)


@pytest.mark.slow
def test_scans_sharing_a_cache_agree(tmp_path: Path) -> None:
    data, cache = tmp_path / "data", tmp_path / "cache"
    write_class_folder(data, per_class=50)
    (data / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)

    outs = [tmp_path / f"out{n}" for n in range(3)]
    processes = [_scan(data, out, cache) for out in outs]
    for process in processes:
        _, stderr = process.communicate(timeout=TIMEOUT_S)
        assert process.returncode == 0, stderr

    runs = [json.loads((out / "run.json").read_text()) for out in outs]
    for run in runs:
        assert run["dataset"]["files"] == 151 and run["dataset"]["readable"] == 150
        # Each image came from the cache or was embedded; a race may make both scans embed it.
        assert run["embedding"]["embedded"] + run["embedding"]["from_cache"] == 150
    for name in ("findings.parquet", "images.parquet", "embeddings.parquet"):
        first = _table(outs[0] / name)
        for out in outs[1:]:
            pd.testing.assert_frame_equal(first, _table(out / name), obj=f"{out.name}/{name}")
    findings = _table(outs[0] / "findings.parquet")
    assert findings.loc[findings["check"] == "unreadable", "path"].tolist() == ["circle/broken.png"]

    with sqlite3.connect(cache / f"embeddings-v{CACHE_FORMAT}.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM embeddings").fetchone()[0] == 150

    # A later scan finds everything cached and still agrees.
    again = _scan(data, tmp_path / "again", cache)
    _, stderr = again.communicate(timeout=TIMEOUT_S)
    assert again.returncode == 0, stderr
    run = json.loads((tmp_path / "again" / "run.json").read_text())
    assert run["embedding"]["from_cache"] == 150 and run["embedding"]["embedded"] == 0
    pd.testing.assert_frame_equal(_table(outs[0] / "embeddings.parquet"),
                                  _table(tmp_path / "again" / "embeddings.parquet"))
