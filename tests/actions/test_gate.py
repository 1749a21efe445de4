"""The CI gate: rules on synthetic results, baseline matching by content, and the CLI end to end."""

from __future__ import annotations

import json
import shutil
import typing
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from auditor.actions.gate import LISTED_FINDINGS, GateConfig, RuleStatus, evaluate, gate_rules, new_findings
from auditor.checks import REGISTRY
from auditor.cli.app import app
from auditor.cli.gate import GateFormatName
from auditor.report.gate_render import GateFormat, render_json, render_markdown, render_text
from auditor.results.findings import SCHEMA_VERSION, Finding, Severity, findings_table
from auditor.results.outputs import write_json, write_parquet
from auditor.results.reading import Results, ResultsError, load_results
from tests.conftest import run_cli, write_split_shapes

# --- Synthetic results -----------------------------------------------------------------------------


def image_rows(spec: dict[str, tuple[str, str | None]], readable: bool = True) -> list[dict[str, Any]]:
    """path -> (sha256, label) rows for images.parquet."""
    return [{"path": path, "label": label, "split": None, "sha256": sha, "readable": readable}
            for path, (sha, label) in spec.items()]


def write_results(directory: Path, findings: list[Finding], images: list[dict[str, Any]],
                  checks: dict[str, Any] | None = None, encoder: str = "builtin:v1") -> Results:
    frame = pd.DataFrame(images, columns=["path", "label", "split", "sha256", "readable"])
    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(
        {"auditor_schema_version": SCHEMA_VERSION, "auditor_table": "images"})
    write_parquet(directory / "findings.parquet", findings_table(findings))
    write_parquet(directory / "images.parquet", table)
    if checks is None:  # every registered check ran
        checks = {name: {} for name in REGISTRY}
    write_json(directory / "run.json", {"schema_version": SCHEMA_VERSION, "encoder": {"identity": encoder},
                                        "checks": checks})
    return load_results(directory)


def image_finding(check: str, path: str, sha: str, label: str | None = None,
                  other_path: str | None = None) -> Finding:
    return Finding(check=check, severity=Severity.ERROR, message=f"{check}: {path}", path=path, sha256=sha,
                   label=label, other_path=other_path)


ALL_OFF = GateConfig(max_unreadable=None, max_split_leakage=None, max_exact_duplicate=None)


def test_renamed_findings_are_not_new_but_an_extra_copy_is(tmp_path: Path) -> None:
    base = write_results(
        tmp_path / "base",
        [image_finding("exact_duplicate", "a.png", "s1"), image_finding("exact_duplicate", "b.png", "s1"),
         image_finding("unreadable", "broken.png", "s9")],
        image_rows({"a.png": ("s1", "x"), "b.png": ("s1", "x"), "broken.png": ("s9", "x")}),
    )
    current = write_results(
        tmp_path / "cur",
        [image_finding("exact_duplicate", "renamed_a.png", "s1"),
         image_finding("exact_duplicate", "b.png", "s1"),
         image_finding("exact_duplicate", "added.png", "s1"),
         image_finding("unreadable", "moved/broken.png", "s9")],
        image_rows({"renamed_a.png": ("s1", "x"), "b.png": ("s1", "x"), "added.png": ("s1", "x"),
                    "moved/broken.png": ("s9", "x")}),
    )
    added = new_findings(current, base)
    # The unchanged path b.png keeps its baseline match, so the extra member reported is a renamed/added one.
    assert [f.check for f in added] == ["exact_duplicate"]
    assert added[0].path in {"renamed_a.png", "added.png"}
    verdict = evaluate(current, GateConfig(), base)
    assert not verdict.passed
    rule = next(r for r in verdict.rules if r.name == "max_exact_duplicate")
    assert rule.status is RuleStatus.FAIL and rule.observed == 1
    unreadable = next(r for r in verdict.rules if r.name == "max_unreadable")
    assert unreadable.status is RuleStatus.PASS and unreadable.observed == 0


