"""Self-assessed reliability of the model-based checks (auditor/evidence/reliability.py) on synthetic embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from auditor.checks.ambiguous import AmbiguousCheck, AmbiguousParams
from auditor.checks.label_errors import LabelErrorsCheck, LabelErrorsParams
from auditor.core.config import AmbiguityParams, ReliabilityParams
from auditor.evidence.reliability import DisagreementModel, assess, mark, summary_fields
from auditor.evidence.verdicts import split_of
from auditor.results.findings import Finding, Severity
from tests.conftest import synthetic_context


def gaussian_classes(separation: float, noise: float, n: int = 400, dim: int = 32, seed: int = 3):
    """Two Gaussian classes ``separation`` apart (in noise standard deviations); ``noise`` of labels flipped."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    direction = rng.normal(size=dim)
    direction /= np.linalg.norm(direction)
    vectors = rng.normal(size=(n, dim)) + np.outer(truth - 0.5, direction) * separation + 5.0
    flipped = rng.random(n) < noise
    given = np.where(flipped, 1 - truth, truth)
    return vectors, ["a" if g == 0 else "b" for g in given], flipped


def test_separable_noisy_classes_stay_reliable_with_real_findings() -> None:
    vectors, labels, flipped = gaussian_classes(separation=8.0, noise=0.08)
    ctx = synthetic_context(vectors, labels)
    result = LabelErrorsCheck(LabelErrorsParams()).run(ctx)
    assert ctx.evidence.reliability.reliable, ctx.evidence.reliability.reason
    assert result.summary.reliable is True
    flagged = {f.path for f in result.findings}
    wrong = {path for path, bad in zip(ctx.images["path"], flipped, strict=True) if bad}
    assert len(flagged & wrong) >= 0.8 * len(flagged) and len(flagged) >= 0.8 * len(wrong)
    assert all(f.severity == Severity.WARNING and "reliable" not in f.details for f in result.findings)


def test_barely_separated_classes_are_marked_unreliable() -> None:
    # Clean labels, classes overlapping heavily: every disagreement is the classifier's own mistake.
    vectors, labels, _ = gaussian_classes(separation=0.8, noise=0.0)
    ctx = synthetic_context(vectors, labels)
    result = LabelErrorsCheck(LabelErrorsParams()).run(ctx)
    verdict = ctx.evidence.reliability
    assert not verdict.reliable and verdict.reason
    assert result.summary.reliable is False and result.summary.reliability_reason == verdict.reason
    assert result.summary.reliability["balanced_accuracy"] < 0.75
    assert result.findings, "the flags are kept, only demoted"
    assert all(f.severity == Severity.INFO and f.details["reliable"] is False for f in result.findings)
    ambiguous = AmbiguousCheck(AmbiguousParams()).run(ctx)
    assert ambiguous.summary.reliable is False
    assert all(f.severity == Severity.INFO for f in ambiguous.findings)


def test_chance_level_embedding_is_unreliable() -> None:
    vectors, labels, _ = gaussian_classes(separation=0.0, noise=0.0)
    verdict = synthetic_context(vectors, labels).evidence.reliability
    assert not verdict.reliable
    assert "chance" in (verdict.reason or "")


def many_classes(centres: np.ndarray, noise: float, per_class: int = 100, seed: int = 0):
    """Gaussian classes around ``centres`` (unit noise per dimension); ``noise`` of labels moved to another class."""
    rng = np.random.default_rng(seed)
    k, dim = centres.shape
    truth = np.repeat(np.arange(k), per_class)
    vectors = rng.normal(size=(len(truth), dim)) + centres[truth] + 5.0
    flipped = rng.random(len(truth)) < noise
    given = np.where(flipped, (truth + rng.integers(1, k, len(truth))) % k, truth)
    return vectors, [f"c{g:02d}" for g in given], flipped


