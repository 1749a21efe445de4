"""``audit export`` at the terminal: its targets, and what it says about the files it wrote."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from auditor.cli.export import ExportTarget, export_command
from tests.conftest import run_cli, write_class_folder
from tests.safety import assert_no_control_characters


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export")
    write_class_folder(root / "data", per_class=3)
    done = run_cli("scan", str(root / "data"), "--out", str(root / "out"), "--encoder", "builtin", "--workers", "0",
                   "--checks", "unreadable", "--quiet")
    assert done.returncode == 0, done.stderr
    return root / "out"


def test_an_unknown_target_is_one_line_naming_every_target(results: Path) -> None:
    result = run_cli("export", str(results), "--to", "csv")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert all(target in result.stderr for target in get_args(ExportTarget))


def test_the_written_paths_are_shown_escaped(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export_command(results, to="label-studio", out=tmp_path / "tasks\x1b]0;x\x07.json")
    shown = capsys.readouterr().out
    assert "tasks\\x1b]0;x\\x07.json" in shown and "tasks\\x1b]0;x\\x07.label_config.xml" in shown
    assert_no_control_characters(shown)
