"""The terminal report: class bars per split, the findings summary, one table per kind, all data as text."""

from __future__ import annotations

from pathlib import Path

from auditor.report.base import ReportOptions, prepare
from auditor.report.terminal import BAR_WIDTH, TerminalRenderer
from auditor.results.findings import Finding, Severity
from tests.report.test_report_base import results_folder

WIDE = ReportOptions(width=160)


def _render(tmp_path: Path, findings: list[Finding], run: dict[str, object], options: ReportOptions = WIDE) -> str:
    return TerminalRenderer().render(prepare(results_folder(tmp_path, findings, run), options), options)


def test_the_report_shows_dataset_counts_bars_and_each_kind(tmp_path: Path) -> None:
    findings = [Finding(check="outlier", severity=Severity.WARNING, message="far from its class", path="cat/a.png",
                        label="cat", score=0.75)]
    run = {"dataset": {"root": "/data/pets", "files": 12, "readable": 11, "classes": ["cat", "dog"],
                       "counts": {"train": {"cat": 8, "dog": 4}}},
           "checks": {"outliers": {}, "label_errors": {"skipped": "needs two classes"}}}
    text = _render(tmp_path, findings, run)
    assert "Dataset /data/pets" in text and "12 files, 11 readable, 2 classes" in text
    assert "Classes in train" in text
    assert "█" * BAR_WIDTH in text and "█" * (BAR_WIDTH // 2) + " " in text  # dog: half of cat's bar
    assert "outlier: 1 finding(s)" in text and "far from its class" in text and "0.75" in text
    assert "label_errors (skipped: needs two classes)" in text
    assert "\x1b[" not in text  # no colour unless asked


def test_top_cuts_each_table_and_says_so(tmp_path: Path) -> None:
    findings = [Finding(check="outlier", severity=Severity.INFO, message=f"m{i}", path=f"p{i}.png", score=i / 10)
                for i in range(5)]
    text = _render(tmp_path, findings, {"checks": {"outliers": {}}}, ReportOptions(width=160, top=2))
    assert "outlier: 5 finding(s), top 2 by score (--top 0 for all)" in text
    assert "p4.png" in text and "p3.png" in text and "p2.png" not in text


def test_data_text_prints_as_itself_never_as_markup_or_escape_codes(tmp_path: Path) -> None:
    hostile = Finding(check="outlier", severity=Severity.WARNING, message="[bold]x[/] \x1b]0;title\x07",
                      path="[red]cat[/].png", label="[/]", score=0.5)
    text = _render(tmp_path, [hostile], {"checks": {"outliers": {}}})
    assert "[red]cat[/].png" in text and "[bold]x[/] \\x1b]0;title\\x07" in text
    assert "\x1b" not in text and "\x07" not in text


def test_colour_is_drawn_when_asked(tmp_path: Path) -> None:
    finding = Finding(check="unreadable", severity=Severity.ERROR, message="unreadable: empty file", path="a.png",
                      score=1.0)
    assert "\x1b[31m" in _render(tmp_path, [finding], {"checks": {"unreadable": {}}},
                          ReportOptions(width=160, color=True))


def test_the_quality_table_shows_class_names_escaped(tmp_path: Path) -> None:
    run = {"checks": {"image_quality": {"per_class": {"\u202egnp.exe": {"images": 4, "blurry": 2}}}}}
    text = _render(tmp_path, [], run)
    assert "Image quality by class" in text and "\\u202egnp.exe" in text and "\u202e" not in text
