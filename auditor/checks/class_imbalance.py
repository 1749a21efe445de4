"""Starved and missing classes, per split, and the imbalance ratio of each split; class names that look alike."""

from __future__ import annotations

import statistics
import unicodedata

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
    produces = frozenset({"class_imbalance", "class_name_collision"})
    kinds = {
        "class_imbalance": FindingKind(
            "Class imbalance",
            "Classes with far fewer images than the others in a split.",
            layout="classes", order=1,
        ),
        "class_name_collision": FindingKind(
            "Class names that look alike",
            "Class names that differ only in case, Unicode normalisation or invisible characters: "
            "each is a class of its own; rename them to one.",
            layout="classes", order=18,
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
        findings.extend(_name_collisions(ctx.classes))
        return CheckResult(findings, summary=ClassImbalanceSummary(summary))


def _name_key(name: str) -> str:
    """What a reader sees of a class name: NFKC-normalised, case-folded, without invisible format characters
    (zero-width spaces and joiners, soft hyphens, byte-order marks)."""
    visible = "".join(ch for ch in unicodedata.normalize("NFKC", name) if unicodedata.category(ch) != "Cf")
    return visible.casefold()


def _name_collisions(classes: list[str]) -> list[Finding]:
    """One finding per group of class names that read alike (``_name_key``): reported, never merged, since
    which spelling is right is the user's call."""
    groups: dict[str, list[str]] = {}
    for name in classes:
        groups.setdefault(_name_key(name), []).append(name)
    return [
        Finding(
            check="class_name_collision",
            severity=Severity.WARNING,
            # ascii(): the names differ in characters that look the same, so show their code points.
            message=f"class names {', '.join(ascii(n) for n in names)} differ only in case, Unicode normalisation "
                    "or invisible characters; they are separate classes (rename them to one)",
            classes=tuple(names),
            score=1.0,
            details={"normalised": key},
        )
        for key, names in sorted(groups.items()) if len(names) > 1
    ]