def test_near_duplicate_partner_content_is_part_of_the_identity(tmp_path: Path) -> None:
    images = image_rows({"a.png": ("s1", "x"), "b.png": ("s2", "x"), "c.png": ("s3", "x")})
    near_b = image_finding("near_duplicate", "a.png", "s1", other_path="b.png")
    near_c = image_finding("near_duplicate", "a.png", "s1", other_path="c.png")
    base = write_results(tmp_path / "base", [near_b], images)
    current = write_results(tmp_path / "cur", [near_c], images)
    assert [f.other_path for f in new_findings(current, base)] == ["c.png"]


def test_class_findings_match_by_classes_and_split(tmp_path: Path) -> None:
    def starved(label: str, split: str) -> Finding:
        return Finding(check="class_imbalance", severity=Severity.WARNING, message="starved", split=split,
                       classes=(label,))

    images = image_rows({"a.png": ("s1", "x")})
    base = write_results(tmp_path / "base", [starved("cat", "train")], images)
    current = write_results(tmp_path / "cur", [starved("cat", "train"), starved("cat", "test")], images)
    assert [(f.classes, f.split) for f in new_findings(current, base)] == [(("cat",), "test")]


def placed(spec: dict[str, tuple[str, str, str]]) -> list[dict[str, Any]]:
    """path -> (sha256, label, split) rows for images.parquet."""
    return [{"path": path, "label": label, "split": split, "sha256": sha, "readable": True}
            for path, (sha, label, split) in spec.items()]


def overlap(*classes: str) -> Finding:
    return Finding(check="class_overlap", severity=Severity.WARNING, message="overlap", classes=classes)


STRICT = GateConfig(max_near_duplicate=0, max_findings={"label_error": 0, "ambiguous": 0, "outlier": 0,
                                                        "class_overlap": 0})
BASE_IMAGES = {"a.png": ("s1", "cat", "train"), "b.png": ("s2", "cat", "train"), "c.png": ("s3", "dog", "val"),
               "f.png": ("s6", "cat", "train"), "g.png": ("s7", "bird", "train"), "h.png": ("s8", "fish", "train")}


def test_model_findings_count_only_where_the_pull_request_changed_something(tmp_path: Path) -> None:
    base = write_results(tmp_path / "base", [], placed(BASE_IMAGES))
    # b renamed, c moved val -> train, e added, f relabelled cat -> dog; a, g and h untouched.
    head_images = {"a.png": ("s1", "cat", "train"), "renamed_b.png": ("s2", "cat", "train"),
                   "c.png": ("s3", "dog", "train"), "e.png": ("s5", "dog", "train"), "f.png": ("s6", "dog", "train"),
                   "g.png": ("s7", "bird", "train"), "h.png": ("s8", "fish", "train")}
    churn = [image_finding("label_error", "a.png", "s1", "cat"),
             image_finding("label_error", "renamed_b.png", "s2", "cat"),
             image_finding("outlier", "g.png", "s7", "bird"), overlap("bird", "fish")]
    real = [image_finding("outlier", "c.png", "s3", "dog"), image_finding("ambiguous", "e.png", "s5", "dog"),
            image_finding("label_error", "f.png", "s6", "dog"), overlap("cat", "bird")]
    copies = [image_finding("near_duplicate", "a.png", "s1", "cat", other_path="g.png")]
    head = write_results(tmp_path / "head", churn + real + copies, placed(head_images))

    verdict = evaluate(head, STRICT, base)
    assert {(f.check, f.path, f.classes) for f in verdict.untouched} == {
        (f.check, f.path, f.classes) for f in churn}
    # Copies are facts about files, not about a refit model: they keep the baseline rule on untouched images.
    assert {(f.check, f.path, f.classes) for f in verdict.counted} == {
        (f.check, f.path, f.classes) for f in real + copies}
    failed = {rule.name: {f.path or f.classes for f in rule.offending} for rule in verdict.failed_rules}
    assert failed == {"max_near_duplicate": {"a.png"}, "max_findings.outlier": {"c.png"},
                      "max_findings.ambiguous": {"e.png"}, "max_findings.label_error": {"f.png"},
                      "max_findings.class_overlap": {("cat", "bird")}}

    refit_only = write_results(tmp_path / "refit", churn, placed(head_images))
    clean = evaluate(refit_only, STRICT, base)
    assert clean.passed and clean.counted == () and len(clean.untouched) == len(churn)
    assert evaluate(refit_only, STRICT).passed is False  # without a baseline every finding counts


