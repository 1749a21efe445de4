"""What every renderer shares: the format enum, the options, and the findings prepared once for display.

Renderers never read files or re-sort findings themselves, so the three formats always agree on which
findings are "top" and on the counts they print.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from auditor.core.errors import AuditorError
from auditor.results.findings import Finding, FindingKind
from auditor.results.reading import Results, describe_encoder
from auditor.results.summaries import ImageQualitySummary, Skipped

SEVERITIES = ("error", "warning", "info")


class ReportFormat(StrEnum):
    """Output formats of ``audit report``; every member must have a renderer (a test enforces it)."""

    TERMINAL = "terminal"
    MARKDOWN = "markdown"
    HTML = "html"


@dataclass(frozen=True)
class ReportOptions:
    """Choices made on the command line. ``top``: findings listed per check; None: the format's default,
    0: all of them."""

    checks: tuple[str, ...] = ()
    top: int | None = None
    dataset: Path | None = None
    color: bool = False
    width: int = 120

    def limit(self, default: int) -> int | None:
        """Findings to list per check; None means no limit."""
        top = default if self.top is None else self.top
        return None if top == 0 else top


@dataclass(frozen=True)
class ReportData:
    """A results folder prepared for display: findings grouped by check, best-scored first."""

    results: Results
    by_check: dict[str, list[Finding]]
    total_findings: int
    dataset_root: Path | None
    dataset_note: str | None
    readable: dict[str, bool] = field(default_factory=dict)
    # Findings accepted in review (auditor.results.decisions): shown apart, in a collapsed section, never in by_check.
    waived: list[Finding] = field(default_factory=list)
    # The checks and finding kinds ``--check`` asked for (a check's kinds included); None: no filter, all of them.
    selected: frozenset[str] | None = None

    @property
    def run(self) -> dict[str, Any]:
        return self.results.run

    def kind(self, name: str) -> FindingKind:
        """How to show finding kind ``name``: as the check that produced it described it in run.json."""
        return self.results.kinds().get(name) or FindingKind.generic(name)

    @property
    def shown_findings(self) -> int:
        return sum(len(items) for items in self.by_check.values())

    def severity_counts(self) -> dict[str, Counter[str]]:
        return {check: Counter(str(f.severity) for f in items) for check, items in self.by_check.items()}

    def class_counts(self) -> dict[str, dict[str, int]]:
        """Readable images per split and class, as the scan counted them."""
        counts = self.run.get("dataset", {}).get("counts") or {}
        return {str(split): {str(k): int(v) for k, v in per.items()} for split, per in counts.items()}

    def classes(self) -> list[str]:
        """Every class named in the dataset or in a shown finding, for the HTML class filter."""
        names = {str(c) for c in self.run.get("dataset", {}).get("classes") or []}
        for items in self.by_check.values():
            for finding in items:
                names.update(finding_classes(finding))
        return sorted(names)

    def asks_for(self, check: str) -> bool:
        """Whether the report shows ``check``'s tables: no ``--check`` filter, or one naming it or its kinds."""
        if self.selected is None:
            return True
        return bool({check, *self.results.produces().get(check, ())} & self.selected)

    def quality_by_class(self) -> tuple[list[str], list[tuple[str, int, list[int]]]]:
        """The image_quality check's per-class counts: the kinds found anywhere, and per class (name, images,
        count of each kind). Empty when the check did not run, found nothing, or ``--check`` leaves it out."""
        summary = self.results.summaries.get("image_quality")
        if not isinstance(summary, ImageQualitySummary) or not self.asks_for("image_quality"):
            return [], []
        counts = summary.per_class
        kinds = sorted({kind for row in counts.values() for kind, n in row.items() if kind != "images" and n > 0})
        rows = [(name, row.get("images", 0), [row.get(kind, 0) for kind in kinds])
                for name, row in sorted(counts.items())]
        return kinds, rows if kinds else []

    def skipped_checks(self) -> dict[str, str]:
        return {name: summary.skipped for name, summary in self.results.summaries.items()
                if isinstance(summary, Skipped)}

    def encoder_line(self) -> str:
        return describe_encoder(self.run)

    def warnings(self) -> list[str]:
        """run.json warnings (the encoder fallback first, as the scan put it), then report-side notes."""
        found = [str(w) for w in self.run.get("warnings") or []]
        fallback = (self.run.get("encoder") or {}).get("fallback_reason")
        if fallback and not any("fell back" in w for w in found):
            found.insert(0, f"the requested encoder was unavailable, fell back: {fallback}")
        if self.dataset_note:
            found.append(self.dataset_note)
        return found


