"""``audit fix``: how its options choose what the cleaned manifest drops, and what it prints."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from auditor.cli.fix import fix_command
from tests.conftest import run_cli

audit = run_cli
BROKEN, COPY, ORIGINAL = "square/broken.png", "circle/circle_copy.png", "circle/circle_000.png"


def _kept(manifest: Path) -> set[str]:
    return set(pd.read_csv(manifest, dtype=str, keep_default_na=False)["path"])


def test_by_default_unreadable_files_and_extra_copies_go(results_with_findings: Path, tmp_path: Path) -> None:
    done = audit("fix", str(results_with_findings), "--out", str(tmp_path / "clean.csv"))
    assert done.returncode == 0, done.stderr
    kept = _kept(tmp_path / "clean.csv")
    assert BROKEN not in kept and len({COPY, ORIGINAL} & kept) == 1 and len(kept) == 9
    assert "audit fix: 9 of 11 images kept" in done.stdout
    dataset = results_with_findings.parent / "data"
    assert f"next: audit scan {dataset} --manifest {tmp_path / 'clean.csv'}" in done.stdout


def test_options_keep_what_they_name(results_with_findings: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    fix_command(results_with_findings, tmp_path / "all.parquet", keep_unreadable=True,
                no_dedupe=["exact_duplicate"])
    assert {BROKEN, COPY, ORIGINAL} <= set(pd.read_parquet(tmp_path / "all.parquet")["path"])
    assert "audit fix: 11 of 11 images kept" in capsys.readouterr().out
    done = audit("fix", str(results_with_findings), "--out", str(tmp_path / "fewer.csv"), "--drop", "exact_duplicate")
    assert done.returncode == 0 and {COPY, ORIGINAL}.isdisjoint(_kept(tmp_path / "fewer.csv"))


def test_an_unknown_duplicate_kind_is_refused_naming_the_kinds(results_with_findings: Path, tmp_path: Path) -> None:
    done = audit("fix", str(results_with_findings), "--out", str(tmp_path / "clean.csv"), "--no-dedupe", "copies")
    assert done.returncode == 2
    assert done.stderr == "error: --no-dedupe takes exact_duplicate, near_duplicate, got copies\n"
    assert not (tmp_path / "clean.csv").exists()
