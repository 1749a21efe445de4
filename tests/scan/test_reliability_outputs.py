"""An unreliable verdict reaches every output: run.json, the scan warnings, all report formats, the gate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from auditor.actions.gate import RuleStatus, evaluate
from auditor.core.config import GateConfig, load_config
from auditor.report import ReportFormat, ReportOptions, render_results
from auditor.results.reading import load_results
from auditor.scan import run_scan
from auditor.scan.pipeline import Observer, SilentObserver

MODEL_BASED = ["label_errors", "class_overlap", "ambiguous", "outliers"]


def vector_dataset(root: Path, separation: float, flips: int) -> Path:
    """Two classes of distinct images whose (precomputed) embeddings are Gaussians ``separation`` apart."""
    rng = np.random.default_rng(7)
    n, dim = 120, 16
    truth = np.repeat([0, 1], n // 2)
    vectors = rng.normal(size=(n, dim)) + 4.0
    vectors[:, 0] += (truth - 0.5) * separation
    given = truth.copy()
    given[:flips] = 1 - given[:flips]
    paths = []
    for i in range(n):
        path = f"class_{given[i]}/{i:03d}.png"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        Image.frombytes("RGB", (16, 16), rng.integers(0, 256, 768, dtype=np.uint8).tobytes()).save(root / path)
        paths.append(path)
    table = root.parent / f"{root.name}.parquet"
    pd.DataFrame({"path": paths, "embedding": list(vectors.astype(np.float32))}).to_parquet(table)
    return table


class Told(SilentObserver):
    """An observer that keeps the warnings it is told and where in the stages they came."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def stage(self, name: str, total: int | None) -> None:
        self.events.append(f"stage {name}")

    def warn(self, text: str) -> None:
        self.events.append(f"warning {text}")


def scan(tmp_path: Path, separation: float, flips: int, observer: Observer | None = None) -> Path:
    data = tmp_path / "data"
    table = vector_dataset(data, separation, flips)
    config = load_config(overrides={"encoder": {"name": "precomputed", "precomputed_file": str(table)},
                                    "scan": {"checks": MODEL_BASED}})
    out = tmp_path / "out"
    run_scan(data, config, out, observer=observer)
    return out


@pytest.fixture(scope="module")
def told() -> Told:
    """What the scan of ``unreliable`` told its observer."""
    return Told()


@pytest.fixture(scope="module")
def unreliable(tmp_path_factory: pytest.TempPathFactory, told: Told) -> Path:
    return scan(tmp_path_factory.mktemp("weak"), separation=0.5, flips=0, observer=told)


def test_the_observer_is_told_as_soon_as_the_checks_are_done(unreliable: Path, told: Told) -> None:
    run = json.loads((unreliable / "run.json").read_text())
    # Once, after the last stage (the checks), before the outputs are written; the same line run.json keeps.
    assert told.events[-2:] == ["stage Running checks", f"warning {run['warnings'][0]}"]
    assert "findings are unreliable and shown as info" in run["warnings"][0]


def test_run_json_and_findings_say_unreliable(unreliable: Path) -> None:
    run = json.loads((unreliable / "run.json").read_text())
    for name in MODEL_BASED:
        summary = run["checks"][name]
        assert summary["reliable"] is False and "chance" in summary["reliability_reason"]
        assert summary["reliability"]["balanced_accuracy"] < 0.75
    assert "unreliable" in run["warnings"][0] and "--pred-probs" in run["warnings"][0]
    findings = load_results(unreliable).finding_objects()
    assert any(f.check == "label_error" for f in findings)
    assert all(f.severity == "info" and f.details["reliable"] is False for f in findings)


@pytest.mark.parametrize("fmt", list(ReportFormat), ids=lambda f: f.value)
def test_every_report_format_shows_the_line(unreliable: Path, fmt: ReportFormat) -> None:
    text = render_results(unreliable, fmt, ReportOptions(width=400))
    assert "findings are unreliable and shown as info" in " ".join(text.split())


def test_gate_skips_the_rules_of_unreliable_checks(unreliable: Path) -> None:
    config = GateConfig(max_label_error_rate=0.0, max_findings={"ambiguous": 0, "outlier": 0})
    verdict = evaluate(load_results(unreliable), config)
    rules = {rule.name: rule for rule in verdict.rules}
    for name in ("max_label_error_rate", "max_findings.ambiguous", "max_findings.outlier"):
        assert rules[name].status is RuleStatus.SKIPPED, name
        assert "unreliable" in (rules[name].detail or "")
    assert verdict.passed


def test_separable_data_stays_reliable_with_real_findings(tmp_path: Path) -> None:
    out = scan(tmp_path, separation=12.0, flips=4)
    run = json.loads((out / "run.json").read_text())
    assert run["checks"]["label_errors"]["reliable"] is True
    assert not any("unreliable" in warning for warning in run["warnings"])
    errors = [f for f in load_results(out).finding_objects() if f.check == "label_error"]
    flipped = {f"class_1/{i:03d}.png" for i in range(4)}
    assert len({f.path for f in errors} & flipped) >= 3
    assert all(f.severity == "warning" for f in errors if f.path in flipped)
    verdict = evaluate(load_results(out), GateConfig(max_label_error_rate=0.0))
    assert {rule.name: rule.status for rule in verdict.rules}["max_label_error_rate"] is RuleStatus.FAIL
