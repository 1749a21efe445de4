"""Does the embedding separate the classes well enough for the model-based checks to be trusted?

``label_errors``, ``class_overlap``, ``ambiguous`` and ``outliers`` all read out-of-sample evidence from
a classifier trained on the embeddings. When the embedding barely separates the classes (a weak encoder
on similar-looking classes), that classifier's own mistakes look exactly like label noise, and confident
learning reports them as label errors: a hundred confident, wrong findings. This module measures, once
per scan, whether that is happening.

**The rule.** The classifier must be closer to perfect than to chance: its cross-validated balanced
accuracy BA (mean per-class recall of the out-of-sample argmax against the given labels), corrected for
chance, ``(BA - 1/K) / (1 - 1/K)``, must be at least ``min_chance_corrected_accuracy`` (0.5, the
midpoint between chance and perfect). The point estimate decides, not a confidence bound: on real photos
of two similar classes (432 images) the upper bound already reached 0.48, so on a smaller set a bound
would let a hundred wrong flags through, and a demoted finding is still shown. Why the midpoint:
label-error flags can only be mostly right when the label-noise rate exceeds the classifier's own
error rate on correctly labelled images (otherwise its mistakes outnumber the real errors among the
flags), and confident learning itself needs most of each class labelled right; a classifier that gets
wrong more than half of what chance gets wrong would need more noise than confident learning can
untangle. It is a necessary condition, not a
guarantee. Measured (``benchmarks/reliability.py``): real ant/bee photos with the built-in encoder
(0.40-0.42; flags 0-20% right) are unreliable; the same photos through a real CNN (0.82; flags 69%
right), digits (0.9) and generated shapes (0.84) are not.

**The figures behind it**, recorded in run.json: balanced accuracy and its bounds, per-class recall (a
class whose recall's lower bound is not above chance, 1/K, is not separated at all: its findings are
marked even when the rest are trusted), the calibration error, and an estimate of how many flags are
right. Disagreements between the classifier and the labels have two causes that leave different traces:
label noise (independent of how the image looks, given its class) strikes confident and unsure
predictions alike, the classifier's mistakes concentrate where it is unsure. The disagreement rate as a
function of the regression's confidence ``c`` is modelled as ``noise + slope * (1 - c)`` (maximum
likelihood); at most ``noise * n`` flags can be real, so their expected precision is ``min(1, noise * n /
flags)``. It is conservative (noise also lowers the classifier's confidence on the noisy images, so some
of it is counted as classifier error: real-CNN photos measured 0.24 against a real 0.69), which is why it
explains the verdict rather than deciding it.

An unreliable verdict keeps the findings but makes them ``info`` with ``details.reliable = false``, and
run.json, the summaries and the gate say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from auditor.core.config import ReliabilityParams
from auditor.core.slow_imports import scipy_optimize, scipy_stats
from auditor.evidence.probabilities import blas_threads
from auditor.results.findings import Finding, Severity


@dataclass(frozen=True)
class Reliability:
    """The verdict and the figures behind it (``summary()`` is what run.json records)."""

    reliable: bool
    reason: str | None
    chance: float
    balanced_accuracy: float
    balanced_accuracy_lower: float
    chance_corrected: float
    chance_corrected_upper: float
    accuracy: float
    calibration_error: float
    noise_estimate: float
    classifier_error: float
    flags: int
    expected_precision: float | None
    expected_precision_upper: float | None
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    # Classes whose recall is not above chance (their findings are unreliable even when the rest are).
    unseparated_classes: tuple[str, ...] = ()

    def unreliable_class(self, name: str | None) -> bool:
        return not self.reliable or (name is not None and name in self.unseparated_classes)

    def summary(self) -> dict[str, Any]:
        return {
            "reliable": self.reliable,
            "reason": self.reason,
            "chance": self.chance,
            "balanced_accuracy": self.balanced_accuracy,
            "balanced_accuracy_lower_bound": self.balanced_accuracy_lower,
            "chance_corrected_accuracy": self.chance_corrected,
            "chance_corrected_accuracy_upper_bound": self.chance_corrected_upper,
            "accuracy": self.accuracy,
            "expected_calibration_error": self.calibration_error,
            "estimated_label_noise": self.noise_estimate,
            "estimated_classifier_error": self.classifier_error,
            "label_error_flags": self.flags,
            "expected_flag_precision": self.expected_precision,
            "expected_flag_precision_upper_bound": self.expected_precision_upper,
            "unseparated_classes": list(self.unseparated_classes),
            "per_class": self.per_class,
        }


# What to do about it; shown beside the verdict everywhere.
ADVICE = ("use a stronger encoder (real CLIP weights, or --encoder onnx with your team's model) "
          "or your own model's out-of-sample probabilities (--pred-probs)")


def assess(
    labels: np.ndarray, pred_probs: np.ndarray, regression_probs: np.ndarray, flags: np.ndarray,
    classes: list[str], judged: np.ndarray, params: ReliabilityParams,
) -> Reliability:
    """``flags``: the label-error flags (bool per row); ``judged``: rows of classes the classifier judges."""
    k = len(classes)
    chance = 1.0 / max(k, 1)
    z = float(scipy_stats.norm.ppf(params.confidence))
    predicted = pred_probs.argmax(axis=1)
    correct = predicted == labels
    sizes = np.bincount(labels, minlength=k)
    present = sizes > 0
    recall = np.array([correct[labels == c].mean() if sizes[c] else np.nan for c in range(k)])
    balanced = float(np.nanmean(recall)) if present.any() else 0.0
    variance = float(np.nansum(recall * (1 - recall) / np.maximum(sizes, 1))) / max(int(present.sum()), 1) ** 2
    balanced_lower = balanced - z * variance ** 0.5
    corrected = (balanced - chance) / max(1.0 - chance, 1e-12)
    corrected_upper = (balanced + z * variance ** 0.5 - chance) / max(1.0 - chance, 1e-12)
    per_class: dict[str, dict[str, float]] = {}
    unseparated: list[str] = []
    for c, name in enumerate(classes):
        if not sizes[c]:
            continue
        lower = _wilson_lower(float(recall[c]), int(sizes[c]), z)
        per_class[name] = {"images": int(sizes[c]), "recall": float(recall[c]), "recall_lower_bound": lower}
        if judged[labels == c].any() and lower <= chance:
            unseparated.append(name)

    confidence = regression_probs.max(axis=1)
    disagree = (~correct).astype(np.float64)
    noise, slope = _noise_and_slope(1.0 - confidence[judged], disagree[judged])
    n_flags = int((flags & judged).sum())
    expected = upper = None
    if n_flags:
        true_flags = min(float(n_flags), noise * int(judged.sum()))
        expected = true_flags / n_flags
        # The same confidence level as the verdict, for the record.
        upper = 1.0
        if true_flags < n_flags:
            upper = float(scipy_stats.beta.ppf(params.confidence, true_flags + 1, n_flags - true_flags))

    reason = None
    if params.enabled and corrected < params.min_chance_corrected_accuracy:
        reason = (f"the embedding barely separates the classes: cross-validated balanced accuracy "
                  f"{balanced:.2f} is closer to chance ({chance:.2f}) than to perfect (chance-corrected "
                  f"{corrected:.2f})")
    return Reliability(
        reliable=reason is None,
        reason=reason,
        chance=chance,
        balanced_accuracy=balanced,
        balanced_accuracy_lower=float(balanced_lower),
        chance_corrected=float(corrected),
        chance_corrected_upper=float(corrected_upper),
        accuracy=float(correct.mean()) if len(correct) else 0.0,
        calibration_error=_calibration_error(pred_probs.max(axis=1), correct),
        noise_estimate=noise,
        classifier_error=float(max(disagree[judged].mean() - noise, 0.0)) if judged.any() else 0.0,
        flags=n_flags,
        expected_precision=expected,
        expected_precision_upper=upper,
        per_class=per_class,
        unseparated_classes=tuple(unseparated) if params.enabled else (),
    )


def _noise_and_slope(uncertainty: np.ndarray, disagree: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood ``(noise, slope)`` of P(disagree) = noise + slope * uncertainty, noise in [0, 1]."""
    if len(disagree) == 0 or disagree.sum() == 0:
        return 0.0, 0.0

    def negative_log_likelihood(theta: np.ndarray) -> float:
        p = np.clip(theta[0] + theta[1] * uncertainty, 1e-9, 1 - 1e-9)
        return float(-(disagree * np.log(p) + (1 - disagree) * np.log(1 - p)).sum())

    start = np.array([disagree.mean() / 2, 0.5])
    # Two parameters: the optimiser's BLAS calls are tiny, and their threads' spin-waiting cost 7x the CPU
    # (40 ms against 6 ms at 1,000 images on a busy machine).
    with blas_threads(1):
        result = scipy_optimize.minimize(
            negative_log_likelihood, start, bounds=[(0.0, 1.0), (0.0, None)], method="L-BFGS-B"
        )
    # The noise cannot exceed the disagreement it is part of.
    return float(min(result.x[0], disagree.mean())), float(result.x[1])