def test_a_deleted_image_touches_its_class(tmp_path: Path) -> None:
    base = write_results(tmp_path / "base", [], placed(BASE_IMAGES))
    without_g = {path: place for path, place in BASE_IMAGES.items() if path != "g.png"}
    head = write_results(tmp_path / "head", [overlap("bird", "fish"), overlap("cat", "dog")], placed(without_g))
    verdict = evaluate(head, STRICT, base)
    assert [f.classes for f in verdict.counted] == [("bird", "fish")]
    assert [f.classes for f in verdict.untouched] == [("cat", "dog")]


def test_a_relabelled_image_s_label_error_is_new_even_where_its_content_had_one(tmp_path: Path) -> None:
    base = write_results(tmp_path / "base", [image_finding("label_error", "a.png", "s1", "cat")],
                         placed({"a.png": ("s1", "cat", "train")}))
    same = write_results(tmp_path / "same", [image_finding("label_error", "a.png", "s1", "cat")],
                         placed({"a.png": ("s1", "cat", "train")}))
    relabelled = write_results(tmp_path / "relabelled", [image_finding("label_error", "a.png", "s1", "dog")],
                               placed({"a.png": ("s1", "dog", "train")}))
    assert new_findings(same, base) == []
    assert [f.label for f in new_findings(relabelled, base)] == ["dog"]
    assert not evaluate(relabelled, STRICT, base).passed


def test_untouched_findings_have_their_own_section_in_every_format(tmp_path: Path) -> None:
    images = placed({"a.png": ("s1", "cat", "train"), "b.png": ("s2", "dog", "train")})
    base = write_results(tmp_path / "base", [], images)
    head = write_results(tmp_path / "head", [image_finding("label_error", "a.png", "s1", "cat"),
                                             image_finding("outlier", "b.png", "s2", "dog")], images)
    verdict = evaluate(head, STRICT, base)
    assert verdict.passed

    data = json.loads(render_json(verdict))
    assert data["counted_findings"] == 0 and data["untouched_findings"] == 2
    assert data["untouched_per_check"] == {"label_error": 1, "outlier": 1}
    assert [f["path"] for f in data["untouched"]] == ["a.png", "b.png"] and data["untouched_left_out"] == 0

    markdown = render_markdown(verdict)
    assert ("<details><summary>Changed on untouched images, not counted (2: label_error: 1, outlier: 1)"
            "</summary>") in markdown
    assert "| label_error | `a.png` |  | cat | label_error: a.png |" in markdown

    text = " ".join(render_text(verdict).split())  # the console wraps long lines
    assert "changed on untouched images, not counted (2: label_error: 1, outlier: 1)" in text
    assert "label_error a.png: label_error: a.png" in text
    assert "gate passed: 0 new of 2 findings (baseline" in text and "2 on untouched images not counted" in text


def test_generic_count_rule_and_rules_off(tmp_path: Path) -> None:
    findings = [image_finding("outlier", f"{i}.png", f"s{i}") for i in range(3)]
    images = image_rows({f"{i}.png": (f"s{i}", "x") for i in range(3)})
    results = write_results(tmp_path / "r", findings, images)
    assert evaluate(results, ALL_OFF).rules == ()
    assert evaluate(results, ALL_OFF).passed
    over = evaluate(results, GateConfig(max_findings={"outlier": 2}))
    rule = next(r for r in over.rules if r.name == "max_findings.outlier")
    assert not over.passed and rule.status is RuleStatus.FAIL and len(rule.offending) == 3
    assert evaluate(results, GateConfig(max_findings={"outlier": 3})).passed