def spread_centres(k: int, distance: float, dim: int = 32, seed: int = 1) -> np.ndarray:
    centres = np.random.default_rng(seed).normal(size=(k, dim))
    return centres * distance / np.linalg.norm(centres, axis=1, keepdims=True)


def test_ten_classes_whose_classifier_errs_more_than_the_labels_are_unreliable() -> None:
    """Clearly above chance (chance-corrected balanced accuracy ~0.7, which the old midpoint rule trusted),
    but its own mistakes outnumber 3% label noise among its flags: they are mostly wrong, so unreliable."""
    vectors, labels, flipped = many_classes(spread_centres(10, 2.5), noise=0.03)
    ctx = synthetic_context(vectors, labels)
    verdict = ctx.evidence.reliability
    flags = ctx.evidence.label_issues
    assert verdict.chance_corrected > 0.6
    assert flipped[flags].mean() < 0.3, "the premise: most flags are the classifier's mistakes"
    assert not verdict.reliable
    assert verdict.expected_precision_upper is not None and verdict.expected_precision_upper < 0.5
    assert "outnumber" in (verdict.reason or "")


def test_ten_well_separated_noisy_classes_stay_reliable() -> None:
    vectors, labels, flipped = many_classes(spread_centres(10, 8.0), noise=0.05)
    ctx = synthetic_context(vectors, labels)
    verdict = ctx.evidence.reliability
    assert verdict.reliable, verdict.reason
    assert not verdict.doubtful_classes and not verdict.unseparated_classes
    assert flipped[ctx.evidence.label_issues].mean() > 0.8
    assert verdict.expected_precision is not None and verdict.expected_precision > 0.5


def test_a_class_pair_the_embedding_cannot_separate_is_marked_while_the_rest_are_trusted() -> None:
    """Twelve classes, two of them sharing one centre: their recall (~0.5) is far above chance (1/12), so a
    recall test passes them, but their flags are the classifier's coin flips; the other classes' are real."""
    centres = spread_centres(12, 8.0)
    centres[11] = centres[10]
    vectors, labels, flipped = many_classes(centres, noise=0.08)
    ctx = synthetic_context(vectors, labels)
    verdict = ctx.evidence.reliability
    assert verdict.reliable, verdict.reason
    assert not verdict.unseparated_classes
    assert set(verdict.doubtful_classes) == {"c10", "c11"}
    result = LabelErrorsCheck(LabelErrorsParams()).run(ctx)
    by_class = {f.label: f.severity for f in result.findings}
    assert by_class["c10"] == by_class["c11"] == Severity.INFO
    # A flag that suggests one of the pair is about it too.
    trusted = [f for f in result.findings if not {"c10", "c11"} & {f.label, *f.classes}]
    assert trusted and all(f.severity == Severity.WARNING for f in trusted)
    paths = set(ctx.images["path"][flipped])
    assert sum(f.path in paths for f in trusted) >= 0.8 * len(trusted)


def test_disagreement_model_recovers_the_noise_floor_under_a_convex_mistake_curve() -> None:
    """Mistakes that vanish quadratically with confidence: a straight line through them underestimates the
    floor (the old model); the fitted exponent recovers it, and with it each flag's noise share."""
    rng = np.random.default_rng(0)
    uncertainty = rng.uniform(0.0, 0.6, 20_000)
    disagree = (rng.random(len(uncertainty)) < 0.05 + 0.95 * (1 - 0.05) * uncertainty ** 2).astype(float)
    model = DisagreementModel.fit(uncertainty, disagree)
    assert abs(model.noise - 0.05) < 0.01
    assert 1.6 < model.exponent < 2.5
    share = model.noise_share(np.array([0.0, 0.5]))
    assert share[0] == 1.0 and 0.1 < share[1] < 0.3


def test_reliability_can_be_switched_off() -> None:
    vectors, labels, _ = gaussian_classes(separation=0.0, noise=0.0)
    ctx = synthetic_context(vectors, labels)
    ctx.config.reliability.enabled = False
    assert ctx.evidence.reliability.reliable


