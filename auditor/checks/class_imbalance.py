"""Starved and missing classes, per split, and the imbalance ratio of each split."""

from __future__ import annotations

import statistics

from pydantic import Field

from auditor.checks.base import Check, CheckContext, CheckResult
from auditor.core.config import ConfigModel
from auditor.results.findings import Finding, FindingKind, Severity
from auditor.results.summaries import ClassImbalanceSummary, SplitBalance


class ClassImbalanceParams(ConfigModel):
    # A class with fewer readable images than this (in a split) is starved.
    min_count: int = Field(5, ge=0)
    # ...or with fewer than this fraction of the split's median class count.
    min_fraction_of_median: float = Field(0.2, ge=0.0, le=1.0)
    # A split whose largest/smallest class ratio exceeds this gets one split-level finding.
    max_imbalance_ratio: float = Field(10.0, ge=1.0)


class ClassImbalanceCheck(Check[ClassImbalanceParams]):
    name = "class_imbalance"
    description = "classes that are starved, empty or missing in a split, and per-split imbalance ratios"
    Params = ClassImbalanceParams
    kinds = {
        "class_imbalance": FindingKind(
            "Class imbalance",
            "Classes with far fewer images than the others in a split.",
            layout="classes", order=1,
        ),
    }

    def run(self, ctx: CheckContext) -> CheckResult:
        params = self.params
        readable = ctx.images[ctx.images["readable"] & ctx.images["label"].notna()]
        findings: list[Finding] = []
        summary: dict[str, SplitBalance] = {}
        split_keys: list[str | None] = list(ctx.splits) if ctx.splits else [None]
        for split in split_keys:
            rows = readable if split is None else readable[readable["split"] == split]
            counts = dict.fromkeys(ctx.classes, 0)
            for label, count in rows["label"].value_counts().items():
                counts[str(label)] = int(count)
            present = [c for c in counts.values() if c > 0]
            median = statistics.median(present) if present else 0.0
            ratio = (max(present) / min(present)) if present else None
            key = split or "all"
            summary[key] = SplitBalance(counts=counts, median=median, imbalance_ratio=ratio)
            where = f" in split {split}" if split else ""
            empty_folders = set(ctx.empty_classes.get(split, []))
            for label, count in sorted(counts.items()):
                threshold = max(params.min_count, params.min_fraction_of_median * median)
                if count >= threshold:
                    continue
                if count == 0:
                    why = "its class folder is empty" if label in empty_folders else "the class has no images here"
                    message = f"class {label!r} has no readable images{where} ({why})"
                else:
                    message = (
                        f"class {label!r} is starved{where}: {count} image(s), "
                        f"below the minimum {threshold:g} (median class: {median:g})"
                    )
                findings.append(
                    Finding(
                        check=self.name,
                        severity=Severity.WARNING,
                        message=message,
                        split=split,
                        classes=(label,),
                        score=1.0 - count / max(threshold, 1e-9),
                        details={"count": count, "median": median, "threshold": threshold, "counts": counts},
                    )
                )
            if ratio is not None and ratio > params.max_imbalance_ratio:
                largest = max(counts, key=lambda c: counts[c])
                smallest = min((c for c in counts if counts[c] > 0), key=lambda c: counts[c])
                findings.append(
                    Finding(
                        check=self.name,
                        severity=Severity.WARNING,
                        message=(
                            f"imbalance ratio {ratio:.1f}{where} exceeds {params.max_imbalance_ratio:g}: "
                            f"{largest!r} has {counts[largest]}, {smallest!r} has {counts[smallest]}"
                        ),
                        split=split,
                        classes=(largest, smallest),
                        score=1.0 - params.max_imbalance_ratio / ratio,
                        details={"imbalance_ratio": ratio, "counts": counts},
                    )
                )
        return CheckResult(findings, summary=ClassImbalanceSummary(summary))