def test_label_error_rates_overall_and_per_class(tmp_path: Path) -> None:
    # 10 cats, 10 dogs, 1 unreadable dog (not in the denominator); 2 cat label errors.
    spec = {f"cat{i}.png": (f"c{i}", "cat") for i in range(10)}
    spec |= {f"dog{i}.png": (f"d{i}", "dog") for i in range(10)}
    images = image_rows(spec) + image_rows({"bad.png": ("b", "dog")}, readable=False)
    errors = [image_finding("label_error", "cat0.png", "c0", label="cat"),
              image_finding("label_error", "cat1.png", "c1", label="cat")]
    results = write_results(tmp_path / "r", errors, images)

    overall = evaluate(results, ALL_OFF.model_copy(update={"max_label_error_rate": 0.1}))
    assert overall.passed and overall.rules[0].observed == pytest.approx(2 / 20)
    overall = evaluate(results, ALL_OFF.model_copy(update={"max_label_error_rate": 0.09}))
    assert not overall.passed and len(overall.rules[0].offending) == 2

    per_class = evaluate(results, ALL_OFF.model_copy(update={"max_label_error_rate_per_class": 0.15}))
    rule = per_class.rules[0]
    assert not per_class.passed and rule.observed == pytest.approx(0.2)
    assert "cat: 2/10" in rule.detail and "dog" not in rule.detail
    assert {f.path for f in rule.offending} == {"cat0.png", "cat1.png"}
    assert evaluate(results, ALL_OFF.model_copy(update={"max_label_error_rate_per_class": 0.2})).passed


def test_imbalance_rule_with_and_without_baseline(tmp_path: Path) -> None:
    images = image_rows({"a.png": ("s1", "x")})

    def ratios(train: float, test: float) -> dict[str, Any]:
        return {"class_imbalance": {"train": {"imbalance_ratio": train}, "test": {"imbalance_ratio": test}}}

    base = write_results(tmp_path / "base", [], images, ratios(12.0, 2.0))
    same = write_results(tmp_path / "same", [], images, ratios(12.0, 2.0))
    worse = write_results(tmp_path / "worse", [], images, ratios(12.0, 4.0))
    config = ALL_OFF.model_copy(update={"max_imbalance_ratio": 3.0})

    assert not evaluate(same, config).passed  # no baseline: the backlog counts
    assert evaluate(same, config, base).passed  # above the limit but not worse than the baseline
    verdict = evaluate(worse, config, base)
    assert not verdict.passed and verdict.rules[0].detail.startswith("test: 4.0, was 2.0")

    not_run = write_results(tmp_path / "none", [], images, {})
    skipped = evaluate(not_run, config)
    assert skipped.rules[0].status is RuleStatus.SKIPPED and skipped.passed
    assert any("class_imbalance check did not run" in note for note in skipped.notes)


def test_rules_whose_check_did_not_run_are_skipped_not_passed(tmp_path: Path) -> None:
    images = image_rows({"a.png": ("s1", "x")})
    not_run = write_results(tmp_path / "not_run", [], images, {"class_imbalance": {}})
    rule = next(r for r in evaluate(not_run, GateConfig()).rules if r.name == "max_unreadable")
    assert rule.status is RuleStatus.SKIPPED
    assert rule.detail == "the unreadable check did not run in this scan"
    skipped = write_results(tmp_path / "skipped", [], images, {"unreadable": {"skipped": "no files"}})
    verdict = evaluate(skipped, GateConfig())
    assert verdict.passed
    assert "rule max_unreadable not evaluated: the unreadable check was skipped: no files" in verdict.notes
    ran = write_results(tmp_path / "ran", [], images)
    rule = next(r for r in evaluate(ran, GateConfig()).rules if r.name == "max_unreadable")
    assert rule.status is RuleStatus.PASS and rule.observed == 0


def test_baseline_from_another_encoder_is_noted(tmp_path: Path) -> None:
    images = image_rows({"a.png": ("s1", "x")})
    base = write_results(tmp_path / "base", [], images, encoder="clip:ViT-B-32")
    current = write_results(tmp_path / "cur", [], images)
    assert any("not comparable" in note for note in evaluate(current, GateConfig(), base).notes)


def test_gate_config_rejects_typos_and_double_limits() -> None:
    with pytest.raises(ValueError, match="max_unreadble"):
        GateConfig.model_validate({"max_unreadble": 0})
    with pytest.raises(ValueError, match="set max_unreadable instead"):
        GateConfig.model_validate({"max_findings": {"unreadable": 1}})
    with pytest.raises(ValueError):
        GateConfig.model_validate({"max_label_error_rate": 1.5})


