"""Reviewed decisions: the file's model, waiving in the scan, the gate honouring them, `audit review`."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from auditor.cli.app import app
from auditor.core.errors import ConfigError
from auditor.results.decisions import DECISIONS_FILE, load_decisions
from auditor.results.findings import findings_table
from auditor.results.outputs import TableWriter, atomic_write
from auditor.results.reading import finding_from_row, load_results
from tests.conftest import draw_shape, run_cli, write_split_shapes

runner = CliRunner()


def dataset_with_a_copy(root: Path) -> Path:
    """train/ and test/ with distinct shapes, plus one exact copy inside train/circle."""
    write_split_shapes(root)
    shutil.copy(root / "train" / "circle" / "circle_002.png", root / "train" / "circle" / "circle_002_copy.png")
    return root


def scan(data: Path, out: Path, *extra: str) -> Any:
    result = runner.invoke(app, ["scan", str(data), "--out", str(out), "--encoder", "builtin", "--workers", "0",
                                 "--quiet", "--checks", "unreadable,duplicates", *extra])
    assert result.exit_code == 0, result.output
    return load_results(out)


def gate(results: Path, *extra: str) -> Any:
    return runner.invoke(app, ["gate", str(results), "--format", "json", *extra])


def test_accepted_duplicate_stops_failing_the_gate_and_survives_a_rename(tmp_path: Path) -> None:
    data = dataset_with_a_copy(tmp_path / "data")
    first = scan(data, tmp_path / "r1")
    assert set(first.findings["check"]) == {"exact_duplicate"}
    assert not first.findings["waived"].any()
    assert gate(tmp_path / "r1").exit_code == 1

    result = runner.invoke(app, ["review", str(tmp_path / "r1"), "--accept", "--check", "exact_duplicate",
                                 "--path", "train/circle/circle_002_copy.png", "--reason", "kept on purpose",
                                 "--who", "tester"])
    assert result.exit_code == 0, result.output
    decisions_file = tmp_path / DECISIONS_FILE  # beside the dataset, never in it
    [decision] = load_decisions(decisions_file)
    assert (decision.action, decision.who, decision.reason) == ("accept", "tester", "kept on purpose")
    assert decision.sha256 == decision.other_sha256  # the pair's partner is an exact copy

    # The gate honours the file as it is now, before any re-scan, and lists what it waived.
    result = gate(tmp_path / "r1")
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.output)
    assert verdict["counted_findings"] == 0 and verdict["waived_findings"] == 2
    assert {w["waiver"]["reason"] for w in verdict["waived"]} == {"kept on purpose"}
    # So do reports and `audit fix`: the accepted copy stays in the cleaned manifest.
    report = runner.invoke(app, ["report", str(tmp_path / "r1")]).output
    assert "Waived by reviewed decisions (not counted): 2" in report
    fixed = runner.invoke(app, ["fix", str(tmp_path / "r1"), "--out", str(tmp_path / "m.csv")])
    assert fixed.exit_code == 0, fixed.output
    kept = set(pd.read_csv(tmp_path / "m.csv")["path"])
    assert {"train/circle/circle_002.png", "train/circle/circle_002_copy.png"} <= kept

    # Content-keyed: renamed files keep their waiver in a re-scan, which marks (not drops) the findings.
    (data / "train" / "circle" / "circle_002_copy.png").rename(data / "train" / "circle" / "renamed.png")
    (data / "train" / "circle" / "circle_002.png").rename(data / "train" / "circle" / "moved.png")
    second = scan(data, tmp_path / "r2")
    dupes = second.findings[second.findings["check"] == "exact_duplicate"]
    assert set(dupes["path"]) == {"train/circle/renamed.png", "train/circle/moved.png"}
    assert dupes["waived"].all()
    assert json.loads(dupes["waiver"].iloc[0])["who"] == "tester"
    assert second.run["decisions"]["waived_findings"] == 2 and not second.run["decisions"]["stale"]
    text = runner.invoke(app, ["gate", str(tmp_path / "r2")])
    assert text.exit_code == 0 and "waived by reviewed decisions" in text.output
    markdown = runner.invoke(app, ["gate", str(tmp_path / "r2"), "--format", "markdown"]).output
    assert "<details><summary>Waived by reviewed decisions, not counted (2)</summary>" in markdown
    # Reports keep waived findings out of the check sections, in a collapsed section of their own.
    report_md = runner.invoke(app, ["report", str(tmp_path / "r2"), "--format", "markdown"]).output
    assert "Waived by reviewed decisions (not counted): 2" in report_md and "kept on purpose" in report_md
    assert "<b>exact_duplicate</b>" not in report_md
    terminal = runner.invoke(app, ["report", str(tmp_path / "r2")]).output
    assert "Waived by reviewed decisions (not counted): 2" in terminal
    runner.invoke(app, ["report", str(tmp_path / "r2"), "--format", "html", "--output", str(tmp_path / "r.html")])
    page = (tmp_path / "r.html").read_text()
    assert '<section id="waived">' in page and "kept on purpose" in page


def test_stale_and_expired_decisions_are_reported_and_do_not_waive(tmp_path: Path) -> None:
    data = dataset_with_a_copy(tmp_path / "data")
    scan(data, tmp_path / "r1")
    assert runner.invoke(app, ["review", str(tmp_path / "r1"), "--accept", "--check", "exact_duplicate", "--path",
                               "train/circle/circle_002_copy.png", "--reason", "old", "--expires",
                               "2020-01-01"]).exit_code == 0
    # A decision about an image that is gone (hand-written, as a teammate's entry would be).
    gone = tmp_path / "data" / "train" / "square" / "square_001.png"
    sha = load_results(tmp_path / "r1").images.set_index("path").at["train/square/square_001.png", "sha256"]
    with (tmp_path / DECISIONS_FILE).open("a", encoding="utf-8") as handle:
        handle.write(f'\n# removed later\n[[decision]]\ncheck = "outlier"\nsha256 = "{sha}"\n'
                     f'path = "train/square/square_001.png"\nreason = "fine"\nwho = "x"\n'
                     f"when = 2026-01-01T00:00:00Z\n")
    gone.unlink()
    second = scan(data, tmp_path / "r2")
    assert not second.findings["waived"].any()  # expired: no waiver
    record = second.run["decisions"]
    assert len(record["expired"]) == 1 and len(record["stale"]) == 1
    assert "train/square/square_001.png" in record["stale"][0]
    assert any("stale decision" in w for w in second.run["warnings"])
    assert any("expired" in w for w in second.run["warnings"])
    assert gate(tmp_path / "r2").exit_code == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[decision]]\ncheck = "x"\n', "decision 1 sha256: Field required"),
        ('[[decision]]\ncheck = "x"\nsha256 = "abc"\nreason = "r"\nwho = "w"\nwhen = 2026-01-01\n', "sha256"),
        ('[[decison]]\n', "decison: Extra inputs are not permitted"),
        ('[[decision]]\nnot toml', "is not valid TOML"),
        (f'[[decision]]\ncheck = "outlier"\nsha256 = "{"0" * 64}"\nreason = "r"\nwho = "w"\n'
         'when = 2026-01-01T00:00:00Z\nexpires = 1767225600\n', "expires: Value error, must be a date (YYYY-MM-DD)"),
        (f'[[decision]]\naction = "relabel"\ncheck = "label_error"\nsha256 = "{"0" * 64}"\nnew_label = "a\\nb"\n'
         'reason = "r"\nwho = "w"\nwhen = 2026-01-01T00:00:00Z\n',
         "new_label: Value error, label 'a\\nb' contains control"),
        ("decision = " + "[" * 100_000 + "]" * 100_000 + "\n", "is not valid TOML: arrays or tables nested too deeply"),
    ],
    ids=["no-sha", "bad-sha", "typo-table", "bad-toml", "integer-expires", "newline-label", "nested-100k-deep"],
)
def test_invalid_decisions_file_is_one_line_exit_2(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "d.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_decisions(path)
    assert message in str(error.value) and "\n" not in str(error.value)
    data = tmp_path / "data"
    (data / "a").mkdir(parents=True)
    draw_shape("circle", 1).save(data / "a" / "x.png")
    result = runner.invoke(app, ["scan", str(data), "--out", str(tmp_path / "out"), "--encoder", "builtin",
                                 "--workers", "0", "--quiet", "--decisions", str(path)])
    assert result.exit_code != 0 and isinstance(result.exception, ConfigError)


def test_a_folder_given_as_the_decisions_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"^decisions file {tmp_path} is a folder; give a file$"):
        load_decisions(tmp_path)


def test_review_writes_atomically_keeps_comments_and_refuses_bad_requests(tmp_path: Path) -> None:
    data = dataset_with_a_copy(tmp_path / "data")
    scan(data, tmp_path / "r1")
    target = tmp_path / "mine.toml"
    target.write_text("# team decisions, reviewed weekly\n")
    common = ["review", str(tmp_path / "r1"), "--decisions", str(target), "--check", "exact_duplicate"]
    assert runner.invoke(app, [*common, "--accept", "--path", "nope.png", "--reason", "r"]).exit_code != 0
    no_reason = runner.invoke(app, [*common, "--accept", "--path", "train/circle/circle_002.png"])
    assert no_reason.exit_code != 0
    no_action = runner.invoke(app, [*common, "--path", "train/circle/circle_002.png"])  # stdin is not a TTY
    assert no_action.exit_code != 0
    ok = runner.invoke(app, [*common, "--accept", "--path", "train/circle/circle_002.png", "--reason", 'say "hi"'])
    assert ok.exit_code == 0, ok.output
    text = target.read_text()
    assert text.startswith("# team decisions, reviewed weekly\n")
    assert tomllib.loads(text)["decision"][0]["reason"] == 'say "hi"'
    assert not list(tmp_path.glob(".mine.toml.*"))  # no temporary left behind


def test_interactive_review_walks_findings_with_keys(tmp_path: Path) -> None:
    data = dataset_with_a_copy(tmp_path / "data")
    results = scan(data, tmp_path / "r1")
    # A label error to relabel, written into the results as the label_errors check would.
    findings = results.findings.copy()
    row = findings.iloc[0].to_dict()
    sha = results.images.set_index("path").at["train/square/square_003.png", "sha256"]
    row.update(check="label_error", path="train/square/square_003.png", label="square", suggested_label="circle",
               other_path=None, sha256=sha, score=0.99, group_id=None, message="looks like circle")
    objects = [finding_from_row(r) for r in findings.to_dict("records")] + [finding_from_row(row)]
    # The edited findings join the scan's result set, so they carry its run id (readers refuse mixed sets).
    atomic_write(tmp_path / "r1" / "findings.parquet",
                 TableWriter(findings_table(objects)).stamped(results.run["run_id"]))

    target = tmp_path / "d.toml"
    # Kinds in report order: label_error first, then the two exact duplicates. r=relabel, s=skip, a=accept (+reason).
    result = runner.invoke(app, ["review", str(tmp_path / "r1"), "--decisions", str(target), "--interactive",
                                 "--who", "me"], input="r\n\ns\na\nsame photo\n")
    assert result.exit_code == 0, result.output
    thumbnails = sorted((tmp_path / "r1" / "review-thumbnails").glob("*.png"))
    # One per content and kind shown (the two copies of the exact pair share theirs); a pair shows both images.
    assert [t.name.split("-")[0] for t in thumbnails] == ["exact_duplicate", "label_error"]
    assert all(str(t) in result.output for t in thumbnails)
    assert Image.open(thumbnails[0]).width > Image.open(thumbnails[1]).width
    decisions = load_decisions(target)
    assert [(d.action, d.check) for d in decisions] == [("relabel", "label_error"), ("accept", "exact_duplicate")]
    assert decisions[0].new_label == "circle" and decisions[0].label == "square"
    assert decisions[1].reason == "same photo"
    assert "accepted 1, relabelled 1, skipped 1" in result.output
    # Decided findings are not offered again (accepting one copy of an exact pair decides both); q quits.
    again = runner.invoke(app, ["review", str(tmp_path / "r1"), "--decisions", str(target), "-i"], input="q\n")
    assert again.exit_code == 0 and "nothing to review" in again.output
    target.write_text("")
    quit_early = runner.invoke(app, ["review", str(tmp_path / "r1"), "--decisions", str(target), "-i"], input="q\n")
    assert quit_early.exit_code == 0 and "1/3 label_error" in quit_early.output and "2/3" not in quit_early.output
    assert load_decisions(target) == []
    # Standard input ending mid-review (a pipe, a closed terminal) stops it like q, keeping what was decided.
    ended = runner.invoke(app, ["review", str(tmp_path / "r1"), "--decisions", str(target), "-i"], input="s\na\n")
    assert ended.exit_code == 0, ended.output
    assert "input ended: review stopped" in ended.output and "skipped 1" in ended.output
    assert load_decisions(target) == []
    assert pd.read_parquet(tmp_path / "r1" / "findings.parquet")["waived"].dtype == bool


def test_a_decision_about_a_kind_no_check_produces_is_refused_with_a_did_you_mean(tmp_path: Path) -> None:
    data = dataset_with_a_copy(tmp_path / "data")
    results = scan(data, tmp_path / "r1")
    sha = results.images.set_index("path").at["train/circle/circle_002_copy.png", "sha256"]
    decisions = tmp_path / "d.toml"
    decisions.write_text(f'[[decision]]\ncheck = "exact_duplicates"\nsha256 = "{sha}"\nreason = "r"\nwho = "w"\n'
                         "when = 2026-01-01T00:00:00Z\n")
    expected = "unknown finding kind 'exact_duplicates' (did you mean 'exact_duplicate'?)"
    gated = run_cli("gate", str(tmp_path / "r1"), "--decisions", str(decisions))
    assert gated.returncode == 2 and expected in gated.stderr, gated.stderr
    rescan = runner.invoke(app, ["scan", str(data), "--out", str(tmp_path / "r2"), "--encoder", "builtin",
                                 "--workers", "0", "--quiet", "--checks", "unreadable", "--decisions", str(decisions)])
    assert isinstance(rescan.exception, ConfigError) and expected in str(rescan.exception)


def test_review_refuses_a_label_with_control_characters(tmp_path: Path) -> None:
    scan(dataset_with_a_copy(tmp_path / "data"), tmp_path / "r1")
    result = run_cli("review", str(tmp_path / "r1"), "--relabel", "--check", "exact_duplicate", "--path",
                     "train/circle/circle_002.png", "--label", "cat\ndog.png,x,train")
    assert result.returncode == 2 and "--label: label" in result.stderr and "control characters" in result.stderr
    assert not (tmp_path / DECISIONS_FILE).exists()
