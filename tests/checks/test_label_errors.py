"""The label_errors check: synthetic embeddings for speed, one drawn-image scan end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from auditor.checks.base import CheckContext
from auditor.checks.label_errors import LabelErrorsCheck, LabelErrorsParams
from auditor.core.config import AuditConfig, EncoderConfig, LabelIssueParams, ScanConfig
from auditor.evidence.probabilities import ProbabilityParams, out_of_sample_probabilities
from auditor.scan import run_scan
from tests.conftest import synthetic_context, write_class_folder

SEED = 11


def make_context(vectors: np.ndarray, labels: list[str], pixel_ids: list[str] | None = None) -> CheckContext:
    return synthetic_context(vectors, list(labels), pixel_ids=pixel_ids)


def clusters(names: list[str], per_class: int, dim: int = 16, spread: float = 0.3,
             seed: int = SEED) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(names), dim))
    centres *= 3.0 / np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = np.concatenate([centres[c] + rng.normal(scale=spread, size=(per_class, dim))
                              for c in range(len(names))])
    return vectors, [name for name in names for _ in range(per_class)]


def run(ctx: CheckContext, **params: object):
    return LabelErrorsCheck(LabelErrorsParams.model_validate(params)).run(ctx)


def test_obvious_flip_is_flagged_with_the_right_suggestion() -> None:
    vectors, labels = clusters(["cat", "dog", "fox"], per_class=30)
    labels[35] = "cat"  # a dog filed as cat
    ctx = make_context(vectors, labels)
    result = run(ctx)
    flagged = {f.path: f for f in result.findings}
    finding = flagged["cat/0035.png"]
    assert finding.check == "label_error"
    assert finding.label == "cat" and finding.suggested_label == "dog"
    assert finding.details["reason"] == "classifier"
    assert finding.details["suggested_label_probability"] > finding.details["given_label_probability"]
    assert list(finding.details["top_classes"])[0] == "dog"
    assert finding.score == pytest.approx(1.0 - result.columns["label_quality"][35])
    assert len(flagged) <= 3  # clean, well separated clusters: (almost) nothing else
    assert result.columns["pred_label"][35] == "dog"
    assert result.columns["label_quality"][35] < 0.2 < result.columns["label_quality"].drop(35).min()
    assert result.summary.per_class["cat"].estimated_error_rate > 0
    assert result.summary.estimated_error_rate == pytest.approx(1 / 90, abs=0.02)


def test_two_classes() -> None:
    vectors, labels = clusters(["no", "yes"], per_class=25, spread=0.8)
    vectors[3] = vectors[:25].mean(axis=0)  # a textbook "no"...
    labels[3] = "yes"  # ...filed as "yes"
    result = run(make_context(vectors, labels))
    assert [(f.path, f.suggested_label) for f in result.findings] == [("yes/0003.png", "no")]


def test_one_image_classes_run_and_are_not_judged() -> None:
    vectors, labels = clusters(["a", "b", "c", "d"], per_class=12)
    labels[12:24] = ["b"] + [f"solo{i}" for i in range(11)]  # ten one-image classes (plus a shrunken b)
    ctx = make_context(vectors, labels)
    result = run(ctx)
    assert np.isfinite(ctx.evidence.pred_probs).all()
    np.testing.assert_allclose(ctx.evidence.pred_probs.sum(axis=1), 1.0)
    assert not [f for f in result.findings if f.label.startswith("solo") or f.label == "b"]
    assert result.summary.not_judged_small_class == 12
    assert result.columns["label_quality"].notna().all()


def test_two_hundred_classes() -> None:
    names = [f"class_{i:03d}" for i in range(200)]
    vectors, labels = clusters(names, per_class=6, dim=64, spread=0.2)
    labels[7] = "class_005"  # an image of class_001
    result = run(make_context(vectors, labels))
    flagged = {f.path: f.suggested_label for f in result.findings}
    assert flagged.get("class_005/0007.png") == "class_001"
    assert len(result.summary.per_class) == 200


def test_a_second_run_gives_the_same_results() -> None:
    vectors, labels = clusters(["cat", "dog", "fox"], per_class=30, spread=0.9)
    labels[5] = "dog"
    first, second = run(make_context(vectors, labels)), run(make_context(vectors, labels))
    assert first.findings == second.findings
    pd.testing.assert_series_equal(first.columns["label_quality"], second.columns["label_quality"])


def test_copies_leave_out_together_so_a_copy_cannot_vouch_for_a_wrong_label() -> None:
    vectors, labels = clusters(["cat", "dog"], per_class=20)
    vectors[5] = vectors[25]  # cat/0005 is an exact copy of a dog image, and so is cat/0006
    vectors[6] = vectors[25]
    labels[25] = labels[5] = labels[6] = "cat"  # ...all three filed as cat
    probs = out_of_sample_probabilities(vectors.astype(np.float32), np.array([labels[i] == "dog" for i in range(40)],
                                        dtype=np.int64), 2, ProbabilityParams())
    assert (probs[[5, 6, 25], 1] > 0.5).all()  # still looks like a dog to models that saw none of them


def test_label_conflict_minority_copy_gets_majority_label() -> None:
    vectors, labels = clusters(["cat", "dog"], per_class=10)
    pixels = [f"px{i}" for i in range(20)]
    for i in (1, 2, 12):  # identical pixels: two cats, one dog
        pixels[i] = "same"
        vectors[i] = vectors[1]
    result = run(make_context(vectors, labels, pixels))
    conflicts = {f.path: f for f in result.findings if f.details["reason"] == "label conflict"}
    assert list(conflicts) == ["dog/0012.png"]
    finding = conflicts["dog/0012.png"]
    assert finding.suggested_label == "cat" and finding.classes == ("dog", "cat")
    assert "label conflict" in finding.message and finding.details["label_counts"] == {"cat": 2, "dog": 1}
    assert sorted(finding.details["copies"]) == ["cat/0001.png", "cat/0002.png"]
    assert result.summary.label_conflicts == 1


def test_label_conflict_tie_flags_every_copy() -> None:
    vectors, labels = clusters(["cat", "dog"], per_class=10)
    pixels = [f"px{i}" for i in range(20)]
    pixels[3] = pixels[13] = "same"
    vectors[13] = vectors[3]
    result = run(make_context(vectors, labels, pixels))
    conflicts = {f.path: f for f in result.findings if f.details["reason"] == "label conflict"}
    assert set(conflicts) == {"cat/0003.png", "dog/0013.png"}
    assert conflicts["cat/0003.png"].suggested_label == "dog"
    assert conflicts["dog/0013.png"].suggested_label == "cat"
    assert all("tie" in f.message and f.score == 0.5 for f in conflicts.values())


def test_scan_flags_a_misfiled_drawing(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_class_folder(root, per_class=12)
    shutil.move(root / "circle" / "circle_004.png", root / "square" / "circle_004.png")
    config = AuditConfig(encoder=EncoderConfig(name="builtin"),
                         scan=ScanConfig(checks=["label_errors", "class_overlap"], cache_dir=tmp_path / "cache"))
    result = run_scan(root, config, tmp_path / "out")
    flagged = {f.path: f for f in result.findings if f.check == "label_error"}
    assert flagged["square/circle_004.png"].suggested_label == "circle"
    images = pd.read_parquet(tmp_path / "out" / "images.parquet").set_index("path")
    assert images.loc["square/circle_004.png", "pred_label"] == "circle"
    assert images["label_quality"].between(0, 1).all()
    run_json = json.loads((tmp_path / "out" / "run.json").read_text())
    assert set(run_json["checks"]["label_errors"]["per_class"]) == {"circle", "square", "triangle"}


def test_an_image_no_class_claims_is_flagged_when_its_label_is_implausible() -> None:
    """Three well-learnt classes; one image labelled ``b`` whose evidence is split between ``a`` and ``c`` (two
    views disagreeing) reaches neither class's mean probability, so confident learning counts it nowhere and
    prunes nothing; its given label gets less than ``b`` gets on other classes' images, so it is flagged.
    An image whose label is merely doubted (more than that) is not."""
    from auditor.evidence.verdicts import implausible_labels, label_issue_mask

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 30)
    probs = np.full((90, 3), 0.03)
    probs[np.arange(90), labels] = 0.94
    probs += rng.uniform(0, 0.02, size=probs.shape)
    probs[5] = [0.20, 0.35, 0.45]  # a doubted ``a``: its label gets more than ``a`` gets elsewhere
    probs[40] = [0.62, 0.02, 0.36]  # the unclaimed ``b``
    probs /= probs.sum(axis=1, keepdims=True)
    plain = label_issue_mask(labels, probs, "prune_by_noise_rate")
    assert not plain[40]
    assert list(np.flatnonzero(implausible_labels(labels, probs))) == [40]
    assert list(np.flatnonzero(label_issue_mask(labels, probs, "prune_by_noise_rate", unclaimed=True)
                               & ~plain)) == [40]


def test_the_classifier_alone_is_asked_too_when_the_vote_lifts_the_given_label() -> None:
    """An image the classifier puts firmly in ``b`` (its label ``a`` at 0.01, where ``a`` gets 0.03 on other
    classes' images) while its neighbours' vote lifts ``a`` to 0.06 in the blend (above the blend's 0.04 bar):
    flagged by the classifier's own probabilities, each view against its own bar."""
    from auditor.evidence.verdicts import label_issue_mask

    labels = np.repeat([0, 1, 2], 30)
    blend = np.full((90, 3), 0.04)
    blend[np.arange(90), labels] = 0.92
    classifier = np.full((90, 3), 0.03)
    classifier[np.arange(90), labels] = 0.94
    blend[0], classifier[0] = [0.06, 0.60, 0.34], [0.01, 0.95, 0.04]
    flagged = label_issue_mask(labels, blend, "prune_by_noise_rate", unclaimed=True)
    assert not flagged.any()
    both = label_issue_mask(labels, blend, "prune_by_noise_rate", unclaimed=True, classifier=classifier)
    assert list(np.flatnonzero(both)) == [0]
    assert not label_issue_mask(labels, blend, "prune_by_noise_rate", classifier=classifier).any()  # rule off


@pytest.mark.parametrize("filter_by", ["prune_by_noise_rate", "prune_by_class", "both", "confident_learning"])
def test_confident_joint_counted_once_gives_cleanlabs_own_verdicts(filter_by: str) -> None:
    """The context counts the confident joint once and hands it to both verdicts: the same mask and joint as
    cleanlab computes on its own."""
    from auditor.core.slow_imports import cleanlab_count, cleanlab_filter
    from auditor.evidence.verdicts import confident_counts, confident_joint, label_issue_mask

    rng = np.random.default_rng(4)
    labels = rng.integers(4, size=300)
    probs = rng.dirichlet(np.full(4, 0.4), size=300)
    probs[np.arange(300), labels] += rng.uniform(0, 2, size=300)
    probs /= probs.sum(axis=1, keepdims=True)
    counts = confident_counts(labels, probs)
    expected = cleanlab_filter.find_label_issues(labels, probs, filter_by=filter_by, n_jobs=1)
    np.testing.assert_array_equal(label_issue_mask(labels, probs, filter_by, counts), expected)
    np.testing.assert_allclose(confident_joint(labels, probs, counts), cleanlab_count.estimate_joint(labels, probs),
                               rtol=0, atol=1e-12)


def test_a_starved_class_beside_large_ones_is_not_judged() -> None:
    """Seven images of a class among classes of 50 (over ``min_class_images``, under a fifth of the median class,
    as class_imbalance calls starved), spread around a point near class a: so few cannot place their class's
    mean, so some read as class a's. Judged, they would be flagged; they are not judged."""
    vectors, labels = clusters(["a", "b", "c"], per_class=50, spread=0.5)
    rng = np.random.default_rng(SEED)
    direction = rng.normal(size=vectors.shape[1])
    near_a = vectors[:50].mean(axis=0) + direction / np.linalg.norm(direction)
    vectors = np.vstack([vectors, near_a + rng.normal(scale=0.5, size=(7, vectors.shape[1]))])
    labels = [*labels, *["s"] * 7]
    result = run(make_context(vectors, labels))
    assert not [f for f in result.findings if f.label == "s"]
    assert result.summary.not_judged_small_class == 7
    ctx = make_context(vectors, labels)
    ctx.config.evidence.label_issues = LabelIssueParams(min_class_fraction_of_median=0.0)
    loose = LabelErrorsCheck(LabelErrorsParams()).run(ctx)
    assert [f.suggested_label for f in loose.findings if f.label == "s"] == ["a"] * 3
