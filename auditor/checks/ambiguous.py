"""Images whose out-of-sample class evidence is split between two or more classes.

Many flagged "mistakes" in real datasets are images that honestly show two classes, so these are kept
apart from label errors. Two out-of-sample views of the evidence are pooled: the cross-validated
regression's probabilities (global: which side of the learned boundaries an image falls on) and class
closeness (local: how near the image comes to each class's nearest members, ``class_neighbours.py``).
A classifier may commit to one side for an image that sits between two classes, while closeness still
sees both, and their errors differ. They are pooled log-linearly (a weighted geometric mean), which on
``benchmarks/ambiguity.py`` beat an arithmetic mean at the same false-alarm rate. The pool is then
temperature-scaled to this dataset: one power, fitted by maximum likelihood against the given labels,
makes the probabilities as confident as the evidence has earned here. A class is *plausible* for an
image when its calibrated probability is at least ``min_relative_probability`` of the top class's and
the image's split lies beyond the dataset's adjusted-boxplot fence (Tukey's, widened by the splits'
medcouple skewness); an image with two or more plausible classes is
ambiguous. ``classes`` lists the given label first, then the competing plausible classes (strongest
first); ``score`` is the second-strongest over the strongest plausible probability (1.0: an even split).

Zero-shot: when the scan computed CLIP class prompts (``zero_shot.py``), their similarities are a third,
label-free view, judged alone by the same rule rather than pooled (a geometric pool lets confident
embedding views veto what only the prompts see); an image it finds split, with the given label among the
plausible classes, is reported too, and ``details.evidence`` says which view found it.

Overlap with ``label_error``: an image whose given label is implausible (cleanlab's
``find_label_issues`` on the label-error probabilities, the context's ``label_issue_mask``) is reported
only as a label error, unless the given label is itself one of the plausible classes; then the evidence
is split between the given label and another class, and it is reported as ambiguous as well.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from auditor.checks.base import Check, CheckContext, CheckResult, Requirement, plain
from auditor.class_neighbours import similarity_probabilities
from auditor.findings import Finding, Severity
from auditor.probabilities import fit_temperature, softmax
from auditor.reliability import mark, summary_fields

# Temperatures searched when calibrating (probabilities are raised to this power, then renormalised).
_TEMPERATURE_BOUNDS = (0.05, 100.0)


class AmbiguousParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # A class is plausible for an image when its calibrated probability is at least this fraction of
    # the top class's; two or more plausible classes make the image ambiguous.
    min_relative_probability: float = Field(0.1, gt=0.0, le=1.0)
    # ...and the image's split (second/top probability) must lie beyond the adjusted-boxplot fence: the
    # dataset's upper-quartile split plus this many interquartile ranges times exp(3 x medcouple). A
    # classifier unsure of every image so flags only the images it is unusually unsure of.
    fence_iqr: float = Field(1.5, ge=0.0)
    # Share of class closeness (mean similarity to each class's nearest members) in the evidence; the
    # rest is the cross-validated regression (0: regression only, 1: closeness only).
    closeness_weight: float = Field(0.5, ge=0.0, le=1.0)
    # Also flag images whose zero-shot evidence alone (similarity to CLIP class prompts, temperature fitted
    # to the labels) is split by the same rule, the given label among the plausible classes; only when the
    # scan computed class prompts ([zero_shot]). Unmeasured here: no pretrained weights on these machines.
    zero_shot: bool = True
    # Temperature-scale the evidence to the dataset first (off: use it as the models gave it).
    calibrate: bool = True
    # How many of the class pairs sharing the most ambiguous images to list in run.json.
    top_pairs: int = Field(10, ge=0)


def fit_sharpness(pred_probs: np.ndarray, labels: np.ndarray) -> float:
    """The power ``t`` for which ``pred_probs ** t`` (renormalised) best explains the given labels.

    ``t > 1`` sharpens probabilities a heavily regularised model left too flat; ``t < 1`` softens
    overconfident ones. It is the usual temperature scaling, written on log-probabilities.
    """
    return fit_temperature(np.log(pred_probs), labels, _TEMPERATURE_BOUNDS)


def pooled(first: np.ndarray, second: np.ndarray, weight: float) -> np.ndarray:
    """Log-linear pool: ``first ** (1 - weight) * second ** weight``, renormalised per row.

    A class keeps mass only where both views give it some, so one view's stray mass on an unrelated
    class is damped, while a class both views find plausible stays plausible.
    """
    return softmax((1.0 - weight) * np.log(first) + weight * np.log(second))


def sharpen(pred_probs: np.ndarray, power: float) -> np.ndarray:
    return softmax(np.log(pred_probs) * power)


@dataclass(frozen=True)
class Split:
    """One view's verdict: which classes are plausible for each image, and how evenly split it is."""

    probs: np.ndarray
    order: np.ndarray  # classes by descending probability, per image
    plausible: np.ndarray  # bool (n, classes)
    evenness: np.ndarray  # second / top probability
    typical: float  # median evenness
    relative: float  # the plausibility bar actually used (floor or fence)

    @property
    def candidates(self) -> np.ndarray:
        return self.plausible.sum(axis=1) >= 2