def test_ambiguity_bar_follows_each_class_pairs_own_confusion() -> None:
    """Clean images of look-alike classes 0/1 routinely put 20-45% on each other; classes 2/3 are crisp.
    An even 2/3 split stands out and is flagged; the same split within 0/1 is that pair's normal and is
    not; a clean dataset gets (almost) no flags. A global fence on the split cannot do both."""
    rng = np.random.default_rng(0)
    rows, labels = [], []
    for label in range(4):
        for _ in range(150):
            p = np.full(4, 0.002)
            other = {0: 1, 1: 0, 2: 3, 3: 2}[label]
            share = rng.uniform(0.15, 0.45) if label in (0, 1) else rng.uniform(0.001, 0.03)
            p[other] += share
            p[label] = 1.0 - p.sum() + p[label]
            rows.append(p)
            labels.append(label)
    probs, labels_array = np.array(rows), np.array(labels)
    clean = split_of(probs, labels_array, AmbiguityParams())
    assert clean.candidates.sum() <= 1
    blend_23 = np.array([0.002, 0.002, 0.596, 0.4])
    lookalike_01 = np.array([0.596, 0.4, 0.002, 0.002])
    verdict = split_of(np.vstack([probs, blend_23, lookalike_01]), np.append(labels_array, [2, 0]), AmbiguityParams())
    assert verdict.candidates[-2]
    assert not verdict.candidates[-1]


def _one_hot(predicted: list[int], k: int, confidence: float = 0.9) -> np.ndarray:
    probs = np.full((len(predicted), k), (1 - confidence) / (k - 1))
    probs[np.arange(len(predicted)), predicted] = confidence
    return probs


def test_assess_finds_the_class_the_classifier_cannot_tell_apart_and_mark_demotes_only_its_findings() -> None:
    # Classes a and b are always recognised; c (20 images) is recognised 4 times in 20, below chance (1/3).
    labels = np.array([0] * 20 + [1] * 20 + [2] * 20)
    predicted = [0] * 20 + [1] * 20 + [2] * 4 + [0] * 16
    probs = _one_hot(predicted, 3)
    verdict = assess(labels, probs, probs, np.zeros(60, dtype=bool), ["a", "b", "c"], np.ones(60, dtype=bool),
                     ReliabilityParams())
    assert verdict.reliable and verdict.reason is None
    assert verdict.balanced_accuracy == pytest.approx((1 + 1 + 0.2) / 3)
    assert verdict.unseparated_classes == ("c",)
    assert verdict.per_class["c"] == verdict.per_class["c"] | {"images": 20, "recall": pytest.approx(0.2)}
    about_a = Finding(check="label_error", severity=Severity.WARNING, message="a?", label="a")
    about_c = Finding(check="class_overlap", severity=Severity.WARNING, message="b/c", classes=("b", "c"))
    kept, demoted = mark([about_a, about_c], verdict)
    assert kept == about_a
    assert demoted.severity is Severity.INFO and demoted.details == {"reliable": False}
    fields = summary_fields(verdict)
    assert fields["reliable"] is True and fields["reliability"]["unseparated_classes"] == ["c"]
    assert summary_fields(None) == {} and mark([about_c], None) == [about_c]


def test_assess_at_chance_gives_the_reason_unless_disabled() -> None:
    labels = np.array([0, 1] * 30)
    probs = _one_hot([0] * 60, 2, confidence=0.6)  # always "a": balanced accuracy 0.5, chance 0.5
    args = (labels, probs, probs, np.zeros(60, dtype=bool), ["a", "b"], np.ones(60, dtype=bool))
    verdict = assess(*args, ReliabilityParams())
    assert not verdict.reliable and verdict.chance_corrected == pytest.approx(0.0)
    assert verdict.reason is not None
    assert "closer to chance than to perfect" in verdict.reason and "chance 0.50" in verdict.reason
    trusted = assess(*args, ReliabilityParams(enabled=False))
    assert trusted.reliable and trusted.unseparated_classes == ()
