"""The notebook API: ``auditor.scan(path, **options)`` and ``auditor.Audit`` on a real scan of a drawn dataset."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import auditor
from auditor.api import Audit
from auditor.core.config import GateConfig, load_config
from auditor.core.errors import AuditorError
from auditor.results.reading import ResultsError
from tests.conftest import draw_shape, write_class_folder
from tests.safety import assert_html_safe

HOSTILE = "<marquee onmouseover=alert(1)>"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("api") / "data"
    write_class_folder(data, per_class=8, seed=5)
    draw_shape("circle", 91).save(data / "square" / "really_a_circle.png")
    (data / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    (data / HOSTILE).mkdir()
    draw_shape("triangle", 3).save(data / HOSTILE / "odd.png")
    return data


@pytest.fixture(scope="module")
def audit(dataset: Path) -> Audit:
    result = auditor.scan(dataset, dataset.parent / "out", encoder="builtin", workers=0,
                          cache_dir=dataset.parent / "cache")
    assert isinstance(result, Audit)
    return result


def test_auditor_scan_is_both_the_api_and_the_subpackage() -> None:
    from auditor.scan import ScanResult, run_scan

    assert callable(auditor.scan) and auditor.scan.run_scan is run_scan and ScanResult.__name__ == "ScanResult"
    assert auditor.Audit is Audit


def test_import_auditor_loads_neither_the_api_nor_pandas() -> None:
    code = "import sys, auditor; print('auditor.api' in sys.modules, 'pandas' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


def test_findings_images_and_summary_are_the_scans(audit: Audit) -> None:
    findings, images = audit.findings, audit.images
    assert isinstance(findings, pd.DataFrame) and len(images) == 3 * 8 + 3 and images["readable"].sum() == 26
    assert "unreadable" in set(findings["check"]) and "class_imbalance" in set(findings["check"])
    summary = audit.summary()
    assert list(summary.columns) == ["error", "warning", "info", "total", "waived"]
    assert summary["total"].to_dict() == findings["check"].value_counts().to_dict()
    assert summary.loc["unreadable", "error"] == 1
    findings.loc[:, "check"] = "changed"  # a copy: the audit's own findings stay
    assert "changed" not in set(audit.findings["check"])
    assert repr(audit) == f"<Audit {audit.directory}: {len(audit.findings)} findings in {len(summary)} kinds>"


def test_load_reads_the_same_results_and_refuses_a_missing_folder(audit: Audit, tmp_path: Path) -> None:
    again = Audit.load(audit.directory)
    pd.testing.assert_frame_equal(again.findings, audit.findings)
    assert again.run["run_id"] == audit.run["run_id"]
    with pytest.raises(ResultsError, match="not found"):
        Audit.load(tmp_path / "nothing")


def test_gate_takes_a_table_a_model_or_a_file(audit: Audit, tmp_path: Path) -> None:
    assert not audit.gate().passed  # the default rules allow no unreadable file
    assert audit.gate({"max_unreadable": 1}).passed == audit.gate(GateConfig(max_unreadable=1)).passed
    config = tmp_path / "audit.toml"
    config.write_text("[gate]\nmax_unreadable = 5\nmax_findings = { class_imbalance = 0 }\n", encoding="utf-8")
    verdict = audit.gate(config)
    assert not verdict.passed and [rule.name for rule in verdict.failed_rules] == ["max_findings.class_imbalance"]
    assert audit.gate({"max_unreadable": 5}, baseline=audit).passed  # nothing is new against itself


def test_report_in_every_format_and_to_a_file(audit: Audit, tmp_path: Path) -> None:
    assert "broken.png" in audit.report("terminal") and audit.report("markdown").startswith("#")
    page = tmp_path / "report.html"
    html = audit.report("html", page, checks=["unreadable"])
    assert page.read_text(encoding="utf-8") == html and "Class imbalance" not in html
    with pytest.raises(ValueError, match="pdf"):
        audit.report("pdf")


def test_notebook_html_has_counts_thumbnails_and_no_markup_from_data(audit: Audit,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("auditor.api.SHOWN_FINDINGS", 100)  # the hostile class's findings among them
    html = audit._repr_html_()
    assert "<table>" in html and "<th>unreadable</th>" in html
    assert 'src="data:image/webp;base64,' in html
    assert_html_safe(html, {"marquee"})
    assert "&lt;marquee onmouseover=alert(1)&gt;" in html


def test_options_are_the_cli_flags_and_unknown_ones_are_refused(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="unknown option.*colour"):
        auditor.scan(dataset, tmp_path / "out", colour="blue")
    with pytest.raises(AuditorError):
        auditor.scan(dataset, tmp_path / "out", checks=["no_such_check"], encoder="builtin")
    config = load_config(overrides={"encoder": {"name": "builtin", "workers": 0}, "scan": {"workers": 0}})
    only = auditor.scan(dataset, tmp_path / "out", config=config, checks=["unreadable"], use_cache=False)
    assert set(only.findings["check"]) == {"unreadable"}
    assert only.run["config"]["encoder"]["name"] == "builtin" and only.run["config"]["scan"]["use_cache"] is False