# Order statistics the medcouple is computed on: its cost grows with the square of this, not with n.
_MEDCOUPLE_POINTS = 801


def medcouple(values: np.ndarray) -> float:
    """The medcouple (Brys, Hubert & Struyf 2004): a robust skewness in [-1, 1], 0 for a symmetric sample.

    Computed on evenly spaced order statistics (at most ``_MEDCOUPLE_POINTS``), which keeps it exact for
    small samples, deterministic and independent of row order.
    """
    if len(values) < 3:
        return 0.0
    points = np.quantile(values, np.linspace(0.0, 1.0, min(len(values), _MEDCOUPLE_POINTS)))
    middle = float(np.median(points))
    below, above = points[points <= middle], points[points >= middle]
    width = above[None, :] - below[:, None]
    # Pairs straddling the median; pairs tied at the median carry no skew and are left out.
    kernel = ((above[None, :] - middle) - (middle - below[:, None])) / np.where(width > 1e-12, width, 1.0)
    kernel = kernel[width > 1e-12]
    return float(np.median(kernel)) if len(kernel) else 0.0


def split_of(probs: np.ndarray, params: AmbiguousParams) -> Split:
    order = np.argsort(-probs, axis=1, kind="stable")
    rows = np.arange(len(probs))
    top = probs[rows, order[:, 0]]
    evenness = probs[rows, order[:, 1]] / top
    # Quartiles on the plain (bounded) scale: on a log scale the many near-zero splits of a confident
    # classifier stretch the spread and push the fence up to where only encoder confusions remain.
    lower, median, upper = (float(q) for q in np.quantile(evenness, [0.25, 0.5, 0.75]))
    # Splits are skewed (most images near 0 for a confident classifier, a long tail): Tukey's fence on
    # them sits inside the tail and flagged 8-15% of clean images. The adjusted boxplot (Hubert &
    # Vandervieren 2008) widens the fence by the skewness the medcouple measures, with its published
    # constants (3 for right skew, -4 for left), so the bar scales with how confident the classifier is
    # on this dataset overall.
    skew = medcouple(evenness)
    widen = np.exp((3.0 if skew >= 0 else 4.0) * skew)
    relative = min(1.0, max(params.min_relative_probability, upper + params.fence_iqr * widen * (upper - lower)))
    return Split(probs, order, probs >= relative * top[:, None], evenness, median, relative)


@dataclass(frozen=True)
class Ambiguity:
    """Which ``labelled`` images are ambiguous and between which classes (``CheckContext.ambiguity``)."""

    embedded: Split  # the pooled embedding views
    zero_shot: Split | None  # the class prompts, when the scan computed them
    power: float  # sharpening power fitted to the pooled views
    by_embeddings: np.ndarray  # bool per image: the embedding views find it split
    by_zero_shot: np.ndarray  # bool per image: the prompts alone find it split (given label plausible)
    excluded: np.ndarray  # bool: split, but a label error whose given label is implausible
    # Flagged image index -> class indices named, the given label first, then the competing classes.
    named: dict[int, tuple[int, ...]]

    def pair_counts(self) -> Counter[tuple[int, int]]:
        """Ambiguous images per unordered class pair (an image naming three classes counts for each pair)."""
        counts: Counter[tuple[int, int]] = Counter()
        for classes in self.named.values():
            counts.update(tuple(sorted(pair)) for pair in combinations(classes, 2))  # type: ignore[misc]
        return counts


def ambiguity(ctx: CheckContext, params: AmbiguousParams) -> Ambiguity:
    labels = ctx.label_ids
    rows = np.arange(len(labels))
    evidence = ctx.regression_probs
    if params.closeness_weight > 0:
        positions = np.flatnonzero(ctx.embedded["label"].notna().to_numpy())
        similarity = ctx.class_neighbourhoods.similarity[ctx.distinct_vector_of[positions]]
        evidence = pooled(evidence, similarity_probabilities(similarity, labels), params.closeness_weight)
    power = fit_sharpness(evidence, labels) if params.calibrate else 1.0
    embedded = split_of(sharpen(evidence, power), params)
    given_plausible = embedded.plausible[rows, labels]
    excluded = embedded.candidates & ctx.label_issue_mask & ~given_plausible
    by_embeddings = embedded.candidates & ~excluded

    zero_shot: Split | None = None
    by_zero_shot = np.zeros(len(labels), dtype=bool)
    if params.zero_shot and ctx.zero_shot_similarity is not None:
        zero_shot = split_of(similarity_probabilities(ctx.zero_shot_similarity, labels), params)
        # Label-free evidence that leaves out the given label is a label question, not ambiguity.
        by_zero_shot = zero_shot.candidates & zero_shot.plausible[rows, labels]

    named: dict[int, tuple[int, ...]] = {}
    for i in np.flatnonzero(by_embeddings | by_zero_shot):
        view = embedded if by_embeddings[i] else zero_shot
        assert view is not None
        plausible = view.plausible[i].copy()
        if zero_shot is not None and by_zero_shot[i]:
            plausible |= zero_shot.plausible[i]
        # The reporting view's order first, then any class only the other view found plausible.
        competing = [int(c) for c in view.order[i] if plausible[c] and c != labels[i]]
        competing += [int(c) for c in np.flatnonzero(plausible) if c != labels[i] and c not in competing]
        named[int(i)] = (int(labels[i]), *competing)
    return Ambiguity(embedded, zero_shot, power, by_embeddings, by_zero_shot, excluded, named)


