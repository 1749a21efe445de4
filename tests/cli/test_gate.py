"""``audit gate``: the verdict in each format, to stdout or a file, its exit code, and Ctrl-C or a reader
leaving early."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from auditor.cli.gate import apply_gate
from auditor.core.config import GateConfig
from tests.cli.conftest import with_reader_gone
from tests.conftest import run_cli

audit = run_cli


def _console() -> tuple[Console, io.StringIO]:
    text = io.StringIO()
    return Console(file=text, width=200, color_system=None), text


def test_apply_gate_writes_the_format_asked_and_tells_the_console_the_verdict(
    results_with_findings: Path, passing_results: Path, tmp_path: Path
) -> None:
    console, text = _console()
    assert not apply_gate(results_with_findings, GateConfig(), None, "json", tmp_path / "v.json", console)
    verdict = json.loads((tmp_path / "v.json").read_text(encoding="utf-8"))
    assert verdict["passed"] is False and verdict["counted_per_check"] == {"exact_duplicate": 2, "unreadable": 1}
    assert text.getvalue().strip().splitlines()[-1].startswith("gate FAILED: 2 of 3 rules failed")
    console, text = _console()
    assert apply_gate(passing_results, GateConfig(), None, "text", None, console)
    assert "gate passed" in text.getvalue().lower()


def test_the_exit_code_is_the_verdict_and_json_goes_to_stdout(results_with_findings: Path,
                                                              passing_results: Path) -> None:
    failed = audit("gate", str(results_with_findings), "--format", "json")
    assert failed.returncode == 1 and failed.stderr == ""
    assert json.loads(failed.stdout)["passed"] is False
    passed = audit("gate", str(passing_results), "-f", "json")
    assert passed.returncode == 0 and json.loads(passed.stdout)["passed"] is True


def test_a_reader_leaving_early_keeps_the_gate_verdict_and_prints_nothing(passing_results: Path) -> None:
    for fmt in ("text", "json"):
        gate = with_reader_gone("gate", str(passing_results), "--format", fmt)
        assert gate.returncode == 0, (fmt, gate.stderr)  # typer alone exits 1 ("gate failed") on EPIPE
        assert gate.stderr == "", gate.stderr


def test_ctrl_c_in_gate_is_one_line_and_exit_130(passing_results: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import auditor.actions.gate

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(auditor.actions.gate, "evaluate", interrupted)
    result = run_cli("gate", str(passing_results))
    assert result.returncode == 130, result.stdout
    assert result.stderr.strip() == "interrupted: no verdict was given", result.stderr
