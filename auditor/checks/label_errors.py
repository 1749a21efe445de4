"""Images whose given label is implausible: confident learning on out-of-sample probabilities.

cleanlab's ``find_label_issues`` decides *which* images are flagged (it estimates how many images of
each given class really belong to each other class, the confident joint, and flags that many, most
doubtful first); ``get_label_quality_scores`` ranks every image (0..1, low: likely wrong). Both read
the context's out-of-sample probabilities, so no image vouches for its own label. With
``unclaimed_images`` an image is also flagged when its top class is another and its given label gets no
more than that class gets on images labelled otherwise (``verdicts.implausible_labels``): confidently not
its label, where no single other class is confident enough for the count.

Exact copies (identical decoded pixels) filed under different labels are a label conflict whatever
the classifier says: the minority copies are flagged with the majority label suggested; on a tie every
copy is flagged, with the other label(s) listed, because nothing says which label is right.

Images of classes with fewer than ``[evidence.label_issues] min_class_images`` embedded images, or fewer than
``min_class_fraction_of_median`` of the median class's, are not judged by the classifier: no held-out model
saw enough of their class to know what it looks like. Nor are images of
a class whose estimated error rate is 50% or more: confident learning can only tell which labels are
wrong when most of a class is labelled right, so there the classifier, not the labels, has failed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

import numpy as np
import pandas as pd

from auditor.checks.base import Check, CheckContext, CheckResult, Requirement
from auditor.core.config import ConfigModel
from auditor.core.slow_imports import cleanlab_rank
from auditor.evidence.reliability import mark, summary_fields
from auditor.results.findings import Finding, FindingKind, Severity, plain
from auditor.results.summaries import ClassLabelErrors, LabelErrorsSummary

QualityMethod = Literal["self_confidence", "normalized_margin", "confidence_weighted_entropy"]


class LabelErrorsParams(ConfigModel):
    """The check's own setting; which labels are implausible is the shared evidence's ``[evidence.label_issues]``."""

    # How label_quality is computed (cleanlab get_label_quality_scores): the out-of-sample
    # probability of the given label, or its margin over the strongest other class.
    quality_method: QualityMethod = "self_confidence"


def per_class_error_rates(joint: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """From cleanlab's calibrated confident joint: the share of each class's images that belong elsewhere."""
    given_mass = joint.sum(axis=1)
    rates = {
        name: float(1.0 - joint[k, k] / given_mass[k]) if given_mass[k] > 0 else None
        for k, name in enumerate(classes)
    }
    return {"dataset": float(1.0 - np.trace(joint)), "per_class": rates}


class LabelErrorsCheck(Check[LabelErrorsParams]):
    name = "label_errors"
    description = "images whose given label is implausible (confident learning), and conflicting labels on copies"
    requires = frozenset({Requirement.EMBEDDINGS, Requirement.LABELS})
    Params = LabelErrorsParams
    produces = frozenset({"label_error"})
    kinds = {
        "label_error": FindingKind(
            "Label errors",
            "Images whose content looks like another class: given label → suggested label.",
            layout="labels", order=2,
        ),
    }

    def run(self, ctx: CheckContext) -> CheckResult:
        params = self.params
        classes = ctx.evidence.labelled_classes
        labels = ctx.evidence.label_ids
        probs = ctx.evidence.pred_probs
        rows = ctx.evidence.labelled
        quality = np.asarray(
            cleanlab_rank.get_label_quality_scores(labels, probs, method=params.quality_method), dtype=float
        )
        predicted = probs.argmax(axis=1)
        class_sizes = np.bincount(labels, minlength=len(classes))
        noise = per_class_error_rates(ctx.evidence.confident_joint, classes)
        # Confident learning assumes most of each class is labelled right; where it estimates that most
        # of a class is wrong, the classifier has failed to learn the class, and its flags mean nothing.
        unlearnt = np.array([(noise["per_class"][name] or 0.0) >= 0.5 for name in classes], dtype=bool)
        large = ctx.evidence.judged_classes
        judged = large[labels] & ~unlearnt[labels]
        flagged = ctx.evidence.label_issues & judged

        findings: dict[int, Finding] = {}
        flagged_rows = np.flatnonzero(flagged)
        # Only the classifier's verdicts depend on the embedding; label conflicts between copies do not.
        classifier = mark([self._classifier_finding(ctx, int(i), quality[i]) for i in flagged_rows],
                          ctx.evidence.reliability)
        for i, finding in zip(flagged_rows, classifier, strict=True):
            findings[int(rows.index[i])] = finding
        conflicts = self._conflict_findings(ctx, quality)
        findings.update(conflicts)

        pred_label = pd.Series([None] * len(ctx.images), index=ctx.images.index, dtype="object")
        pred_label.loc[rows.index] = [classes[c] for c in predicted]
        label_quality = pd.Series(np.nan, index=ctx.images.index, dtype="float64")
        label_quality.loc[rows.index] = quality
        flagged_per_class = Counter(f.label for f in findings.values())
        summary = LabelErrorsSummary(
            filter_by=ctx.evidence.settings.label_issues.filter_by,
            quality_method=params.quality_method,
            label_errors=len(findings),
            label_conflicts=len(conflicts),
            not_judged_small_class=int((~large[labels]).sum()),
            not_judged_unlearnt_classes=[name for k, name in enumerate(classes) if unlearnt[k]],
            estimated_error_rate=noise["dataset"],
            per_class={
                name: ClassLabelErrors(
                    images=int(class_sizes[k]),
                    flagged=flagged_per_class[name],
                    estimated_error_rate=noise["per_class"][name],
                )
                for k, name in enumerate(classes)
            },
            **summary_fields(ctx.evidence.reliability),
        )
        ordered = [findings[index] for index in sorted(findings)]
        return CheckResult(ordered, columns={"pred_label": pred_label, "label_quality": label_quality},
                           summary=summary)

    def _classifier_finding(self, ctx: CheckContext, i: int, quality: float) -> Finding:
        evidence = ctx.evidence
        classes, probs, given = evidence.labelled_classes, evidence.pred_probs[i], int(evidence.label_ids[i])
        order = np.argsort(-probs, kind="stable")
        suggested = int(next(c for c in order if c != given))
        row = ctx.evidence.labelled.iloc[i]
        return Finding(
            check="label_error",
            severity=Severity.WARNING,
            message=(
                f"labelled {classes[given]!r} but looks like {classes[suggested]!r} "
                f"(out-of-sample probability {probs[suggested]:.2f} vs {probs[given]:.2f} for the given label)"
            ),
            path=row["path"],
            label=classes[given],
            split=plain(row["split"]),
            suggested_label=classes[suggested],
            score=float(1.0 - quality),
            sha256=plain(row["sha256"]),
            classes=(classes[given], classes[suggested]),
            details={
                "reason": "classifier",
                "label_quality": float(quality),
                "given_label_probability": float(probs[given]),
                "suggested_label_probability": float(probs[suggested]),
                "top_classes": {classes[c]: float(probs[c]) for c in order[:3]},
            },
        )

    def _conflict_findings(self, ctx: CheckContext, quality: np.ndarray) -> dict[int, Finding]:
        """Exact copies under different labels: the minority copies (every copy on a tie)."""
        position = {index: i for i, index in enumerate(ctx.evidence.labelled.index)}
        findings: dict[int, Finding] = {}
        for group in ctx.evidence.exact_copy_groups:
            members = [index for index in group if plain(ctx.images.at[index, "label"]) is not None]
            counts = Counter(str(ctx.images.at[index, "label"]) for index in members)
            if len(counts) < 2:
                continue
            top = max(counts.values())
            majority = sorted(label for label, count in counts.items() if count == top)
            for index in members:
                row = ctx.images.loc[index]
                given = str(row["label"])
                if given in majority and len(majority) == 1:
                    continue
                others = sorted(label for label in counts if label != given)
                suggested = majority[0] if len(majority) == 1 else (others[0] if len(others) == 1 else None)
                copies = [str(ctx.images.at[other, "path"]) for other in members if other != index]
                disagreeing = sum(count for label, count in counts.items() if label != given)
                tie = " (a tie: no majority label)" if len(majority) > 1 else ""
                i = position.get(index)
                findings[int(index)] = Finding(
                    check="label_error",
                    severity=Severity.ERROR,
                    message=(
                        f"label conflict: labelled {given!r} but {disagreeing} identical cop"
                        f"{'y is' if disagreeing == 1 else 'ies are'} labelled "
                        f"{', '.join(repr(label) for label in others)}{tie}"
                    ),
                    path=str(row["path"]),
                    label=given,
                    split=plain(row["split"]),
                    suggested_label=suggested,
                    score=disagreeing / len(members),
                    sha256=plain(row["sha256"]),
                    classes=(given, *others),
                    details={
                        "reason": "label conflict",
                        "label_counts": dict(sorted(counts.items())),
                        "other_labels": others,
                        "copies": copies,
                        "label_quality": float(quality[i]) if i is not None else None,
                    },
                )
        return findings