class AmbiguousCheck(Check):
    name = "ambiguous"
    description = "images whose out-of-sample class evidence is split between two or more classes"
    requires = frozenset({Requirement.EMBEDDINGS, Requirement.LABELS})
    Params = AmbiguousParams

    def run(self, ctx: CheckContext) -> CheckResult:
        params = self.params
        assert isinstance(params, AmbiguousParams)
        # The context's verdict (shared with class_overlap) when this check runs with the configured params.
        verdict = ctx.ambiguity if params == ctx.config.check_params(self.name) else ambiguity(ctx, params)
        classes = ctx.labelled_classes
        labels = ctx.label_ids
        embedded, zero_shot = verdict.embedded, verdict.zero_shot
        label_errors = ctx.label_issue_mask
        findings: list[Finding] = []
        per_class: Counter[str] = Counter()
        rows = ctx.labelled
        score = embedded.evenness.copy()
        for i, named in verdict.named.items():
            row = rows.iloc[i]
            given = classes[labels[i]]
            by_embeddings, by_zero_shot = bool(verdict.by_embeddings[i]), bool(verdict.by_zero_shot[i])
            view = embedded if by_embeddings else zero_shot
            assert view is not None
            per_class[given] += 1
            score[i] = max(embedded.evenness[i] if by_embeddings else 0.0,
                           zero_shot.evenness[i] if zero_shot is not None and by_zero_shot else 0.0)
            shown = ", ".join(f"{classes[c]} {view.probs[i, c]:.2f}" for c in view.order[i] if view.plausible[i, c])
            note = "" if view.plausible[i, labels[i]] else f"; the given label {given!r} is not among them"
            source = "" if view is embedded else " (zero-shot class prompts)"
            details: dict[str, Any] = {
                "probabilities": {classes[c]: float(embedded.probs[i, c]) for c in named},
                "given_label_probability": float(embedded.probs[i, labels[i]]),
                "given_label_plausible": bool(embedded.plausible[i, labels[i]]),
                "also_label_error": bool(label_errors[i]),
                "evidence": [name for name, hit in (("embeddings", by_embeddings), ("zero_shot", by_zero_shot))
                             if hit],
                "sharpness": verdict.power,
            }
            if zero_shot is not None:
                details["zero_shot_probabilities"] = {classes[c]: float(zero_shot.probs[i, c]) for c in named}
            findings.append(
                Finding(
                    check=self.name,
                    severity=Severity.WARNING,
                    message=f"evidence{source} split between {int(view.plausible[i].sum())} classes ({shown}){note}",
                    path=row["path"],
                    label=given,
                    split=plain(row["split"]),
                    sha256=plain(row["sha256"]),
                    score=float(score[i]),
                    classes=tuple(classes[c] for c in named),
                    details=details,
                )
            )

        column = pd.Series(np.nan, index=ctx.images.index, dtype="float64")
        column.loc[rows.index] = score
        counts = rows["label"].value_counts()
        pairs = sorted(((tuple(classes[c] for c in pair), n) for pair, n in verdict.pair_counts().items()),
                       key=lambda item: (-item[1], item[0]))
        summary: dict[str, Any] = {
            "sharpness": verdict.power,
            "closeness_weight": params.closeness_weight,
            "min_relative_probability": params.min_relative_probability,
            "typical_evenness": embedded.typical,
            "relative_probability_used": embedded.relative,
            "zero_shot": None if zero_shot is None else {
                "typical_evenness": zero_shot.typical,
                "relative_probability_used": zero_shot.relative,
                "flagged": int(verdict.by_zero_shot.sum()),
                "flagged_only_by_zero_shot": int((verdict.by_zero_shot & ~verdict.by_embeddings).sum()),
            },
            "ambiguous": len(findings),
            "not_reported_label_errors": int((verdict.excluded & ~verdict.by_zero_shot).sum()),
            "per_class": {
                name: {"ambiguous": per_class[name], "images": int(counts.get(name, 0)),
                       "rate": per_class[name] / max(int(counts.get(name, 0)), 1)}
                for name in classes
            },
            "top_pairs": [{"classes": list(pair), "images": n} for pair, n in pairs[: params.top_pairs]],
            **summary_fields(ctx.reliability),
        }
        return CheckResult(mark(findings, ctx.reliability), columns={"ambiguity": column}, summary=summary)
