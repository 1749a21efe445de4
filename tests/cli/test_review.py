"""``audit review`` from options: the decision it writes, and the requests it refuses with one line."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from auditor.cli.review import review_command
from tests.conftest import run_cli

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
