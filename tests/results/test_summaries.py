"""Check summaries: written to run.json by the scan, read back typed by every reader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from auditor.actions.gate import GateConfig, RuleStatus, evaluate
from auditor.core.config import AuditConfig, EncoderConfig, ScanConfig
from auditor.results.findings import findings_table
from auditor.results.outputs import write_json, write_parquet
from auditor.results.reading import ResultsError, load_results
from auditor.results.summaries import (
    ClassImbalanceSummary,
    DuplicatesSummary,
    ImageQualitySummary,
    LabelErrorsSummary,
    OutliersSummary,
    Skipped,
    UnknownSummary,
    UnreadableSummary,
    read_summary,
    reliability_problem,
)
from auditor.scan import run_scan
from tests.conftest import write_split_shapes


def test_a_scan_records_typed_summaries_that_read_back_unchanged(tmp_path: Path) -> None:
    root = write_split_shapes(tmp_path / "data", train=8, test=4)
    config = AuditConfig(scan=ScanConfig(workers=0, use_cache=False), encoder=EncoderConfig(name="builtin"))
    run_scan(root, config, tmp_path / "out")
    recorded = json.loads((tmp_path / "out/run.json").read_text(encoding="utf-8"))["checks"]
    results = load_results(tmp_path / "out")

    assert list(results.summaries) == list(recorded)
    for name, summary in results.summaries.items():
        assert summary.as_json() == recorded[name], name
    imbalance = results.summaries["class_imbalance"]
    assert isinstance(imbalance, ClassImbalanceSummary)
    assert set(imbalance.ratios()) == {"train", "test"}
    assert imbalance.root["train"].counts == recorded["class_imbalance"]["train"]["counts"]
    assert isinstance(results.summaries["unreadable"], UnreadableSummary)
    assert isinstance(results.summaries["duplicates"], DuplicatesSummary)
    assert isinstance(results.summaries["image_quality"], ImageQualitySummary)
    label_errors = results.summaries["label_errors"]
    assert isinstance(label_errors, LabelErrorsSummary)
    assert label_errors.reliable is recorded["label_errors"]["reliable"]
    assert set(label_errors.per_class) == set(recorded["label_errors"]["per_class"])


def _older_results(directory: Path, checks: dict[str, Any]) -> Path:
    """A results folder as a schema 1.1 scan wrote it: no check_info, summaries without later fields."""
    directory.mkdir()
    images = pd.DataFrame([{"path": "a.png", "label": "x", "split": "train", "sha256": "s1", "readable": True}])
    table = pa.Table.from_pandas(images, preserve_index=False).replace_schema_metadata(
        {"auditor_schema_version": "1.1", "auditor_table": "images"})
    write_parquet(directory / "images.parquet", table)
    write_parquet(directory / "findings.parquet", findings_table([]).replace_schema_metadata(
        {"auditor_schema_version": "1.1", "auditor_table": "findings"}))
    write_json(directory / "run.json", {"schema_version": "1.1", "encoder": {"identity": "builtin:v1"},
                                        "checks": checks})
    return directory


def test_an_older_run_json_still_reads(tmp_path: Path) -> None:
    older = _older_results(tmp_path / "old", {
        "unreadable": {"count": 0},
        "class_imbalance": {"train": {"counts": {"x": 12, "y": 1}, "median": 6.5, "imbalance_ratio": 12.0}},
        # Before the reliability verdict and the conflict counts were recorded; with a field since dropped.
        "label_errors": {"filter_by": "prune_by_noise_rate", "label_errors": 0, "per_class": {},
                         "retired_figure": 3},
        "duplicates": {"pairs": {"sha256": 0}, "groups": {"split_leakage": 0}},
        "outliers": {"skipped": "needs at least 20 distinct embedded images (found 1)"},
    })
    results = load_results(older)

    label_errors = results.summaries["label_errors"]
    assert isinstance(label_errors, LabelErrorsSummary)
    assert label_errors.reliable is None and reliability_problem(label_errors) is None
    assert "retired_figure" not in label_errors.as_json()
    duplicates = results.summaries["duplicates"]
    assert isinstance(duplicates, DuplicatesSummary) and duplicates.chain_links_dropped == 0
    assert results.summaries["outliers"] == Skipped(skipped="needs at least 20 distinct embedded images (found 1)")
    verdict = evaluate(results, GateConfig(max_imbalance_ratio=10.0, max_label_error_rate=0.1))
    by_name = {rule.name: rule for rule in verdict.rules}
    assert by_name["max_imbalance_ratio"].status is RuleStatus.FAIL
    assert by_name["max_imbalance_ratio"].observed == 12.0
    assert by_name["max_label_error_rate"].status is RuleStatus.PASS


def test_a_malformed_summary_is_refused_on_load(tmp_path: Path) -> None:
    broken = _older_results(tmp_path / "broken", {"class_imbalance": {"train": {"imbalance_ratio": "high"}}})
    with pytest.raises(ResultsError, match=r"the class_imbalance summary is malformed: train\.imbalance_ratio"):
        load_results(broken)
    not_object = _older_results(tmp_path / "list", {"outliers": [1, 2]})
    with pytest.raises(ResultsError, match="the outliers summary must be a JSON object"):
        load_results(not_object)


def test_a_summary_of_an_unknown_check_keeps_its_fields_and_its_reliability() -> None:
    summary = read_summary("plugin", {"figure": 3, "reliable": False, "reliability_reason": "too few images"})
    assert isinstance(summary, UnknownSummary)
    assert reliability_problem(summary) == "too few images"
    assert summary.as_json() == {"figure": 3, "reliable": False, "reliability_reason": "too few images"}


def test_the_reliability_verdict_stays_last_in_run_json() -> None:
    summary = OutliersSummary(outliers=2, reliable=True, reliability_reason=None, reliability={"chance": 0.5},
                              robust_z=3.0)
    assert list(summary.as_json()) == ["outliers", "robust_z", "reliable", "reliability_reason", "reliability"]
    without_verdict = OutliersSummary(outliers=0, per_class=False)
    assert without_verdict.as_json() == {"outliers": 0, "per_class": False}
