"""What every report format shares (auditor/report/base.py): findings grouped by kind in report order and
best-scored first, the ``--check`` and ``--top`` choices, and the dataset folder for thumbnails."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from auditor.checks import check_record
from auditor.core.errors import AuditorError
from auditor.report.base import ReportOptions, format_score, order_checks, prepare, subject
from auditor.results.findings import SCHEMA_VERSION, Finding, FindingKind, Severity, findings_table
from auditor.results.outputs import write_json, write_parquet
from auditor.results.reading import Results, load_results


def results_folder(directory: Path, findings: list[Finding], run: dict[str, object]) -> Results:
    """A results folder as a scan writes it, holding ``findings`` over the images they name."""
    paths = sorted({f.path for f in findings if f.path})
    columns = {"path": (paths, pa.string()), "label": (["cat"] * len(paths), pa.string()),
               "split": ([None] * len(paths), pa.string()), "sha256": (["0" * 64] * len(paths), pa.string()),
               "readable": ([True] * len(paths), pa.bool_())}
    table = pa.table({name: pa.array(values, type=kind) for name, (values, kind) in columns.items()}
                     ).replace_schema_metadata({"auditor_schema_version": SCHEMA_VERSION, "auditor_table": "images"})
    write_parquet(directory / "findings.parquet", findings_table(findings))
    write_parquet(directory / "images.parquet", table)
    write_json(directory / "run.json", {"schema_version": SCHEMA_VERSION, "encoder": {"identity": "builtin:v2"},
                                        "check_info": check_record(), **run})
    return load_results(directory)


def _finding(check: str, path: str | None, score: float, classes: tuple[str, ...] = ()) -> Finding:
    return Finding(check=check, severity=Severity.WARNING, message=f"{check} {path}", path=path, score=score,
                   label="cat" if path else None, classes=classes)


FINDINGS = [
    _finding("outlier", "b.png", 0.2),
    _finding("outlier", "a.png", 0.9),
    _finding("unreadable", "z.png", 1.0),
    _finding("class_imbalance", None, 0.5, classes=("fox",)),
]


def test_findings_are_grouped_in_report_order_best_first(tmp_path: Path) -> None:
    data = prepare(results_folder(tmp_path, FINDINGS, {"checks": {"outliers": {}}}), ReportOptions())
    assert list(data.by_check) == ["unreadable", "class_imbalance", "outlier"]
    assert [f.path for f in data.by_check["outlier"]] == ["a.png", "b.png"]
    assert data.total_findings == data.shown_findings == 4
    assert data.severity_counts()["outlier"] == {"warning": 2}
    assert data.classes() == ["cat", "fox"]


def test_check_selects_a_check_or_its_finding_kinds_and_refuses_unknown_names(tmp_path: Path) -> None:
    results = results_folder(tmp_path, FINDINGS, {"checks": {"outliers": {}, "class_imbalance": {}}})
    assert list(prepare(results, ReportOptions(checks=("outliers",))).by_check) == ["outlier"]
    assert list(prepare(results, ReportOptions(checks=("unreadable",))).by_check) == ["unreadable"]
    with pytest.raises(AuditorError, match="unknown check 'nope'; valid: "):
        prepare(results, ReportOptions(checks=("nope",)))


def test_top_limits_the_findings_listed_per_check() -> None:
    assert ReportOptions().limit(15) == 15
    assert ReportOptions(top=3).limit(15) == 3
    assert ReportOptions(top=0).limit(15) is None


def test_the_dataset_folder_comes_from_run_json_or_is_a_note(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    found = prepare(results_folder(tmp_path / "a", [], {"dataset": {"root": str(tmp_path / "data")}}),
                    ReportOptions())
    assert (found.dataset_root, found.dataset_note) == (tmp_path / "data", None)
    missing = prepare(results_folder(tmp_path / "b", [], {"dataset": {"root": str(tmp_path / "gone")}}),
                      ReportOptions())
    assert missing.dataset_root is None
    assert missing.dataset_note == f"dataset folder {tmp_path / 'gone'} not found, so no thumbnails; pass --dataset DIR"
    assert missing.warnings()[-1] == missing.dataset_note
    with pytest.raises(AuditorError, match="--dataset folder not found"):
        prepare(results_folder(tmp_path / "c", [], {}), ReportOptions(dataset=tmp_path / "nowhere"))


def test_skipped_checks_and_the_encoder_fallback_are_reported(tmp_path: Path) -> None:
    run = {"checks": {"outliers": {"skipped": "too few"}, "unreadable": {"count": 0}},
           "encoder": {"identity": "builtin:v2", "fallback_reason": "no CLIP weights"},
           "warnings": ["check outliers skipped: too few"]}
    data = prepare(results_folder(tmp_path, [], run), ReportOptions())
    assert data.skipped_checks() == {"outliers": "too few"}
    assert data.warnings()[:2] == ["the requested encoder was unavailable, fell back: no CLIP weights",
                                   "check outliers skipped: too few"]


def test_scores_subjects_and_kind_order_read_the_same_in_every_format() -> None:
    assert (format_score(0.123456), format_score(12345.6), format_score(float("inf"))) == ("0.123", "12,346", "inf")
    assert subject(_finding("outlier", "a.png", 1)) == "a.png"
    assert subject(_finding("class_overlap", None, 1, classes=("cat", "dog"))) == "cat / dog"
    assert subject(_finding("class_imbalance", None, 1)) == "(dataset)"
    kinds = {"late": FindingKind("Late", "", order=9), "early": FindingKind("Early", "", order=1)}
    assert order_checks({"late", "early", "zzz", "aaa"}, kinds) == ["early", "late", "aaa", "zzz"]
