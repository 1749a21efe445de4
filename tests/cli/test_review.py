"""``audit review`` at the terminal: every piece of data text it echoes is shown escaped."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from tests.conftest import draw_shape, run_cli, write_class_folder
from tests.safety import assert_no_control_characters

HOSTILE_CLASS = "\u202egnp.exe"


@pytest.fixture(scope="module")
def hostile_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Results whose one finding is an unreadable file in a class named with a right-to-left override."""
    root = tmp_path_factory.mktemp("review")
    write_class_folder(root / "data", per_class=3)
    (root / "data" / HOSTILE_CLASS).mkdir()
    draw_shape("circle", 7).save(root / "data" / HOSTILE_CLASS / "a.png")
    (root / "data" / HOSTILE_CLASS / "\u202ebroken.png").write_bytes(b"not an image")
    done = run_cli("scan", str(root / "data"), "--out", str(root / "out"), "--encoder", "builtin", "--workers", "0",
                   "--checks", "unreadable", "--quiet")
    assert done.returncode == 0, done.stderr
    return root / "out"


def test_the_confirmation_shows_who_and_the_path_escaped(hostile_results: Path, tmp_path: Path) -> None:
    result = run_cli("review", str(hostile_results), "--accept", "--check", "unreadable",
                     "--path", f"{HOSTILE_CLASS}/\u202ebroken.png", "--reason", "known",
                     "--who", "eve\x1b]0;pwned\x07\x1b[2J", "--decisions", str(tmp_path / "decisions.toml"))
    assert result.returncode == 0, result.stderr
    assert "eve\\x1b]0;pwned\\x07\\x1b[2J" in result.stdout and "\\u202ebroken.png" in result.stdout
    assert_no_control_characters(result.stdout + result.stderr)


def test_interactive_review_shows_paths_and_labels_escaped(
    hostile_results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import auditor.cli.review as review
    from auditor.results.reading import load_results

    monkeypatch.setattr(review, "_answer", lambda text, **options: "s")
    screen = io.StringIO()
    review._review_interactively(load_results(hostile_results), tmp_path / "decisions.toml", (), 5, "me", None,
                                 Console(file=screen, width=200))
    shown = screen.getvalue()
    assert "\\u202egnp.exe/\\u202ebroken.png" in shown and "label:     \\u202egnp.exe" in shown
    assert_no_control_characters(shown)
