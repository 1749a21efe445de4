"""``audit fix``: how its options choose what the cleaned manifest drops, and what it prints."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from auditor.cli.fix import fix_command
from auditor.results.findings import Finding, Severity
from tests.actions.test_fix import scan
from tests.actions.test_gate import image_rows, write_results
from tests.conftest import run_cli, write_class_folder
from tests.safety import assert_no_control_characters

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


def test_the_written_paths_are_shown_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data\u202e"
    write_class_folder(data, per_class=3)
    (data / "circle" / "broken.png").write_bytes(b"not an image")
    done = run_cli("scan", str(data), "--out", str(tmp_path / "out"), "--encoder", "builtin", "--workers", "0",
                   "--checks", "unreadable", "--quiet")
    assert done.returncode == 0, done.stderr
    capsys.readouterr()
    fix_command(tmp_path / "out", out=tmp_path / "clean\x1b[2J.csv")
    shown = capsys.readouterr().out
    assert "clean\\x1b[2J.csv" in shown and "data\\u202e" in shown
    assert_no_control_characters(shown)
    assert (tmp_path / "clean\x1b[2J.csv").read_text().count("\n") == 1 + 9  # header and the readable images


def test_a_copy_filed_under_another_label_is_left_for_review(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=8)
    shutil.copy(data / ORIGINAL, data / COPY)
    shutil.copy(data / ORIGINAL, data / "square" / "circle_filed_as_square.png")
    scan(data, tmp_path / "results")
    done = audit("fix", str(tmp_path / "results"), "--out", str(tmp_path / "clean.csv"), "--drop-weak")
    assert done.returncode == 0, done.stderr
    changes = pd.read_csv(tmp_path / "clean.changes.csv", dtype=str, keep_default_na=False)
    assert [tuple(c) for c in changes[["action", "path", "witness"]].to_numpy()] == [
        ("drop", COPY, "sha256"), ("review", ORIGINAL, "sha256"), ("review", "square/circle_filed_as_square.png",
                                                                     "sha256")]
    assert {ORIGINAL, "square/circle_filed_as_square.png"} <= _kept(tmp_path / "clean.csv")
    assert (f"2 images are copies filed under different labels: label conflicts to review (audit review "
            f"{tmp_path / 'results'}), not dropped") in " ".join(done.stdout.split())


def test_a_copy_one_witness_vouches_for_stays_unless_drop_weak(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    details = {"methods": ["semantic"], "evidence": "one method", "group_evidence": "one method"}
    findings = [Finding(check="near_duplicate", severity=Severity.INFO, message="near duplicate", path=path,
                        group_id=0, other_path=other, details=details)
                for path, other in (("a.png", "a_look_alike.png"), ("a_look_alike.png", "a.png"))]
    images = image_rows({"a.png": ("s1", "x"), "a_look_alike.png": ("s2", "x")})
    results = write_results(tmp_path / "r", findings, images)
    fix_command(results.directory, tmp_path / "default.csv")
    assert _kept(tmp_path / "default.csv") == {"a.png", "a_look_alike.png"}
    assert "1 copy rests on one witness only: kept (--drop-weak drops them)" in capsys.readouterr().out
    fix_command(results.directory, tmp_path / "weak.csv", drop_weak=True)
    assert _kept(tmp_path / "weak.csv") == {"a.png"}
    changes = pd.read_csv(tmp_path / "weak.changes.csv", dtype=str, keep_default_na=False)
    assert changes[["action", "path", "witness"]].to_numpy().tolist() == [["drop", "a_look_alike.png", "semantic"]]
