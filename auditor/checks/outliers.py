"""Images far from every class in embedding space: blank frames, noise, another domain.

An image's distance to a class is its mean cosine distance to the class's ``class_neighbours`` nearest
other members (``class_neighbours.py``); its isolation is that distance to its *closest* class. Asking
per class means junk images filed under different classes cannot shelter each other, as they would in a
search for the nearest images overall; identical contents count once, so a copied blank frame does not
vouch for itself either. Without labels, all images form one class. What "far" means depends on the
encoder and the dataset, so the threshold is set from the data: isolations are compared on a log scale
(they are skewed), and an image is an outlier when its isolation lies more than ``robust_z`` robust
standard deviations (1.4826 x MAD) above the median. Above ``[search] exact_max_vectors`` the closeness to
far classes is estimated, never above the closest class, which is always computed exactly
(``class_neighbours._restricted``), so isolations are as before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field

from auditor.checks.base import Check, CheckContext, CheckResult, Requirement
from auditor.core.config import ConfigModel
from auditor.evidence.reliability import mark, summary_fields
from auditor.evidence.robust import median_spread
from auditor.results.findings import Finding, FindingKind, Severity, plain
from auditor.results.summaries import OutliersSummary


class OutlierParams(ConfigModel):
    # Outlier when log-isolation exceeds the median by this many robust standard deviations.
    robust_z: float = Field(3.0, gt=0.0)
    # Fewer distinct embedded images than this: too few to say what is typical, the check is skipped.
    min_images: int = Field(20, ge=3)


class OutliersCheck(Check[OutlierParams]):
    name = "outliers"
    produces = frozenset({"outlier"})
    description = "images far from every class in embedding space (blank, noise, other domain)"
    requires = frozenset({Requirement.EMBEDDINGS})
    Params = OutlierParams
    kinds = {
        "outlier": FindingKind(
            "Outliers",
            "Images far from every class in the dataset (blank, noise, another domain).",
            layout="images", order=8,
        ),
    }

    def run(self, ctx: CheckContext) -> CheckResult:
        params = self.params
        embedded = ctx.evidence.embedded
        vector_of = ctx.evidence.distinct_vector_of
        distinct = int(vector_of.max()) + 1 if len(vector_of) else 0
        if distinct < params.min_images:
            return CheckResult(skipped=f"needs at least {params.min_images} distinct embedded images "
                                       f"(found {distinct})")
        neighbourhoods = ctx.evidence.class_neighbourhoods
        similarity = neighbourhoods.similarity
        known = ~np.isnan(similarity)
        closest_class = np.argmax(np.where(known, similarity, -np.inf), axis=1)
        closest = np.where(known.any(axis=1), similarity[np.arange(distinct), closest_class], -1.0)
        distance = np.clip(1.0 - closest.astype(np.float64), 0.0, None)
        log_distance = np.log(np.maximum(distance, 1e-9))
        median, spread = median_spread(log_distance)
        z = (log_distance - median) / max(spread, 1e-9)
        threshold = float(np.exp(median + params.robust_z * spread))
        classes = ctx.evidence.labelled_classes
        # One file per distinct vector, to name a nearest neighbour.
        representative = embedded["path"].to_numpy()[ctx.evidence.distinct_first]

        findings: list[Finding] = []
        column = pd.Series(np.nan, index=ctx.images.index, dtype="float64")
        column.loc[embedded.index] = z[vector_of]
        for position in np.flatnonzero(z[vector_of] > params.robust_z):
            row = embedded.iloc[position]
            v = vector_of[position]
            neighbour = representative[neighbourhoods.nearest[v]] if neighbourhoods.nearest[v] >= 0 else None
            nearest_class = classes[closest_class[v]] if classes else None
            where = f"class {nearest_class!r}" if nearest_class is not None else "the other images"
            findings.append(
                Finding(
                    check="outlier",
                    severity=Severity.WARNING,
                    message=(
                        f"far from every class: mean cosine distance {distance[v]:.3f} to the nearest members of "
                        f"the closest, {where}, above the outlier threshold {threshold:.3f} "
                        f"(typical {np.exp(median):.3f})"
                    ),
                    path=row["path"],
                    label=plain(row["label"]),
                    split=plain(row["split"]),
                    sha256=plain(row["sha256"]),
                    score=float(z[v]),
                    other_path=neighbour,
                    details={
                        "mean_neighbour_distance": float(distance[v]),
                        "closest_class": nearest_class,
                        "threshold": threshold,
                        "typical_distance": float(np.exp(median)),
                        "robust_z": float(z[v]),
                        "nearest_path": neighbour,
                    },
                )
            )
        # Without two labelled classes there is no classifier to assess; the distances stand on their own.
        verdict = ctx.evidence.reliability if len(classes) >= 2 else None
        summary = OutliersSummary(
            outliers=len(findings),
            class_neighbours=ctx.config.probabilities.class_neighbours,
            per_class=bool(classes),
            typical_distance=float(np.exp(median)),
            threshold_distance=threshold,
            robust_z=params.robust_z,
            **summary_fields(verdict),
        )
        return CheckResult(mark(findings, verdict), columns={"outlier_score": column}, summary=summary)
