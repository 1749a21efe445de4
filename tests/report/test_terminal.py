"""The terminal report: class bars per split, the findings summary, one table per kind, all data as text."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.report import load_results
from auditor.report.base import ReportOptions, prepare
from auditor.report.terminal import BAR_WIDTH, TerminalRenderer
from auditor.results.findings import Finding, Severity
from tests.conftest import run_cli
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


def _every_kind() -> list[Finding]:
    """A finding of every kind the checks produce, worded as the checks word them, on paths of realistic length."""
    w, e, i = Severity.WARNING, Severity.ERROR, Severity.INFO
    findings = [
        Finding("unreadable", e, "unreadable: decompression bomb guard: 10000x10000 = 100,000,000 pixels exceeds "
                "the limit of 89,478,485 (scan.max_image_pixels)", path="train/star/bomb.png", label="star",
                split="train"),
        Finding("class_imbalance", w, "class 'hexagon' is starved in split train: 3 image(s), below the minimum 7 "
                "(median class: 35)", split="train", classes=("hexagon",), score=0.571),
        Finding("class_name_collision", w, "classes 'Star' and 'star' differ only in case", classes=("Star", "star")),
        Finding("split_leakage", e, "split leakage: copy of train/star/star_004.png (identical bytes; group of 2, "
                "splits test, train)", path="test/star/star_leaked.png", label="star", split="test", group_id=1,
                other_path="train/star/star_004.png"),
        Finding("exact_duplicate", w, "exact duplicate: copy of train/circle/circle_000_copy.png (identical bytes; "
                "group of 2)", path="train/circle/circle_000.png", label="circle", split="train", group_id=2),
        Finding("near_duplicate", w, "near duplicate: copy of train/square/square_002_resized.png (similarity "
                "0.999, hash+embedding, perceptual+semantic; group of 3)", path="train/square/square_002.png",
                label="square", split="train", group_id=3, score=0.99),
        Finding("class_overlap", w, "classes 'circle' and 'hexagon' overlap: 40% of their images sit nearer the "
                "other class", classes=("circle", "hexagon"), score=0.4),
        Finding("ambiguous", w, "evidence split between 2 classes (star 0.57, triangle 0.39)",
                path="train/triangle/two_shapes_triangle_star_1.png", label="triangle", split="train",
                classes=("triangle", "star"), score=0.677),
        Finding("outlier", w, "far from every class: mean cosine distance 0.768 to the nearest members of the "
                "closest, class 'circle', above the outlier threshold 0.227 (typical 0.135)",
                path="train/square/blank_black.png", label="square", split="train", score=10.1),
    ]
    for n, (given, suggested) in enumerate((("star", "square"), ("circle", "triangle"), ("triangle", "circle"))):
        findings.append(Finding(
            "label_error", w, f"labelled '{given}' but looks like '{suggested}' (out-of-sample probability 0.89 vs "
            f"0.00 for the given label)", path=f"train/{given}/mislabelled_{suggested}_{n}.png", label=given,
            split="train", suggested_label=suggested, score=0.997 - n / 100))
    for n, kind in enumerate(("blurry", "dark", "greyscale", "letterboxed", "low_information", "odd_aspect_ratio",
                              "odd_size", "overexposed", "quality_shortcut")):
        findings.append(Finding(kind, i, f"{kind}: a measure 0.126, dataset median 1.36 (11.9 robust SD below)",
                                path=f"train/triangle/{kind}_triangle_{n}.png", label="triangle", split="train",
                                score=11.9))
    return findings


def _quality_everywhere() -> dict[str, object]:
    kinds = ("blurry", "dark", "greyscale", "letterboxed", "low_information", "odd_aspect_ratio", "odd_size",
             "overexposed")
    per_class = {name: {"images": 50, **dict.fromkeys(kinds, 1)} for name in ("circle", "square", "triangle")}
    return {"checks": {"image_quality": {"per_class": per_class}},
            "dataset": {"root": "/data/shapes", "files": 60, "readable": 59, "classes": ["circle", "square"],
                        "counts": {"train": {"circle": 30, "square": 29}}}}


def _assert_fits(text: str, width: int, findings: list[Finding]) -> None:
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines), max(lines, key=len)
    assert "…" not in text  # nothing cut short
    words = set(text.split())
    for finding in findings:
        if finding.path:
            assert finding.path in words, finding.path  # whole, on one line
        if finding.suggested_label:
            assert f"{finding.label} → {finding.suggested_label}" in text
        # Wrapped between words, never inside one ("circl/e"): every word of the message is there whole.
        assert set(finding.message.split()) <= words, finding.message
    assert "classes triangle, star" in text  # the ambiguous image's competing classes


@pytest.mark.parametrize("width", [80, 100, 120])
def test_every_kind_reads_whole_at_each_width(tmp_path: Path, width: int) -> None:
    findings = _every_kind()
    options = ReportOptions(width=width, top=0)
    text = TerminalRenderer().render(prepare(results_folder(tmp_path, findings, _quality_everywhere()), options),
                                     options)
    _assert_fits(text, width, findings)
    # Class-level findings name their classes where a path would be.
    assert "circle / hexagon" in text and "Star / star" in text


@pytest.mark.parametrize("width", [80, 100, 120])
def test_the_cli_writes_for_columns_when_piped(tmp_path: Path, width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    findings = _every_kind()
    results_folder(tmp_path, findings, _quality_everywhere())
    monkeypatch.setenv("COLUMNS", str(width))
    done = run_cli("report", str(tmp_path), "--top", "0")
    assert done.returncode == 0, done.stderr
    _assert_fits(done.stdout, width, findings)
    assert max(len(line) for line in done.stdout.splitlines()) > width - 10  # the width is used, not 80 or 120


def test_a_file_without_columns_is_written_120_wide(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results_folder(tmp_path, _every_kind(), _quality_everywhere())
    monkeypatch.delenv("COLUMNS", raising=False)
    done = run_cli("report", str(tmp_path), "--top", "0")
    assert max(len(line) for line in done.stdout.splitlines()) == 120


def test_a_quality_table_too_wide_becomes_a_list_of_classes(tmp_path: Path) -> None:
    options = ReportOptions(width=80)
    text = TerminalRenderer().render(prepare(results_folder(tmp_path, [], _quality_everywhere()), options), options)
    section = text.split("Image quality by class")[1]
    # A class per line, its counts wrapped under it, indented.
    assert "\n circle (50 images): blurry 1, dark 1, greyscale 1, letterboxed 1,\n   low_information 1," in section
    wide = ReportOptions(width=160)
    table = TerminalRenderer().render(prepare(results_folder(tmp_path, [], _quality_everywhere()), wide), wide)
    assert "┃ class" in table and "(50 images)" not in table


def test_a_check_filter_shows_only_what_it_asks_for(tmp_path: Path) -> None:
    results_folder(tmp_path, _every_kind(), _quality_everywhere())
    options = ReportOptions(width=120, checks=("near_duplicate",), top=0)
    text = TerminalRenderer().render(prepare(load_results(tmp_path), options), options)
    assert "near_duplicate: 1 finding(s)" in text and "label_error" not in text
    assert "Image quality by class" not in text and "Classes in train" not in text
    for wanted in (("dark",), ("image_quality",)):
        asked = ReportOptions(width=120, checks=wanted)
        assert "Image quality by class" in TerminalRenderer().render(prepare(load_results(tmp_path), asked), asked)