def finding_classes(finding: Finding) -> set[str]:
    """Classes a finding is about, so that filtering by class shows it."""
    names = set(finding.classes)
    names.update(n for n in (finding.label, finding.suggested_label) if n)
    return names


def order_checks(names: set[str], kinds: dict[str, FindingKind]) -> list[str]:
    """Finding kinds in the order their checks asked for (run.json); undescribed kinds last, alphabetically."""
    return sorted(names, key=lambda name: ((kinds.get(name) or FindingKind.generic(name)).order, name))


def known_check_names(results: Results) -> set[str]:
    """Names ``--check`` accepts: the scan's checks and their finding kinds (run.json), and what it found."""
    names = {str(c) for c in results.findings["check"].unique()}
    for check, kinds in results.produces().items():
        names.add(check)
        names.update(kinds)
    return names


def prepare(results: Results, options: ReportOptions) -> ReportData:
    """Group and sort the findings, resolve the dataset folder for thumbnails; no rendering."""
    valid = known_check_names(results)
    unknown = [name for name in options.checks if name not in valid]
    if unknown:
        names = ", ".join(map(repr, unknown))
        raise AuditorError(f"unknown check {names}; valid: {', '.join(sorted(valid))}")
    findings = results.finding_objects()
    groups: dict[str, list[Finding]] = {}
    # ``--check duplicates`` (a check) selects the finding kinds that check produces.
    wanted = set(options.checks)
    produces = results.produces()
    wanted.update(kind for name in options.checks for kind in produces.get(name, ()))
    waived: list[Finding] = []
    for finding in findings:
        if options.checks and finding.check not in wanted:
            continue
        (waived if finding.waived else groups.setdefault(finding.check, [])).append(finding)
    by_check = {
        name: sorted(groups[name], key=lambda f: (-f.score, f.path or "", f.group_id or 0))
        for name in order_checks(set(groups), results.kinds())
    }
    root, note = _dataset_root(results, options.dataset)
    images = results.images
    readable = dict(zip(images["path"].astype(str), images["readable"].astype(bool), strict=True))
    waived.sort(key=lambda f: (f.check, -f.score, f.path or ""))
    return ReportData(results, by_check, len(findings), root, note, readable, waived,
                      frozenset(wanted) if options.checks else None)


def waiver_text(finding: Finding) -> str:
    """Why a waived finding is accepted, by whom and when, in one line."""
    waiver = finding.waiver or {}
    expires = f", until {waiver['expires']}" if waiver.get("expires") else ""
    return f"{waiver.get('reason', '')} ({waiver.get('who', '?')}, {str(waiver.get('when', ''))[:10]}{expires})"


def _dataset_root(results: Results, given: Path | None) -> tuple[Path | None, str | None]:
    """The dataset folder for thumbnails; a missing one is a note in the report, not an error."""
    if given is not None:
        if not given.is_dir():
            raise AuditorError(f"--dataset folder not found: {given}")
        return given, None
    root = (results.run.get("dataset") or {}).get("root")
    if not root:
        return None, "run.json names no dataset folder; pass --dataset for thumbnails"
    path = Path(root)
    if not path.is_dir():
        return None, f"dataset folder {path} not found, so no thumbnails; pass --dataset DIR"
    return path, None


def format_score(score: float) -> str:
    if not math.isfinite(score):
        return str(score)
    return f"{score:.3g}" if abs(score) < 1000 else f"{score:,.0f}"


def subject(finding: Finding) -> str:
    """What a finding is about in one string: its path, or its classes for class-level findings."""
    if finding.path:
        return finding.path
    if finding.classes:
        return " / ".join(finding.classes)
    return "(dataset)"


class Renderer(ABC):
    """One output format. ``default_top``: findings listed per check when ``--top`` is not given."""

    default_top: ClassVar[int]

    @abstractmethod
    def render(self, data: ReportData, options: ReportOptions) -> str:
        """The whole report as text (the terminal renderer includes ANSI styles when ``options.color``)."""
