"""``audit fix`` at the terminal: what it says about the files it wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.cli.fix import fix_command
from tests.conftest import run_cli, write_class_folder
from tests.safety import assert_no_control_characters


def test_the_written_paths_are_shown_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data\u202e"
    write_class_folder(data, per_class=3)
    (data / "circle" / "broken.png").write_bytes(b"not an image")
    done = run_cli("scan", str(data), "--out", str(tmp_path / "out"), "--encoder", "builtin", "--workers", "0",
                   "--checks", "unreadable", "--quiet")
    assert done.returncode == 0, done.stderr
    capsys.readouterr()
    fix_command(tmp_path / "out", out=tmp_path / "clean\x1b[2J.csv")
    shown = capsys.readouterr().out
    assert "clean\\x1b[2J.csv" in shown and "data\\u202e" in shown
    assert_no_control_characters(shown)
    assert (tmp_path / "clean\x1b[2J.csv").read_text().count("\n") == 1 + 9  # header and the readable images