def test_renderers(tmp_path: Path) -> None:
    findings = [image_finding("unreadable", "a|b.png", "s1", label="cat"),
                image_finding("outlier", "c.png", "s2", label="cat")]
    images = image_rows({"a|b.png": ("s1", "cat"), "c.png": ("s2", "cat")})
    results = write_results(tmp_path / "r", findings, images)
    verdict = evaluate(results, GateConfig())

    markdown = render_markdown(verdict)
    assert markdown.startswith("## Dataset audit gate: ❌ failed")
    assert "### ❌ at most 0 `unreadable` findings" in markdown
    assert "`a\\|b.png`" in markdown  # pipes escaped inside tables
    assert "All findings (outlier: 1, unreadable: 1)" in markdown

    data = json.loads(render_json(verdict))
    assert data["passed"] is False and data["counted_findings"] == 2
    rule = next(r for r in data["rules"] if r["name"] == "max_unreadable")
    assert rule["status"] == "fail" and [f["path"] for f in rule["offending"]] == ["a|b.png"]

    text = render_text(verdict)
    assert "gate FAILED" in text and "a|b.png" in text


def test_cli_format_names_cover_every_format() -> None:
    assert set(typing.get_args(GateFormatName)) == {f.value for f in GateFormat}


def test_incomplete_results_folder_is_refused(tmp_path: Path) -> None:
    results = write_results(tmp_path / "r", [], image_rows({"a.png": ("s1", "x")}))
    (results.directory / "run.json").unlink()
    with pytest.raises(ResultsError, match="no run.json"):
        load_results(results.directory)


# --- End to end through the CLI --------------------------------------------------------------------

runner = CliRunner()

def scan(data: Path, out: Path, *extra: str) -> Any:
    return runner.invoke(app, ["scan", str(data), "--out", str(out), "--encoder", "builtin", "--workers", "0",
                               "--quiet", *extra])


def test_clean_dataset_passes_and_a_leaked_image_fails(tmp_path: Path) -> None:
    data = write_split_shapes(tmp_path / "data")
    result = scan(data, tmp_path / "clean", "--gate")
    assert result.exit_code == 0, result.output
    assert "gate passed" in result.output

    shutil.copy(data / "train" / "circle" / "circle_003.png", data / "test" / "circle" / "leaked.png")
    result = scan(data, tmp_path / "leaky", "--gate", "--baseline", str(tmp_path / "clean"))
    assert result.exit_code == 1, result.output
    assert "gate FAILED" in result.output

    result = runner.invoke(app, ["gate", str(tmp_path / "leaky"), "--baseline", str(tmp_path / "clean"),
                                 "--format", "json"])
    assert result.exit_code == 1, result.output
    verdict = json.loads(result.output)
    leakage = next(r for r in verdict["rules"] if r["name"] == "max_split_leakage")
    assert leakage["status"] == "fail"
    leaked = {"train/circle/circle_003.png", "test/circle/leaked.png"}
    assert {f["path"] for f in leakage["offending"]} == leaked


def test_renaming_and_moving_files_passes_against_a_baseline(tmp_path: Path) -> None:
    data = write_split_shapes(tmp_path / "data")
    (data / "train" / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert scan(data, tmp_path / "base").exit_code == 0
    assert runner.invoke(app, ["gate", str(tmp_path / "base")]).exit_code == 1  # the backlog fails alone

    (data / "train" / "circle" / "broken.png").rename(data / "train" / "square" / "moved_broken.png")
    for path in sorted((data / "test").rglob("*.png")):
        path.rename(path.with_name("renamed_" + path.name))
    assert scan(data, tmp_path / "head").exit_code == 0
    result = runner.invoke(app, ["gate", str(tmp_path / "head"), "--baseline", str(tmp_path / "base"),
                                 "--format", "markdown", "--output", str(tmp_path / "summary.md")])
    assert result.exit_code == 0, result.output
    assert "gate passed" in result.output  # the terminal gets text when --output takes the format
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("## Dataset audit gate: ✅ passed")
    assert "| at most 0 new `unreadable` findings | ✅ pass | 0 |" in summary


audit = run_cli  # in this process, through main() (tests/conftest.py)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("[gate]\nmax_unreadble = 0\n", "gate.max_unreadble: Extra inputs are not permitted"),
        ("[gate]\nmax_split_leakage = -1\n", "gate.max_split_leakage"),
        ("[gate.max_findings]\nunreadable = 2\n", "set max_unreadable instead"),
    ],
    ids=["typo", "negative", "double-limit"],
)
def test_bad_gate_config_exits_2_with_a_clear_message(tmp_path: Path, config: str, message: str) -> None:
    results = write_results(tmp_path / "r", [], image_rows({"a.png": ("s1", "x")}))
    (tmp_path / "gate.toml").write_text(config)
    result = audit("gate", str(results.directory), "--config", str(tmp_path / "gate.toml"))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr and "Traceback" not in result.stderr