def _wilson_lower(rate: float, n: int, z: float) -> float:
    """Lower Wilson score bound of a binomial proportion."""
    denominator = 1 + z * z / n
    centre = rate + z * z / (2 * n)
    spread = z * ((rate * (1 - rate) + z * z / (4 * n)) / n) ** 0.5
    return float((centre - spread) / denominator)


def _calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error against the given labels (equal-width confidence bins)."""
    if len(confidence) == 0:
        return 0.0
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in np.unique(which):
        members = which == b
        total += abs(float(correct[members].mean()) - float(confidence[members].mean())) * float(members.mean())
    return total


def mark(findings: list[Finding], verdict: Reliability | None) -> list[Finding]:
    """Findings the verdict cannot vouch for become ``info`` with ``details.reliable = false``.

    When the whole assessment fails, every finding; otherwise those about an unseparated class (an
    image filed under it, or a class pair naming it). The findings stay, so nothing is hidden.
    """
    if verdict is None or (verdict.reliable and not verdict.unseparated_classes):
        return findings
    marked = []
    for finding in findings:
        names = (finding.label, *finding.classes)
        if verdict.reliable and not any(verdict.unreliable_class(name) for name in names):
            marked.append(finding)
            continue
        marked.append(replace(finding, severity=Severity.INFO, details={**finding.details, "reliable": False}))
    return marked


def summary_fields(verdict: Reliability | None) -> dict[str, Any]:
    """What a model-based check adds to its run.json summary: ``reliable``, the reason and the figures."""
    if verdict is None:
        return {}
    return {"reliable": verdict.reliable, "reliability_reason": verdict.reason,
            "reliability": verdict.summary()}
