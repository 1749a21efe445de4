"""Images far from every other image in embedding space: blank frames, noise, another domain.

An image's isolation is its mean cosine distance to its ``neighbours`` nearest other distinct images
(identical contents share one embedding and count once, so a copied blank frame does not vouch for
itself). What "far" means depends on the encoder and the dataset, so the threshold is set from the
data: isolations are compared on a log scale (they are skewed), and an image is an outlier when its
isolation lies more than ``robust_z`` robust standard deviations (1.4826 x MAD) above the median.
Labels are not used, so a whole class far from the others is not flagged unless it is tiny.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from auditor.checks.base import Check, CheckContext, CheckResult, Requirement, plain
from auditor.findings import Finding, Severity

# Rows searched per faiss query batch, to bound the memory of the distance block.
_QUERY_BATCH = 4096
# MAD of a normal distribution is 0.6745 sigma; this turns a MAD into a standard-deviation estimate.
_MAD_TO_SIGMA = 1.4826


class OutlierParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Isolation = mean cosine distance to this many nearest other distinct images.
    neighbours: int = Field(5, ge=1, le=100)
    # Outlier when log-isolation exceeds the median by this many robust standard deviations.
    robust_z: float = Field(3.0, gt=0.0)
    # Fewer distinct embedded images than this: too few to say what is typical, the check is skipped.
    min_images: int = Field(20, ge=3)


def isolation(vectors: np.ndarray, neighbours: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean cosine distance of each row to its ``neighbours`` nearest other rows, and the nearest row."""
    import faiss

    unit = np.ascontiguousarray(vectors, dtype=np.float32)
    unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    index = faiss.IndexFlatIP(unit.shape[1])
    index.add(unit)
    mean_distance = np.empty(len(unit), dtype=np.float64)
    nearest = np.empty(len(unit), dtype=np.int64)
    for start in range(0, len(unit), _QUERY_BATCH):
        block = unit[start : start + _QUERY_BATCH]
        similarity, found = index.search(block, neighbours + 1)
        for offset in range(len(block)):
            row = start + offset
            # Drop the row itself (usually first, but ties may reorder it).
            keep = found[offset] != row
            sims, ids = similarity[offset][keep][:neighbours], found[offset][keep][:neighbours]
            mean_distance[row] = float(np.mean(1.0 - sims))
            nearest[row] = int(ids[0])
    return np.clip(mean_distance, 0.0, None), nearest


class OutliersCheck(Check):
    name = "outliers"
    produces = frozenset({"outlier"})
    description = "images far from every other image in embedding space (blank, noise, other domain)"
    requires = frozenset({Requirement.EMBEDDINGS})
    Params = OutlierParams

    def run(self, ctx: CheckContext) -> CheckResult:
        params = self.params
        assert isinstance(params, OutlierParams)
        embedded = ctx.embedded
        used_rows = np.unique(embedded["embedding_row"].to_numpy())
        if len(used_rows) < params.min_images:
            return CheckResult(skipped=f"needs at least {params.min_images} distinct embedded images "
                                       f"(found {len(used_rows)})")
        neighbours = min(params.neighbours, len(used_rows) - 1)
        distance, nearest = isolation(ctx.embeddings[used_rows], neighbours)
        log_distance = np.log(np.maximum(distance, 1e-9))
        median = float(np.median(log_distance))
        spread = _MAD_TO_SIGMA * float(np.median(np.abs(log_distance - median)))
        z = (log_distance - median) / max(spread, 1e-9)
        threshold = float(np.exp(median + params.robust_z * spread))
        position = {int(row): n for n, row in enumerate(used_rows)}
        # One representative file per embedding row, to name a nearest neighbour.
        representative = embedded.drop_duplicates("embedding_row").set_index("embedding_row")["path"]

        findings: list[Finding] = []
        column = pd.Series(np.nan, index=ctx.images.index, dtype="float64")
        for index, row in embedded.iterrows():
            n = position[int(row["embedding_row"])]
            column.at[index] = z[n]
            if z[n] <= params.robust_z:
                continue
            neighbour = representative[int(used_rows[nearest[n]])]
            findings.append(
                Finding(
                    check="outlier",
                    severity=Severity.WARNING,
                    message=(
                        f"far from every other image: mean cosine distance {distance[n]:.3f} to its "
                        f"{neighbours} nearest, above the outlier threshold {threshold:.3f} "
                        f"(typical {np.exp(median):.3f})"
                    ),
                    path=row["path"],
                    label=plain(row["label"]),
                    split=plain(row["split"]),
                    sha256=plain(row["sha256"]),
                    score=float(z[n]),
                    other_path=neighbour,
                    details={
                        "mean_neighbour_distance": float(distance[n]),
                        "threshold": threshold,
                        "typical_distance": float(np.exp(median)),
                        "robust_z": float(z[n]),
                        "nearest_path": neighbour,
                    },
                )
            )
        summary: dict[str, Any] = {
            "outliers": len(findings),
            "neighbours": neighbours,
            "typical_distance": float(np.exp(median)),
            "threshold_distance": threshold,
            "robust_z": params.robust_z,
        }
        return CheckResult(findings, columns={"outlier_score": column}, summary=summary)
