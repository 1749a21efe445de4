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
its log ratio to the top class is improbably high for a clean image of either class: a robust z-score
against that ratio among the two classes' images the classifier gets right, beyond the Bonferroni bar
for ``false_alarms`` chance flags in the whole dataset (``verdicts.split_of``). A blend of two classes
puts more of each in an image than the classifier's own confusions between those two classes do; the
bar scales with how confident the classifier is on this dataset and this class pair. (An adjusted
boxplot fence on the split, used before, flagged 2.9% of clean photos with a real CNN; Tukey's fence
10-14% everywhere.) An image with two or more plausible classes is
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
from typing import Any

import numpy as np
import pandas as pd

from auditor.checks.base import Check, CheckContext, CheckResult, Requirement, plain
from auditor.evidence.reliability import mark, summary_fields
from auditor.evidence.verdicts import AmbiguousParams, fit_sharpness, sharpen
from auditor.results.findings import Finding, FindingKind, Severity
from auditor.results.summaries import AmbiguousPair, AmbiguousSummary, ClassAmbiguity, ZeroShotAmbiguity

# The verdict and its params live in auditor.evidence.verdicts (class_overlap reads the same verdict).
__all__ = ["AmbiguousCheck", "AmbiguousParams", "fit_sharpness", "sharpen"]


class AmbiguousCheck(Check[AmbiguousParams]):
    name = "ambiguous"
    description = "images whose out-of-sample class evidence is split between two or more classes"
    requires = frozenset({Requirement.EMBEDDINGS, Requirement.LABELS})
    Params = AmbiguousParams
    kinds = {
        "ambiguous": FindingKind(
            "Ambiguous images",
            "Images whose evidence is split between several classes (candidates shown).",
            layout="candidates", order=7,
        ),
    }

    def run(self, ctx: CheckContext) -> CheckResult:
        params = self.params
        verdict = ctx.ambiguity_with(params)
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
        summary = AmbiguousSummary(
            sharpness=verdict.power,
            closeness_weight=params.closeness_weight,
            min_relative_probability=params.min_relative_probability,
            typical_evenness=embedded.typical,
            bar_z=embedded.bar_z,
            false_alarms=params.false_alarms,
            zero_shot=None if zero_shot is None else ZeroShotAmbiguity(
                typical_evenness=zero_shot.typical,
                bar_z=zero_shot.bar_z,
                flagged=int(verdict.by_zero_shot.sum()),
                flagged_only_by_zero_shot=int((verdict.by_zero_shot & ~verdict.by_embeddings).sum()),
            ),
            ambiguous=len(findings),
            not_reported_label_errors=int((verdict.excluded & ~verdict.by_zero_shot).sum()),
            per_class={
                name: ClassAmbiguity(ambiguous=per_class[name], images=int(counts.get(name, 0)),
                                     rate=per_class[name] / max(int(counts.get(name, 0)), 1))
                for name in classes
            },
            top_pairs=[AmbiguousPair(classes=list(pair), images=n) for pair, n in pairs[: params.top_pairs]],
            **summary_fields(ctx.reliability),
        )
        return CheckResult(mark(findings, ctx.reliability), columns={"ambiguity": column}, summary=summary)
