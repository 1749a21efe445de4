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
``find_label_issues`` on the label-error probabilities, the shared evidence's ``label_issues``) is reported
only as a label error, unless the given label is itself one of the plausible classes; then the evidence
is split between the given label and another class, and it is reported as ambiguous as well.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from auditor.checks.base import Check, CheckContext, CheckResult, Requirement
from auditor.core.config import ConfigModel
from auditor.evidence.reliability import mark, summary_fields
from auditor.evidence.verdicts import Ambiguity, Split
from auditor.results.findings import Finding, FindingKind, Severity, plain
from auditor.results.summaries import AmbiguousPair, AmbiguousSummary, ClassAmbiguity, ZeroShotAmbiguity


class AmbiguousParams(ConfigModel):
    """The check's own setting; the ambiguity rule is the shared evidence's ``[evidence.ambiguity]``."""

    # How many of the class pairs sharing the most ambiguous images to list in run.json.
    top_pairs: int = Field(10, ge=0)


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
        rule = ctx.evidence.settings.ambiguity
        verdict = ctx.evidence.ambiguity
        classes = ctx.evidence.labelled_classes
        embedded, zero_shot = verdict.embedded, verdict.zero_shot
        rows = ctx.evidence.labelled
        score = embedded.evenness.copy()
        findings: list[Finding] = []
        per_class: Counter[str] = Counter()
        for i, named in verdict.named.items():
            image = _Flagged(ctx, verdict, i, named)
            score[i] = image.score
            per_class[image.given] += 1
            findings.append(image.finding(self.name))

        column = pd.Series(np.nan, index=ctx.images.index, dtype="float64")
        column.loc[rows.index] = score
        counts = rows["label"].value_counts()
        pairs = sorted(((tuple(classes[c] for c in pair), n) for pair, n in verdict.pair_counts().items()),
                       key=lambda item: (-item[1], item[0]))
        summary = AmbiguousSummary(
            sharpness=verdict.power,
            closeness_weight=rule.closeness_weight,
            min_relative_probability=rule.min_relative_probability,
            typical_evenness=embedded.typical,
            bar_z=embedded.bar_z,
            false_alarms=rule.false_alarms,
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
            **summary_fields(ctx.evidence.reliability),
        )
        return CheckResult(mark(findings, ctx.evidence.reliability), columns={"ambiguity": column}, summary=summary)


@dataclass(frozen=True)
class _Flagged:
    """One ambiguous image (``i``: its ``labelled`` position; ``named``: the given class, then the competing
    ones), seen through the view that reports it: the pooled embedding evidence, else the zero-shot prompts."""

    ctx: CheckContext
    verdict: Ambiguity
    i: int
    named: tuple[int, ...]

    @property
    def given(self) -> str:
        return self.ctx.evidence.labelled_classes[self.label]

    @property
    def label(self) -> int:
        return int(self.ctx.evidence.label_ids[self.i])

    @property
    def by_embeddings(self) -> bool:
        return bool(self.verdict.by_embeddings[self.i])

    @property
    def by_zero_shot(self) -> bool:
        return bool(self.verdict.by_zero_shot[self.i])

    @property
    def view(self) -> Split:
        view = self.verdict.embedded if self.by_embeddings else self.verdict.zero_shot
        assert view is not None  # an image is flagged by the embeddings or by the prompts
        return view

    @property
    def score(self) -> float:
        """The evenness of the split (second over top plausible probability) in the views that flag it."""
        zero_shot = self.verdict.zero_shot
        return max(self.verdict.embedded.evenness[self.i] if self.by_embeddings else 0.0,
                   zero_shot.evenness[self.i] if zero_shot is not None and self.by_zero_shot else 0.0)

    def details(self) -> dict[str, Any]:
        classes, i, embedded, zero_shot = self.ctx.evidence.labelled_classes, self.i, self.verdict.embedded, \
            self.verdict.zero_shot
        details: dict[str, Any] = {
            "probabilities": {classes[c]: float(embedded.probs[i, c]) for c in self.named},
            "given_label_probability": float(embedded.probs[i, self.label]),
            "given_label_plausible": bool(embedded.plausible[i, self.label]),
            "also_label_error": bool(self.ctx.evidence.label_issues[i]),
            "evidence": [name for name, hit in (("embeddings", self.by_embeddings), ("zero_shot", self.by_zero_shot))
                         if hit],
            "sharpness": self.verdict.power,
        }
        if zero_shot is not None:
            details["zero_shot_probabilities"] = {classes[c]: float(zero_shot.probs[i, c]) for c in self.named}
        return details

    def finding(self, check: str) -> Finding:
        classes, i, view = self.ctx.evidence.labelled_classes, self.i, self.view
        row = self.ctx.evidence.labelled.iloc[i]
        shown = ", ".join(f"{classes[c]} {view.probs[i, c]:.2f}" for c in view.order[i] if view.plausible[i, c])
        note = "" if view.plausible[i, self.label] else f"; the given label {self.given!r} is not among them"
        source = "" if view is self.verdict.embedded else " (zero-shot class prompts)"
        return Finding(
            check=check,
            severity=Severity.WARNING,
            message=f"evidence{source} split between {int(view.plausible[i].sum())} classes ({shown}){note}",
            path=row["path"],
            label=self.given,
            split=plain(row["split"]),
            sha256=plain(row["sha256"]),
            score=float(self.score),
            classes=tuple(classes[c] for c in self.named),
            details=self.details(),
        )
