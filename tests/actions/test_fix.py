"""`audit fix`: a cleaned manifest whose re-scan has the fixed findings gone, and nothing else lost."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from auditor.actions.fix import Fix, FixOptions, plan_fix, write_fix
from auditor.cli.app import app
from auditor.core.errors import AuditorError, OutputError
from auditor.results.findings import Finding, Severity
from auditor.results.reading import load_results
from tests.actions.test_gate import image_rows, write_results
from tests.conftest import draw_shape, write_split_shapes

runner = CliRunner()
COPY_KINDS = {"exact_duplicate", "near_duplicate", "split_leakage"}


def planted(root: Path) -> Path:
    """train/test shapes with a copy inside train, a train image leaked into test, a circle labelled
    triangle, and an unreadable file."""
    write_split_shapes(root, train=12, test=5)
    shutil.copy(root / "train/circle/circle_002.png", root / "train/circle/circle_002_copy.png")
    shutil.copy(root / "train/square/square_004.png", root / "test/square/leaked.png")
    draw_shape("circle", 7777).save(root / "train/triangle/odd_one.png")
    (root / "train/circle/broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    return root


def scan(data: Path, out: Path, *extra: str) -> None:
    result = runner.invoke(app, ["scan", str(data), "--out", str(out), "--encoder", "builtin", "--workers", "0",
                                 "--quiet", "--checks", "unreadable,duplicates,label_errors", *extra])
    assert result.exit_code == 0, result.output


def test_fix_then_rescan_has_no_copies_leaks_or_reviewed_label_errors(tmp_path: Path) -> None:
    data = planted(tmp_path / "data")
    before = {p.stat().st_mtime_ns for p in data.rglob("*")}
    scan(data, tmp_path / "r1")
    first = load_results(tmp_path / "r1")
    found = set(zip(first.findings["check"], first.findings["path"], strict=True))
    assert {("exact_duplicate", "train/circle/circle_002_copy.png"), ("split_leakage", "test/square/leaked.png"),
            ("label_error", "train/triangle/odd_one.png"), ("unreadable", "train/circle/broken.png")} <= found
    review = runner.invoke(app, ["review", str(tmp_path / "r1"), "--relabel", "--check", "label_error",
                                 "--path", "train/triangle/odd_one.png"])
    assert review.exit_code == 0, review.output

    result = runner.invoke(app, ["fix", str(tmp_path / "r1"), "--out", str(tmp_path / "clean.csv")])
    assert result.exit_code == 0, result.output
    assert "relabel" in result.output and "split_leakage" in result.output
    assert {p.stat().st_mtime_ns for p in data.rglob("*")} == before  # the dataset is never touched
    manifest = pd.read_csv(tmp_path / "clean.csv", dtype=str, keep_default_na=False)
    changes = pd.read_csv(tmp_path / "clean.changes.csv", dtype=str, keep_default_na=False)
    assert list(manifest.columns) == ["path", "label", "split"]
    dropped = set(changes.loc[changes["action"] == "drop", "path"])
    assert {"train/circle/circle_002_copy.png", "test/square/leaked.png", "train/circle/broken.png"} <= dropped
    assert "train/circle/circle_002.png" in set(manifest["path"]) and "train/square/square_004.png" in set(
        manifest["path"])
    # Every other image is kept, and only images with a copy/leak/unreadable finding were dropped.
    assert set(manifest["path"]) == set(first.images["path"]) - dropped
    flagged = {path for check, path in found if check in COPY_KINDS | {"unreadable"}}
    assert dropped <= flagged
    assert manifest.set_index("path").at["train/triangle/odd_one.png", "label"] == "circle"

    scan(data, tmp_path / "r2", "--manifest", str(tmp_path / "clean.csv"))
    second = load_results(tmp_path / "r2")
    assert not set(second.findings["check"]) & (COPY_KINDS | {"unreadable"})
    relabelled = first.images.set_index("path").at["train/triangle/odd_one.png", "sha256"]
    errors = second.findings[second.findings["check"] == "label_error"]
    assert relabelled not in set(errors["sha256"])
    assert len(second.images) == len(manifest)


def _copy(check: str, path: str, sha: str, split: str, group: int) -> Finding:
    return Finding(check=check, severity=Severity.ERROR, message=f"{check}: {path}", path=path, sha256=sha,
                   split=split, group_id=group)


def test_split_priority_keeper_waived_groups_and_relabel_threshold(tmp_path: Path) -> None:
    rows = image_rows({"test/a.png": ("s1", "x"), "val/a.png": ("s1", "x"), "val/a_again.png": ("s1", "x"),
                       "train/b.png": ("s2", "x"), "train/b_copy.png": ("s2", "x"), "train/c.png": ("s3", "x")})
    for row in rows:
        row["split"] = row["path"].split("/")[0]
    label_error = Finding(check="label_error", severity=Severity.WARNING, message="looks like y",
                          path="train/c.png", sha256="s3", label="x", suggested_label="y", score=0.8)
    findings = [_copy("split_leakage", "test/a.png", "s1", "test", 0),
                _copy("split_leakage", "val/a.png", "s1", "val", 0),
                _copy("split_leakage", "val/a_again.png", "s1", "val", 0),
                _copy("exact_duplicate", "train/b.png", "s2", "train", 1),
                _copy("exact_duplicate", "train/b_copy.png", "s2", "train", 1), label_error]
    results = write_results(tmp_path / "r", findings, rows)
    today = date(2026, 1, 1)

    fix = plan_fix(results, [], FixOptions(), today)
    # No train copy: val wins over test by default; within val the shortest path stays.
    assert set(fix.manifest["path"]) == {"val/a.png", "train/b.png", "train/c.png"}
    assert fix.manifest.set_index("path").at["train/c.png", "label"] == "x"  # no threshold, no review: unchanged

    fix = plan_fix(results, [], FixOptions(split_priority=("test",), dedupe=(), relabel_above=0.8), today)
    assert set(fix.manifest["path"]) == {"test/a.png", "train/b.png", "train/b_copy.png", "train/c.png"}
    assert fix.manifest.set_index("path").at["train/c.png", "label"] == "y"
    assert ("relabel", "label_error", 1) in fix.summary()
    # A label error the scan found unreliable (info) is weak evidence: relabelled only when asked.
    unreliable = [replace(f, severity=Severity.INFO) if f is label_error else f for f in findings]
    weak = write_results(tmp_path / "weak", unreliable, rows)
    kept = plan_fix(weak, [], FixOptions(dedupe=(), relabel_above=0.8), today)
    assert kept.manifest.set_index("path").at["train/c.png", "label"] == "x"
    asked = plan_fix(weak, [], FixOptions(dedupe=(), relabel_above=0.8, drop_weak=True), today)
    assert asked.manifest.set_index("path").at["train/c.png", "label"] == "y"

    waived = [f if f.group_id != 1 else replace(f, waived=True) for f in findings]
    fix = plan_fix(write_results(tmp_path / "w", waived, rows), [], FixOptions(), today)
    assert {"train/b.png", "train/b_copy.png"} <= set(fix.manifest["path"])  # accepted copies stay


def test_a_drop_kind_no_check_produces_is_refused_with_a_did_you_mean(tmp_path: Path) -> None:
    results = write_results(tmp_path / "r", [], image_rows({"a.png": ("s1", "x")}))
    with pytest.raises(AuditorError, match=r"--drop: unknown finding kind 'outliers' \(did you mean 'outlier'\?\)"):
        plan_fix(results, [], FixOptions(drop=("outliers", "unreadable")), date(2026, 1, 1))
    assert plan_fix(results, [], FixOptions(drop=("outlier",)), date(2026, 1, 1)).changes == []


def test_manifest_and_change_log_are_written_together_or_not_at_all(tmp_path: Path) -> None:
    fix = Fix(manifest=pd.DataFrame({"path": ["a.png"], "label": ["x"], "split": [""]}),
              changes=[{"action": "drop", "path": "b.png", "split": None, "label": "x", "new_label": None,
                        "kind": "unreadable", "score": None, "reason": "broken"}])
    (tmp_path / "clean.changes.csv").mkdir()  # the change log cannot be written
    with pytest.raises(OutputError, match="clean.changes.csv"):
        write_fix(fix, tmp_path / "clean.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean.changes.csv"]  # no manifest, no temporaries
    (tmp_path / "clean.changes.csv").rmdir()
    log = write_fix(fix, tmp_path / "clean.csv")
    assert pd.read_csv(log)["path"].tolist() == ["b.png"]
    assert pd.read_csv(tmp_path / "clean.csv")["path"].tolist() == ["a.png"]


def _pair(check: str, group: int, paths: tuple[str, str], methods: list[str], evidence: str,
          severity: Severity = Severity.WARNING) -> list[Finding]:
    """Both findings of a two-image copy group, with the details the duplicates check records."""
    details = {"methods": methods, "evidence": evidence, "group_evidence": evidence}
    return [Finding(check=check, severity=severity, message=f"{check}: copy of {other}", path=path, score=0.7,
                    group_id=group, other_path=other, split=path.split("/")[0], details=details)
            for path, other in (paths, paths[::-1])]


def test_only_certain_copies_go_by_default_and_labels_that_differ_are_left_for_review(tmp_path: Path) -> None:
    rows = image_rows({"train/x/a.png": ("s1", "x"), "train/x/a_look_alike.png": ("s2", "x"),
                       "train/x/b.png": ("s3", "x"), "train/x/b_resized.png": ("s4", "x"),
                       "train/x/c.png": ("s5", "x"), "train/x/c_copy.png": ("s5", "x"),
                       "train/x/ant_framed.png": ("s6", "x"), "train/y/bee_framed.png": ("s7", "y"),
                       "train/x/d.png": ("s8", "x"), "test/x/d_look_alike.png": ("s9", "x"),
                       "train/x/e.png": ("s10", "x"), "train/x/e_resaved.png": ("s11", "x"),
                       "train/x/e_look_alike.png": ("s12", "x")})
    for row in rows:
        row["split"] = row["path"].split("/")[0]
    e_group = [*_pair("near_duplicate", 5, ("train/x/e.png", "train/x/e_resaved.png"), ["pixels"], "one method",
                      Severity.INFO),
               _pair("near_duplicate", 5, ("train/x/e_look_alike.png", "train/x/e.png"), ["semantic"], "one method",
                     Severity.INFO)[0]]
    findings = [*_pair("near_duplicate", 0, ("train/x/a.png", "train/x/a_look_alike.png"), ["semantic"],
                       "one method", Severity.INFO),
                *_pair("near_duplicate", 1, ("train/x/b.png", "train/x/b_resized.png"), ["perceptual", "semantic"],
                       "hash+embedding"),
                *_pair("exact_duplicate", 2, ("train/x/c.png", "train/x/c_copy.png"), ["sha256"], "identical"),
                *_pair("near_duplicate", 3, ("train/x/ant_framed.png", "train/y/bee_framed.png"),
                       ["levelled", "semantic"], "hash+embedding"),
                *_pair("split_leakage", 4, ("train/x/d.png", "test/x/d_look_alike.png"), ["semantic"], "one method"),
                *e_group,
                Finding(check="outlier", severity=Severity.INFO, message="far from its class", path="train/x/a.png",
                        score=0.9)]
    results = write_results(tmp_path / "r", findings, rows)
    today = date(2026, 1, 1)

    fix = plan_fix(results, [], FixOptions(), today)
    changes = pd.DataFrame(fix.changes).set_index("path")
    # Dropped: the copy two witnesses vouch for, the exact copies (also inside a group that is otherwise weak).
    drops = changes[changes["action"] == "drop"]
    assert drops["witness"].to_dict() == {"train/x/b_resized.png": "perceptual+semantic",
                                          "train/x/c_copy.png": "sha256", "train/x/e_resaved.png": "pixels"}
    # Kept: what one witness alone vouches for (info near copies, a weak leak); review: copies under two labels.
    assert changes.loc[changes["action"] == "keep", "witness"].to_dict() == {
        "train/x/a_look_alike.png": "semantic", "test/x/d_look_alike.png": "semantic",
        "train/x/e_look_alike.png": "semantic"}
    assert set(changes.index[changes["action"] == "review"]) == {"train/x/ant_framed.png", "train/y/bee_framed.png"}
    assert "label conflict" in changes.at["train/y/bee_framed.png", "reason"]
    assert set(fix.manifest["path"]) == {r["path"] for r in rows} - set(drops.index)
    assert fix.left_in() == {"review": 2, "keep": 3}

    weak = plan_fix(results, [], FixOptions(drop_weak=True), today)
    weak_drops = {c["path"]: c for c in weak.changes if c["action"] == "drop"}
    assert set(weak_drops) == {*drops.index, "train/x/a_look_alike.png", "test/x/d_look_alike.png",
                               "train/x/e_look_alike.png"}
    assert "--drop-weak" in str(weak_drops["train/x/a_look_alike.png"]["reason"])
    assert weak_drops["train/x/a_look_alike.png"]["witness"] == "semantic"
    # Copies under different labels are never resolved here, even when asked to drop weak copies.
    assert {"train/x/ant_framed.png", "train/y/bee_framed.png"} <= set(weak.manifest["path"])
    assert weak.left_in() == {"review": 2, "keep": 0}
    # An info finding of another kind goes only when its kind is named.
    assert "train/x/a.png" in set(weak.manifest["path"])
    named = plan_fix(results, [], FixOptions(drop=("outlier",)), today)
    assert "train/x/a.png" not in set(named.manifest["path"])


def test_exact_copies_under_two_labels_lose_only_their_same_label_copies(tmp_path: Path) -> None:
    rows = image_rows({"x/a.png": ("s1", "x"), "x/a_copy.png": ("s1", "x"), "y/a_filed_as_y.png": ("s1", "y")})
    findings = [Finding(check="exact_duplicate", severity=Severity.WARNING, message="copy", path=path, group_id=0,
                        other_path="x/a.png" if path != "x/a.png" else "x/a_copy.png", details={"methods": ["sha256"]})
                for path in ("x/a.png", "x/a_copy.png", "y/a_filed_as_y.png")]
    fix = plan_fix(write_results(tmp_path / "r", findings, rows), [], FixOptions(drop_weak=True), date(2026, 1, 1))
    assert [(c["action"], c["path"], c["witness"]) for c in fix.changes] == [
        ("drop", "x/a_copy.png", "sha256"), ("review", "x/a.png", "sha256"), ("review", "y/a_filed_as_y.png", "sha256")]
