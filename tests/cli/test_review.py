"""``audit review`` from options: the decision it writes, and the requests it refuses with one line."""

from __future__ import annotations

import io
import tomllib
from pathlib import Path

import pytest
from rich.console import Console

from auditor.cli.review import review_command
from tests.conftest import draw_shape, run_cli, write_class_folder
from tests.safety import assert_no_control_characters

audit = run_cli
COPY = "circle/circle_copy.png"  # an exact copy in the results_with_findings fixture


def test_a_relabel_is_written_to_the_decisions_file(
    results_with_findings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "decisions.toml"
    review_command(results_with_findings, relabel=True, check=["exact_duplicate"], path=COPY, label="square",
                   who="me", expires="2999-01-31", decisions=target)
    [decision] = tomllib.loads(target.read_text(encoding="utf-8"))["decision"]
    assert (decision["action"], decision["check"], decision["path"]) == ("relabel", "exact_duplicate", COPY)
    assert (decision["label"], decision["new_label"], decision["who"]) == ("circle", "square", "me")
    assert str(decision["expires"]) == "2999-01-31" and decision["reason"] == "relabelled in review"
    printed = capsys.readouterr().out.replace("\n", "")  # off a terminal rich breaks the line at 80 columns
    assert printed.startswith(f"relabel exact_duplicate {COPY} -> square (me") and printed.endswith(
        f"written to {target}")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--accept", "--relabel", "--check", "exact_duplicate", "--path", COPY],
         "--accept and --relabel exclude each other"),
        (["--accept", "--path", COPY, "--reason", "r"], "--accept/--relabel need one --check KIND and --path P"),
        (["--accept", "--check", "exact_duplicate", "--check", "unreadable", "--path", COPY, "--reason", "r"],
         "--accept/--relabel need one --check KIND and --path P"),
        (["--accept", "--check", "exact_duplicate", "--path", COPY, "--label", "square", "--reason", "r"],
         "--label only applies with --relabel"),
        (["--accept", "--check", "exact_duplicate", "--path", COPY],
         "--accept needs --reason (it is the record of why the finding is fine)"),
        (["--relabel", "--check", "exact_duplicate", "--path", COPY],
         f"`exact_duplicate` for {COPY} suggests no label; pass --label"),
        (["--accept", "--check", "label_error", "--path", COPY, "--reason", "r"],
         f"no `label_error` finding for {COPY} in {{results}} (it has: exact_duplicate)"),
        (["--accept", "--expires", "soon"], "--expires must be a date YYYY-MM-DD, got 'soon'"),
        ([], "nothing to do: pass --accept or --relabel with --check and --path, or --interactive"),
    ],
    ids=["both", "no-check", "two-checks", "label-on-accept", "no-reason", "no-suggestion", "no-such-finding",
         "bad-date", "nothing"],
)
def test_a_bad_request_is_one_line_exit_2_and_writes_nothing(
    results_with_findings: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    target = tmp_path / "decisions.toml"
    result = audit("review", str(results_with_findings), "--decisions", str(target), *extra)  # stdin: no TTY
    assert result.returncode == 2
    assert result.stderr == f"error: {message.format(results=results_with_findings)}\n"
    assert not target.exists()


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
