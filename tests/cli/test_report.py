"""``audit report``: where each format goes, its format names, and Ctrl-C or a reader leaving early."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import get_args

import pytest

from auditor.cli.gate import GateFormatName
from auditor.cli.report import ReportFormatName
from auditor.report import ReportFormat
from auditor.report.gate_render import GateFormat
from tests.cli.conftest import with_reader_gone
from tests.conftest import run_cli

audit = run_cli


def test_the_cli_names_every_report_format() -> None:
    assert get_args(ReportFormatName) == tuple(f.value for f in ReportFormat)


def test_html_goes_into_the_results_folder_unless_an_output_is_given(passing_results: Path, tmp_path: Path) -> None:
    results = shutil.copytree(passing_results, tmp_path / "results")
    done = audit("report", str(results), "--format", "html")
    assert done.returncode == 0, done.stderr
    assert (results / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    # Unwrapped: off a terminal rich still breaks the line at 80 columns.
    assert done.stdout.replace("\n", "") == f"report written to {results / 'report.html'}"
    markdown = audit("report", str(results), "-f", "markdown", "--output", str(tmp_path / "r.md"))
    assert markdown.returncode == 0 and markdown.stdout.replace("\n", "") == f"report written to {tmp_path / 'r.md'}"
    assert (tmp_path / "r.md").read_text(encoding="utf-8").startswith("#")
    to_stdout = audit("report", str(results), "-f", "markdown")
    assert to_stdout.returncode == 0 and to_stdout.stdout == (tmp_path / "r.md").read_text(encoding="utf-8")


def test_a_reader_leaving_early_is_no_error_for_report(passing_results: Path) -> None:
    report = with_reader_gone("report", str(passing_results))
    assert report.returncode == 0 and report.stderr == "", report.stderr


def test_ctrl_c_in_report_is_one_line_and_exit_130(passing_results: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import auditor.report

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(auditor.report, "render_results", interrupted)
    result = run_cli("report", str(passing_results))
    assert result.returncode == 130, result.stdout
    assert result.stderr.strip() == "interrupted: no report was written", result.stderr


def test_the_spelled_out_formats_are_the_renderers_formats() -> None:
    assert set(get_args(ReportFormatName)) == {fmt.value for fmt in ReportFormat}
    assert set(get_args(GateFormatName)) == {fmt.value for fmt in GateFormat}
