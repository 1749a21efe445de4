"""Pairs of classes that overlap: candidates to merge, to define more sharply, or to allow multi-label.

Two signals, each judged against the pair's size. cleanlab's ``find_overlapping_classes`` reads the
calibrated confident joint (the estimated share of the dataset labelled one class while belonging to
the other) and sums both directions for each pair: scattered label noise spreads thinly over every
pair, while two ill-defined classes concentrate on one. And the ambiguity verdict
(``Evidence.ambiguity``, the ``[evidence.ambiguity]`` rule) counts the images whose evidence names both
classes: many images that honestly show both mean the classes are not exclusive. The same principle
applies to it: a weak encoder unsure of many images spreads ambiguity over every pair, so a pair is
reported only where ambiguity concentrates (``ambiguity_concentration``).
"""

from __future__ import annotations

from collections.abc import Container, Iterator
from typing import Any

import numpy as np
from pydantic import Field

from auditor.checks.base import Check, CheckContext, CheckResult, Requirement
from auditor.core.config import ConfigModel
from auditor.evidence.reliability import mark, summary_fields
from auditor.results.findings import Finding, FindingKind, Severity
from auditor.results.summaries import ClassOverlapSummary

# Pairs listed in the summary (run.json), most overlapping first.
_LISTED = 10
# Zero-valued fields of a pair with no joint mass and no ambiguous image.
_NO_EVIDENCE = {"joint_probability": 0.0, "overlapping_images": 0, "pair_fraction": 0.0, "ambiguous_images": 0,
                "ambiguous_fraction": 0.0, "ambiguous_concentration": 0.0}


def joint_pairs(joint: np.ndarray) -> Iterator[tuple[int, int, float]]:
    """``(a, b, mass)`` for each class pair ``a < b`` with joint mass in either direction (``joint[a, b] +
    joint[b, a]``, as cleanlab's ``find_overlapping_classes`` sums them), read from the nonzero entries only:
    cleanlab lists all K(K-1)/2 pairs as Python tuples (at 4,000 classes, 8M tuples and gigabytes)."""
    given, true = np.nonzero(joint)
    off = given != true
    low, high = np.minimum(given[off], true[off]), np.maximum(given[off], true[off])
    for a, b in np.unique(np.stack([low, high], axis=1), axis=0) if len(low) else ():
        yield int(a), int(b), float(joint[a, b] + joint[b, a])


def pairs_without_evidence(classes: int, present: Container[tuple[int, int]],
                           limit: int) -> Iterator[tuple[tuple[int, int], dict[str, Any]]]:
    """The first ``limit`` class pairs (in class order) not in ``present``, with zero evidence: what the summary
    lists after the pairs with evidence when there are fewer than it lists."""
    found = 0
    for a in range(classes):
        for b in range(a + 1, classes):
            if found >= limit:
                return
            if (a, b) not in present:
                found += 1
                yield (a, b), dict(_NO_EVIDENCE)


class ClassOverlapParams(ConfigModel):
    # Report a pair when its joint mass (images estimated to be labelled one class of the pair while
    # belonging to the other, both directions), or its ambiguous images naming both classes, are at
    # least this share of the two classes' mean size.
    min_pair_fraction: float = Field(0.1, gt=0.0, le=1.0)
    # ...and at least this many images are estimated to be confused, or ambiguous (so two stray images
    # in tiny classes do not make a pair).
    min_images: int = Field(3, ge=1)
    # Ambiguity makes a pair only when it concentrates there: the pair's ambiguous images must be at
    # least this many times its share if all ambiguous images were spread over the class pairs in
    # proportion to their sizes (an encoder unsure everywhere spreads them evenly).
    ambiguity_concentration: float = Field(2.0, ge=1.0)


