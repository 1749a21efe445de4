"""A gate verdict as terminal text, GitHub Markdown and JSON: each says pass or fail, which rules failed and
which findings are behind them."""

from __future__ import annotations

import json

from auditor.actions.gate import RuleResult, RuleStatus, Verdict
from auditor.report.gate_render import SHOWN_PER_SECTION, GateFormat, render
from auditor.results.findings import Finding, Severity
from tests.safety import assert_markdown_safe

BROKEN = [Finding(check="unreadable", severity=Severity.ERROR, message=f"unreadable: empty file {i}",
                  path=f"cat/{i}.png") for i in range(SHOWN_PER_SECTION + 2)]
HOSTILE = Finding(check="split_leakage", severity=Severity.ERROR, message="<script>x</script> @team",
                  path="[a](http://e.com).png", other_path="b|c.png", label="*cat*")


def _verdict() -> Verdict:
    unreadable = RuleResult("max_unreadable", "at most 0 unreadable files", RuleStatus.FAIL, 0,
                            len(BROKEN), f"{len(BROKEN)} unreadable", tuple(BROKEN))
    leakage = RuleResult("max_split_leakage", "at most 0 `split_leakage` findings", RuleStatus.FAIL, 0, 1,
                         "1 leaked", (HOSTILE,))
    imbalance = RuleResult("max_imbalance_ratio", "imbalance ratio at most 10", RuleStatus.SKIPPED, 10, None,
                           "the class_imbalance check did not run")
    return Verdict(False, (unreadable, leakage, imbalance), "results", None, 60, (*BROKEN, HOSTILE),
                   ("the class_imbalance check did not run",), "builtin:v2 (not pretrained, requested clip)")


def test_json_lists_every_rule_and_its_findings() -> None:
    data = json.loads(render(_verdict(), GateFormat.JSON))
    assert data["passed"] is False and data["encoder"] == "builtin:v2 (not pretrained, requested clip)"
    assert [(r["name"], r["status"]) for r in data["rules"]] == [
        ("max_unreadable", "fail"), ("max_split_leakage", "fail"), ("max_imbalance_ratio", "skipped")]
    assert len(data["rules"][0]["offending"]) == len(BROKEN)  # far below the cap: nothing left out
    assert data["rules"][0]["offending_left_out"] == 0 and data["counted_left_out"] == 0
    assert data["counted_per_check"] == {"split_leakage": 1, "unreadable": len(BROKEN)}


def test_json_lists_findings_up_to_the_cap_and_counts_the_rest() -> None:
    capped = json.loads(render(_verdict(), GateFormat.JSON, listed=2))
    assert [f["path"] for f in capped["rules"][0]["offending"]] == ["cat/0.png", "cat/1.png"]
    assert capped["rules"][0]["offending_left_out"] == len(BROKEN) - 2
    assert len(capped["counted"]) == 2 and capped["counted_left_out"] == len(BROKEN) + 1 - 2
    assert capped["counted_findings"] == len(BROKEN) + 1  # the counts stay whole
    everything = json.loads(render(_verdict(), GateFormat.JSON, listed=None))
    assert len(everything["counted"]) == len(BROKEN) + 1 and everything["counted_left_out"] == 0


def test_text_names_the_failure_and_cuts_long_lists() -> None:
    text = render(_verdict(), GateFormat.TEXT)
    assert f"gate FAILED: 2 of 3 rules failed, {len(BROKEN) + 1} findings to fix (60 findings)" in text
    assert "cat/0.png: unreadable: empty file 0" in text
    assert "…and 2 more" in text and f"cat/{SHOWN_PER_SECTION}.png" not in text
    assert "note: the class_imbalance check did not run" in text
    assert "encoder: builtin:v2 (not pretrained, requested clip)" in text


def test_markdown_says_what_failed_and_keeps_data_as_text() -> None:
    text = render(_verdict(), GateFormat.MARKDOWN)
    assert text.startswith("## Dataset audit gate: ❌ failed\n")
    assert f"2 of 3 rules failed, {len(BROKEN) + 1} findings to fix." in text
    assert "| at most 0 `split_leakage` findings | ❌ fail | 1 | 1 leaked |" in text
    assert "| imbalance ratio at most 10 | ⚠️ skipped |  | the class_imbalance check did not run |" in text
    assert "…and 2 more (see `audit gate --format json`)." in text
    assert_markdown_safe(text)


def test_a_passing_verdict_says_so_in_every_format() -> None:
    passed = Verdict(True, (), "results", "base", 3, (), encoder="clip:ViT-B-32 (pretrained)")
    assert render(passed, GateFormat.MARKDOWN).startswith("## Dataset audit gate: ✅ passed\n")
    assert "gate passed: 0 new of 3 findings (baseline base)" in render(passed, GateFormat.TEXT)
    assert json.loads(render(passed, GateFormat.JSON))["passed"] is True


def test_text_shows_quoted_names_without_markdown_backticks() -> None:
    text = render(_verdict(), GateFormat.TEXT)
    assert "at most 0 split_leakage findings" in text and "`" not in text
    assert "`split_leakage`" in render(_verdict(), GateFormat.MARKDOWN)  # Markdown keeps its code span
