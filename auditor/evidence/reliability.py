"""Can the model-based checks' evidence be trusted: are the label-error flags mostly label errors?

``label_errors``, ``class_overlap``, ``ambiguous`` and ``outliers`` all read out-of-sample evidence from
a classifier trained on the embeddings. When the embedding barely separates the classes (a weak encoder
on similar-looking classes), that classifier's own mistakes look exactly like label noise, and confident
learning reports them as label errors: hundreds of confident, wrong findings. This module measures, once
per scan, whether that is happening.

**Where the flags come from.** A disagreement between the classifier and a label has two causes that
leave different traces. Label noise strikes regardless of how the image looks, so it remains at full
confidence; the classifier's own mistakes on correctly labelled images vanish as its confidence ``c``
rises. ``DisagreementModel`` fits, by maximum likelihood over the judged images, P(disagree | c) =
``noise + scale * (1 - c) ** exponent``: the floor is the noise rate, the rest the classifier's mistakes
(the fitted exponent matters: these regressions are under-confident, mistakes fall to zero well before
``c`` = 1, and a straight line, the earlier model, put half the noise into the mistakes). For a flag at
confidence ``c_i`` the share of disagreements there that are noise, ``noise / (noise + scale * (1 -
c_i) ** exponent)``, is the probability that it is a real label error; its mean over the flags is their
expected precision.

**The rule.** The flags must not be expected to be mostly wrong: the expected precision's upper bound
(``confidence``, the expected right flags seen as a binomial count of the flags) must reach
``min_expected_flag_precision`` (0.5: a flag at least as likely noise as the classifier's mistake),
and, as before, the classifier must be closer to perfect than to chance (chance-corrected balanced
accuracy ``(BA - 1/K) / (1 - 1/K)`` at least ``min_chance_corrected_accuracy``, 0.5: near chance the
disagreement is flat in confidence and the floor cannot be told from the mistakes). The comparison
transfers across class counts, sizes and encoders because it reads the run's own noise and mistakes
rather than an accuracy level: 0.52-0.61 chance-corrected accuracy came with flags 19-22% right on
10- and 17-class real photos, 0.82 with 70% on 2-class ones. The bound, not the estimate, decides because
the estimate is conservative on strong embeddings (real-CNN flowers at 400 images: 0.42 against a real
0.59) and a handful of flags should not be condemned on its mean, while hundreds of wrong flags give a
tight bound (built-in encoder, 17-class flowers: 0.13, bound 0.16, real 0.19).

**Per class.** A class is marked, its findings demoted even when the rest are trusted, when its recall's
lower bound is not above chance (unseparated) or when the same comparison over its own flags fails
(doubtful: e.g. two classes the embedding merges, whose recall of ~0.5 is far above chance).

Measured with ``benchmarks/reliability.py`` (confident-flag precision / recall, before -> after; built-in
encoder unless noted): 17-class flowers at 400/800/1,394 images 0.16/0.17/0.19 reliable -> unreliable;
10-class CIFAR-10N (real human noise) at 6,000 0.22 reliable -> unreliable (1,000 and 3,000 were
already unreliable); the same flowers through a CNN at 400/800/1,394 (0.59/0.76/0.89), digits (0.95),
shapes (0.73), CNN ant/bee photos (0.70) stay reliable with unchanged F1; CIFAR with planted noise through
the CNN (flags 27% right) becomes unreliable.

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
    # Classes whose own label-error flags are expected to be mostly the classifier's mistakes.
    doubtful_classes: tuple[str, ...] = ()

    def unreliable_class(self, name: str | None) -> bool:
        return not self.reliable or (name is not None and (name in self.unseparated_classes
                                                           or name in self.doubtful_classes))

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
            "doubtful_classes": list(self.doubtful_classes),
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
    correct = pred_probs.argmax(axis=1) == labels
    sizes = np.bincount(labels, minlength=k)
    present = sizes > 0
    recall = np.array([correct[labels == c].mean() if sizes[c] else np.nan for c in range(k)])
    balanced = float(np.nanmean(recall)) if present.any() else 0.0
    variance = float(np.nansum(recall * (1 - recall) / np.maximum(sizes, 1))) / max(int(present.sum()), 1) ** 2
    corrected = (balanced - chance) / max(1.0 - chance, 1e-12)

    disagree = (~correct).astype(np.float64)
    model = DisagreementModel.fit(1.0 - regression_probs.max(axis=1)[judged], disagree[judged])
    noise_share = model.noise_share(1.0 - regression_probs.max(axis=1))
    flagged = flags & judged
    n_flags = int(flagged.sum())
    expected = float(noise_share[flagged].mean()) if n_flags else None
    upper = _precision_upper(expected, n_flags, params.confidence)
    per_class, unseparated, doubtful = _per_class(classes, labels, recall, judged, flagged, noise_share, z, params)
    reason = _reason(balanced, chance, corrected, (expected, upper), model, params) if params.enabled else None
    return Reliability(
        reliable=reason is None,
        reason=reason,
        chance=chance,
        balanced_accuracy=balanced,
        balanced_accuracy_lower=float(balanced - z * variance ** 0.5),
        chance_corrected=float(corrected),
        chance_corrected_upper=float((balanced + z * variance ** 0.5 - chance) / max(1.0 - chance, 1e-12)),
        accuracy=float(correct.mean()) if len(correct) else 0.0,
        calibration_error=_calibration_error(pred_probs.max(axis=1), correct),
        noise_estimate=model.noise,
        classifier_error=float(max(disagree[judged].mean() - model.noise, 0.0)) if judged.any() else 0.0,
        flags=n_flags,
        expected_precision=expected,
        expected_precision_upper=upper,
        per_class=per_class,
        unseparated_classes=tuple(unseparated) if params.enabled else (),
        doubtful_classes=tuple(doubtful) if params.enabled else (),
    )


def _reason(balanced: float, chance: float, corrected: float, precision: tuple[float | None, float | None],
            model: DisagreementModel, params: ReliabilityParams) -> str | None:
    """Why the checks' evidence cannot be trusted, or ``None``: a classifier closer to chance than to perfect,
    or flags whose expected precision (``precision``: estimate, upper bound) is clearly below the bar."""
    expected, upper = precision
    figures = (f"cross-validated balanced accuracy {balanced:.2f}, chance {chance:.2f}; estimated label noise "
               f"{model.noise:.3f}")
    if corrected < params.min_chance_corrected_accuracy:
        return (f"the embedding barely separates the classes: closer to chance than to perfect (chance-corrected "
                f"{corrected:.2f}; {figures})")
    if expected is not None and upper is not None and upper < params.min_expected_flag_precision:
        return (f"the classifier's own mistakes are expected to outnumber the label errors among its flags: "
                f"expected flag precision {expected:.2f} (upper bound {upper:.2f}), below "
                f"{params.min_expected_flag_precision:.2f} ({figures})")
    return None


def _per_class(
    classes: list[str], labels: np.ndarray, recall: np.ndarray, judged: np.ndarray, flagged: np.ndarray,
    noise_share: np.ndarray, z: float, params: ReliabilityParams,
) -> tuple[dict[str, dict[str, float]], list[str], list[str]]:
    """Per-class figures; the classes not above chance (unseparated) and those whose own flags are expected
    to be mostly the classifier's mistakes (doubtful)."""
    chance = 1.0 / max(len(classes), 1)
    sizes = np.bincount(labels, minlength=len(classes))
    per_class: dict[str, dict[str, float]] = {}
    unseparated: list[str] = []
    doubtful: list[str] = []
    for c, name in enumerate(classes):
        if not sizes[c]:
            continue
        members = labels == c
        lower = _wilson_lower(float(recall[c]), int(sizes[c]), z)
        per_class[name] = {"images": int(sizes[c]), "recall": float(recall[c]), "recall_lower_bound": lower}
        if judged[members].any() and lower <= chance:
            unseparated.append(name)
        class_flags = flagged & members
        if class_flags.any():
            precision = float(noise_share[class_flags].mean())
            upper = _precision_upper(precision, int(class_flags.sum()), params.confidence)
            per_class[name] |= {"flags": int(class_flags.sum()), "expected_flag_precision": precision,
                                "expected_flag_precision_upper_bound": upper or 0.0}
            if upper is not None and upper < params.min_expected_flag_precision:
                doubtful.append(name)
    return per_class, unseparated, doubtful


