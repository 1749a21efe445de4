"""The CLI's Rich output: a progress bar per stage, and the end-of-scan summary built from a ScanResult."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from rich.console import Console

from auditor.checks import check_record
from auditor.cli.console import RichObserver, print_summary
from auditor.core.encoder_facts import EncoderInfo
from auditor.results.findings import Finding, Severity
from auditor.scan import ScanResult


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, force_terminal=False, color_system=None), out


def test_each_stage_draws_its_bar_with_the_count_done() -> None:
    console, out = _console()
    observer = RichObserver(console)
    observer.stage("Embedding", 4)
    observer.advance(3)
    observer.advance()
    observer.done()
    assert "Embedding" in out.getvalue() and "4/4" in out.getvalue()


def test_a_disabled_observer_draws_nothing() -> None:
    console, out = _console()
    observer = RichObserver(console, enabled=False)
    observer.stage("Embedding", 4)
    observer.advance(4)
    observer.step("sub-step")
    observer.done()
    assert out.getvalue() == ""


def _result(tmp_path: Path) -> ScanResult:
    run = {
        "dataset": {"files": 10, "readable": 9, "classes": ["cat", "dog"], "splits": ["test", "train"]},
        "embedding": {"embedded": 7, "from_cache": 2},
        "checks": {"unreadable": {"count": 1}, "duplicates": {}, "outliers": {"skipped": "too few images"}},
        "check_info": check_record(),
        "decisions": {"waived_findings": 2, "file": "team[1].toml"},
    }
    findings = [Finding(check="unreadable", severity=Severity.ERROR, message="empty file", path="a.png"),
                Finding(check="near_duplicate", severity=Severity.WARNING, message="copies", path="b.png"),
                Finding(check="near_duplicate", severity=Severity.WARNING, message="copies", path="c.png")]
    return ScanResult(tmp_path / "out", findings, pd.DataFrame(), run,
                      EncoderInfo("builtin", "builtin", "builtin:v2", 64, False), ["the encoder is weak"])


def test_the_summary_counts_findings_per_kind_and_names_skips_and_outputs(tmp_path: Path) -> None:
    console, out = _console()
    print_summary(console, _result(tmp_path))
    lines = [" ".join(line.replace("│", " ").split()) for line in out.getvalue().splitlines()]
    assert "10 files, 9 readable, 2 classes, splits: test, train" in lines
    assert "encoder: builtin:v2 (not pretrained); embedded 7, from cache 2" in lines
    assert "unreadable 1 0 0" in lines
    assert "near_duplicate 0 2 0" in lines and "exact_duplicate 0 0 0" in lines and "split_leakage 0 0 0" in lines
    assert "outliers (skipped) - - -" in lines
    assert any("the encoder is weak" in line for line in lines)
    assert any("2 finding(s) waived by reviewed decisions in team[1].toml" in line for line in lines)
    assert f"results written to {tmp_path / 'out'}" in lines


def test_paths_and_the_next_commands_are_never_broken_at_80_columns(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=False, color_system=None)
    result = _result(tmp_path / ("a-results-folder-with-a-long-name-" * 2))
    print_summary(console, result)
    folder = str(result.out_dir)
    lines = out.getvalue().splitlines()
    assert f"results written to {folder}" in lines
    assert f"next: audit report {folder} --format html · audit gate {folder}" in lines


def test_warnings_are_told_on_their_own_console_at_once_and_remembered() -> None:
    console, out = _console()
    errors, err = _console()
    observer = RichObserver(console, enabled=False, warnings_to=errors)
    told = "CLIP weights unavailable, fell back\nto the built-in descriptor"
    observer.warn(told)
    assert err.getvalue() == "warning: CLIP weights unavailable, fell back; to the built-in descriptor\n"
    assert out.getvalue() == "" and observer.warned == [told]
