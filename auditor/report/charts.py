"""Bar charts for the HTML report, as plain numbers the template draws with CSS (no plotting library, no script).

Bars are HTML boxes sized in percent rather than a fixed-size SVG, so a chart narrows with a phone's screen
and its text keeps its size instead of shrinking with a scaled drawing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from auditor.results.findings import Finding

# Colours of the finding kinds in the stacked chart: one each for as many kinds as the checks produce today
# (Tableau 20); more kinds repeat the cycle, and every segment also names its kind in its tooltip.
KIND_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
                "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5")
NAME_CHARS = 24


@dataclass(frozen=True)
class Segment:
    """One coloured part of a bar: ``share`` is its width in percent of the chart's longest bar."""

    kind: str
    count: int
    share: float
    colour: str


@dataclass(frozen=True)
class Bar:
    name: str  # shortened for the label area; ``full_name`` goes in the tooltip
    full_name: str
    total: int
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class BarChart:
    """Rows of bars under one title; ``description`` says every number in words for screen readers."""

    title: str
    bars: tuple[Bar, ...]
    description: str
    legend: tuple[tuple[str, str], ...] = ()  # (kind, colour), stacked charts only


def short_name(name: str, limit: int = NAME_CHARS) -> str:
    """Class names longer than the label area are shortened (the full name is in the bar's tooltip)."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def class_distribution(split: str, per_class: dict[str, int]) -> BarChart:
    """One split's images per class; bars scale to the split's largest class, so imbalance reads at a glance."""
    rows = sorted(per_class.items(), key=lambda item: (-item[1], item[0]))
    largest = max((count for _, count in rows), default=0) or 1
    bars = tuple(
        Bar(short_name(name), name, count, (Segment("images", count, 100.0 * count / largest, KIND_COLOURS[0]),))
        for name, count in rows
    )
    description = ", ".join(f"{name}: {count}" for name, count in rows)
    return BarChart(split, bars, f"Readable images per class in {split}: {description}")


def finding_class(finding: Finding) -> tuple[str, ...]:
    """The classes a finding is counted under: an image's given label, else the classes a class-level finding
    names (the suggested label of a label error is the evidence, not where the problem sits)."""
    if finding.label:
        return (finding.label,)
    return tuple(finding.classes)


def findings_by_class(by_check: dict[str, list[Finding]], titles: dict[str, str]) -> BarChart | None:
    """Per class, how many findings of each kind: which classes need attention, and for what. None: no finding
    is about a class. ``titles``: each kind's display name, in the report's order of kinds."""
    counts: dict[str, Counter[str]] = {}
    for kind, findings in by_check.items():
        for finding in findings:
            for name in finding_class(finding):
                counts.setdefault(name, Counter())[kind] += 1
    if not counts:
        return None
    kinds = [kind for kind in by_check if any(kind in per for per in counts.values())]
    colours = {kind: KIND_COLOURS[n % len(KIND_COLOURS)] for n, kind in enumerate(kinds)}
    rows = sorted(counts.items(), key=lambda item: (-item[1].total(), item[0]))
    largest = max(per.total() for _, per in rows)
    bars = tuple(
        Bar(short_name(name), name, per.total(), tuple(
            Segment(titles[kind], per[kind], 100.0 * per[kind] / largest, colours[kind]) for kind in kinds if per[kind]
        ))
        for name, per in rows
    )
    description = "; ".join(
        f"{name}: " + ", ".join(f"{per[kind]} {titles[kind]}" for kind in kinds if per[kind]) for name, per in rows
    )
    return BarChart("Findings per class", bars, description, tuple((titles[kind], colours[kind]) for kind in kinds))