def _precision_upper(expected: float | None, n_flags: int, confidence: float) -> float | None:
    """Upper bound of the flags' precision at the verdict's confidence level: the expected number of right
    flags seen as a binomial count out of ``n_flags``, so a handful of flags is not condemned on its mean."""
    if expected is None:
        return None
    true_flags = expected * n_flags
    if true_flags >= n_flags:
        return 1.0
    return float(scipy_stats.beta.ppf(confidence, true_flags + 1, n_flags - true_flags))


@dataclass(frozen=True)
class DisagreementModel:
    """P(the classifier disagrees with the given label | its confidence c) = noise + scale * (1 - c) ** exponent.

    Label noise strikes regardless of how the image looks, so it is the floor that remains at full
    confidence; the classifier's own mistakes on correctly labelled images vanish as its confidence rises,
    faster than linearly for the under-confident regressions these embeddings give (measured: no mistakes
    above confidence 0.9 on digits), hence the fitted exponent (1 with scale 1 is a calibrated classifier).
    """

    noise: float
    scale: float
    exponent: float

    @classmethod
    def fit(cls, uncertainty: np.ndarray, disagree: np.ndarray) -> DisagreementModel:
        """Maximum likelihood, noise in [0, 1] (started from a linear, a quadratic and a steep curve)."""
        if len(disagree) == 0 or disagree.sum() == 0:
            return cls(0.0, 0.0, 1.0)

        log_uncertainty = np.log(np.maximum(uncertainty, 1e-12))

        def negative_log_likelihood(theta: np.ndarray) -> tuple[float, np.ndarray]:
            """The value and its analytic gradient (2.5 s against 3.3 s numerically at 100k images, 2 busy cores)."""
            power = np.exp(theta[2] * log_uncertainty)
            p = np.clip(theta[0] + theta[1] * power, 1e-9, 1 - 1e-9)
            dp = -(disagree / p - (1 - disagree) / (1 - p))
            gradient = np.array([dp.sum(), (dp * power).sum(), (dp * theta[1] * power * log_uncertainty).sum()])
            return float(-(disagree * np.log(p) + (1 - disagree) * np.log(1 - p)).sum()), gradient

        best = None
        # Three parameters: the optimiser's BLAS calls are tiny, and their threads' spin-waiting cost 7x the
        # CPU (40 ms against 6 ms at 1,000 images on a busy machine).
        with blas_threads(1):
            for exponent in (1.0, 2.0, 4.0):
                result = scipy_optimize.minimize(
                    negative_log_likelihood, np.array([disagree.mean() / 2, 0.5, exponent]),
                    bounds=[(0.0, 1.0), (0.0, None), (0.25, 20.0)], method="L-BFGS-B", jac=True,
                )
                if best is None or result.fun < best.fun:
                    best = result
        assert best is not None
        # The noise cannot exceed the disagreement it is part of.
        return cls(float(min(best.x[0], disagree.mean())), float(best.x[1]), float(best.x[2]))

    def noise_share(self, uncertainty: np.ndarray) -> np.ndarray:
        """Per image: the share of disagreements at its confidence that are label noise, i.e. the posterior
        that a flag there is a real label error rather than the classifier's mistake."""
        noise = np.full(len(uncertainty), self.noise)
        mistakes = self.scale * np.power(uncertainty, self.exponent)
        return np.asarray(np.divide(noise, noise + mistakes, out=np.zeros_like(noise), where=noise + mistakes > 0))


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

    When the whole assessment fails, every finding; otherwise those about an unseparated or doubtful class
    (an image filed under it, or a class pair naming it). The findings stay, so nothing is hidden.
    """
    if verdict is None or (verdict.reliable and not verdict.unseparated_classes and not verdict.doubtful_classes):
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