class ClassOverlapCheck(Check[ClassOverlapParams]):
    name = "class_overlap"
    description = "pairs of classes often confused (confident joint) or sharing many ambiguous images"
    requires = frozenset({Requirement.EMBEDDINGS, Requirement.LABELS})
    Params = ClassOverlapParams
    kinds = {
        "class_overlap": FindingKind(
            "Overlapping classes",
            "Pairs of classes the embeddings cannot tell apart.",
            layout="classes", order=3,
        ),
    }

    def run(self, ctx: CheckContext) -> CheckResult:
        params = self.params
        classes = ctx.evidence.labelled_classes
        labels = ctx.evidence.label_ids
        joint = ctx.evidence.confident_joint
        class_mass = joint.sum(axis=1) + joint.sum(axis=0)
        sizes = np.bincount(labels, minlength=len(classes))
        ambiguous = ctx.evidence.ambiguity.pair_counts()
        by_pair: dict[tuple[int, int], dict[str, Any]] = {}
        for a, b, mass in joint_pairs(joint):
            # Each class's mass counted once: half of (its row + its column) of the joint.
            share = mass / max(float(class_mass[a] + class_mass[b]) / 2, 1e-12)
            by_pair[(a, b)] = {"joint_probability": mass, "overlapping_images": int(np.round(mass * len(labels))),
                               "pair_fraction": share}
        for (a, b) in ambiguous:
            by_pair.setdefault((a, b), {"joint_probability": 0.0, "overlapping_images": 0, "pair_fraction": 0.0})
        # Pair weights n_a * n_b over all class pairs: what an even spread of ambiguous images would give.
        total_weight = (float(sizes.sum()) ** 2 - float(np.square(sizes, dtype=np.float64).sum())) / 2
        total_ambiguous = sum(ambiguous.values())
        for (a, b), entry in by_pair.items():
            entry["ambiguous_images"] = ambiguous.get((a, b), 0)
            entry["ambiguous_fraction"] = entry["ambiguous_images"] / max(float(sizes[a] + sizes[b]) / 2, 1.0)
            expected = total_ambiguous * float(sizes[a]) * float(sizes[b]) / max(total_weight, 1.0)
            entry["ambiguous_concentration"] = entry["ambiguous_images"] / max(expected, 1e-12)
        ranked = sorted(by_pair.items(), key=lambda item: (
            -max(item[1]["pair_fraction"], item[1]["ambiguous_fraction"]), classes[item[0][0]], classes[item[0][1]]))
        findings: list[Finding] = []
        for (a, b), entry in ranked:
            confused = entry["pair_fraction"] >= params.min_pair_fraction and (
                entry["overlapping_images"] >= params.min_images)
            shared = (entry["ambiguous_fraction"] >= params.min_pair_fraction
                      and entry["ambiguous_images"] >= params.min_images
                      and entry["ambiguous_concentration"] >= params.ambiguity_concentration)
            if not (confused or shared):
                continue
            a_name, b_name = classes[a], classes[b]
            reasons = []
            if confused:
                reasons.append(f"about {entry['overlapping_images']} image(s), {entry['pair_fraction']:.0%} of the "
                               f"pair, are estimated to be labelled one while showing the other")
            if shared:
                reasons.append(f"{entry['ambiguous_images']} image(s), {entry['ambiguous_fraction']:.0%} of the pair, "
                               f"show evidence of both (ambiguous)")
            findings.append(
                Finding(
                    check=self.name,
                    severity=Severity.WARNING,
                    message=f"classes {a_name!r} and {b_name!r} overlap: " + "; ".join(reasons),
                    classes=(a_name, b_name),
                    score=max(entry["pair_fraction"] if confused else 0.0,
                              entry["ambiguous_fraction"] if shared else 0.0),
                    details={
                        **entry,
                        f"labelled_{a_name}_but_{b_name}": float(joint[a, b]),
                        f"labelled_{b_name}_but_{a_name}": float(joint[b, a]),
                    },
                )
            )
        # Fewer pairs with evidence than listed: pairs without any follow, in class order.
        shown = [*ranked[:_LISTED], *pairs_without_evidence(len(classes), by_pair, _LISTED - len(ranked))]
        listed = [{"classes": [classes[a], classes[b]], **entry} for (a, b), entry in shown]
        summary = ClassOverlapSummary(overlapping_pairs=len(findings), top_pairs=listed,
                                      dataset_noise_mass=float(1.0 - np.trace(joint)),
                                      **summary_fields(ctx.evidence.reliability))
        return CheckResult(mark(findings, ctx.evidence.reliability), summary=summary)
