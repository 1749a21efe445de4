"""The documented entry point ``auditor.scan``: ``run_scan`` with its result type, observers and output names."""

from __future__ import annotations

from pathlib import Path

import auditor.scan
from auditor.core.config import load_config
from auditor.scan import EMBEDDINGS_FILE, FINDINGS_FILE, IMAGES_FILE, RUN_FILE, ScanResult, SilentObserver, run_scan
from tests.conftest import write_class_folder


def test_the_entry_point_exports_what_library_users_import() -> None:
    assert sorted(auditor.scan.__all__) == ["EMBEDDINGS_FILE", "FINDINGS_FILE", "IMAGES_FILE", "Observer",
                                            "RUN_FILE", "ScanResult", "SilentObserver", "run_scan"]


def test_run_scan_writes_the_named_files_and_returns_its_result(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=3)
    config = load_config(overrides={"encoder": {"name": "builtin", "workers": 0},
                                    "scan": {"cache_dir": str(tmp_path / "cache"), "workers": 0,
                                             "checks": ["unreadable", "class_imbalance"]}})
    result = run_scan(data, config, tmp_path / "out", observer=SilentObserver())
    assert isinstance(result, ScanResult) and result.out_dir == tmp_path / "out"
    written = {path.name for path in (tmp_path / "out").iterdir()}
    assert written == {FINDINGS_FILE, IMAGES_FILE, EMBEDDINGS_FILE, RUN_FILE}
    assert list(result.run["checks"]) == ["unreadable", "class_imbalance"]
    assert {f.classes for f in result.findings} == {("circle",), ("square",), ("triangle",)}  # 3 < 5: starved