def test_missing_results_exit_2(tmp_path: Path) -> None:
    result = audit("gate", str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "results folder not found" in result.stderr


def test_default_toml_documents_every_gate_rule() -> None:
    lines = (Path(__file__).resolve().parents[2] / "configs" / "default.toml").read_text().splitlines()
    section = lines[lines.index("[gate]"):]
    for name in GateConfig.model_fields:
        if name == "max_findings":
            assert "[gate.max_findings]" in section
            continue
        # Rules off by default appear commented out; every one has a comment line above it.
        index = next(i for i, line in enumerate(section) if line.lstrip("# ").startswith(f"{name} ="))
        above = section[index - 1]
        assert above.startswith("#") and not above.lstrip("# ").startswith("max_"), name


def test_scan_baseline_needs_gate(tmp_path: Path) -> None:
    from auditor.core.errors import AuditorError

    data = write_split_shapes(tmp_path / "data")
    result = scan(data, tmp_path / "out", "--baseline", str(tmp_path))
    assert isinstance(result.exception, AuditorError) and "--baseline only applies with --gate" in str(
        result.exception)


def test_the_rule_table_sets_which_rules_run_and_their_order(tmp_path: Path) -> None:
    config = GateConfig(max_near_duplicate=2, max_label_error_rate=0.1, max_imbalance_ratio=5.0,
                        max_findings={"outlier": 1, "ambiguous": 3})
    table = gate_rules(config)
    assert [rule.name for rule in table] == [
        "max_unreadable", "max_split_leakage", "max_exact_duplicate", "max_near_duplicate",
        "max_findings.ambiguous", "max_findings.outlier",
        "max_label_error_rate", "max_label_error_rate_per_class", "max_imbalance_ratio",
    ]
    results = write_results(tmp_path / "r", [], image_rows({"a.png": ("s1", "x")}))
    verdict = evaluate(results, config)
    enabled = [rule.name for rule in table if rule.limit(config) is not None]
    assert [rule.name for rule in verdict.rules] == enabled
    assert "max_label_error_rate_per_class" not in enabled  # its limit is off by default
    assert {rule.name: rule.limit for rule in verdict.rules}["max_findings.outlier"] == 1


def test_json_verdict_lists_the_first_findings_and_counts_the_rest_unless_all_are_asked_for(tmp_path: Path) -> None:
    many = LISTED_FINDINGS + 3
    paths = {f"{i}.png": (f"s{i}", "cat") for i in range(many)}
    write_results(tmp_path / "r", [image_finding("unreadable", p, sha) for p, (sha, _) in paths.items()],
                  image_rows(paths))
    capped = runner.invoke(app, ["gate", str(tmp_path / "r"), "--format", "json"])
    assert capped.exit_code == 1, capped.output
    data = json.loads(capped.output)
    assert len(data["counted"]) == LISTED_FINDINGS and data["counted_left_out"] == 3
    assert data["counted_findings"] == many
    rule = next(r for r in data["rules"] if r["name"] == "max_unreadable")
    assert len(rule["offending"]) == LISTED_FINDINGS and rule["offending_left_out"] == 3
    every = json.loads(runner.invoke(app, ["gate", str(tmp_path / "r"), "--format", "json", "--all-findings"]).output)
    assert len(every["counted"]) == many and every["counted_left_out"] == 0
