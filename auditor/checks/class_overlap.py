"""Pairs of classes the classifier keeps confusing: candidates to merge or to define more sharply.

cleanlab's ``find_overlapping_classes`` reads the calibrated confident joint (the estimated share of
the dataset labelled one class while belonging to the other) and sums both directions for each pair.
A pair is reported when that mass is a large enough share of the two classes together: scattered
label noise spreads thinly over every pair, while two ill-defined classes concentrate on one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from auditor.checks.base import Check, CheckContext, CheckResult, Requirement
from auditor.findings import Finding, Severity


class ClassOverlapParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Report a pair when its joint mass (images estimated to be labelled one class of the pair while
    # belonging to the other, both directions) is at least this share of the two classes' images.
    min_pair_fraction: float = Field(0.1, gt=0.0, le=1.0)
    # ...and at least this many images are estimated to be confused (so two stray images in tiny
    # classes do not make a pair).
    min_images: int = Field(3, ge=1)


class ClassOverlapCheck(Check):
    name = "class_overlap"
    description = "pairs of classes that are often confused with each other (from the confident joint)"
    requires = frozenset({Requirement.EMBEDDINGS, Requirement.LABELS})
    Params = ClassOverlapParams

    def run(self, ctx: CheckContext) -> CheckResult:
        from cleanlab.dataset import find_overlapping_classes

        params = self.params
        assert isinstance(params, ClassOverlapParams)
        classes = ctx.labelled_classes
        labels = ctx.label_ids
        joint = ctx.confident_joint
        class_mass = joint.sum(axis=1) + joint.sum(axis=0)
        pairs = find_overlapping_classes(joint=joint, num_examples=len(labels))
        findings: list[Finding] = []
        listed: list[dict[str, Any]] = []
        for pair in pairs.to_dict("records"):
            a, b = int(pair["Class Index A"]), int(pair["Class Index B"])
            mass = float(pair["Joint Probability"])
            overlapping = int(pair["Num Overlapping Examples"])
            # Each class's mass counted once: half of (its row + its column) of the joint.
            share = mass / max(float(class_mass[a] + class_mass[b]) / 2, 1e-12)
            entry = {"classes": [classes[a], classes[b]], "joint_probability": mass,
                     "overlapping_images": overlapping, "pair_fraction": share}
            listed.append(entry)
            if share < params.min_pair_fraction or overlapping < params.min_images:
                continue
            findings.append(
                Finding(
                    check=self.name,
                    severity=Severity.WARNING,
                    message=(
                        f"classes {classes[a]!r} and {classes[b]!r} overlap: about {overlapping} image(s), "
                        f"{share:.0%} of the pair, are estimated to be labelled one while showing the other"
                    ),
                    classes=(classes[a], classes[b]),
                    score=share,
                    details={
                        "joint_probability": mass,
                        "overlapping_images": overlapping,
                        "pair_fraction": share,
                        f"labelled_{classes[a]}_but_{classes[b]}": float(joint[a, b]),
                        f"labelled_{classes[b]}_but_{classes[a]}": float(joint[b, a]),
                    },
                )
            )
        summary = {"overlapping_pairs": len(findings), "top_pairs": listed[:10],
                   "dataset_noise_mass": float(1.0 - np.trace(joint))}
        return CheckResult(findings, summary=summary)
