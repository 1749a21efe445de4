"""The HTML report: one self-contained file with embedded thumbnails, per-check layouts and filtering.

The page makes no network request (a Content-Security-Policy forbids it), so it can be mailed, attached to
a ticket, or opened offline. Python prepares plain view objects; the Jinja template only lays them out.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from auditor.report.base import (
    SEVERITIES,
    Renderer,
    ReportData,
    ReportOptions,
    finding_classes,
    format_score,
    subject,
    waiver_text,
)
from auditor.report.charts import class_distribution, findings_by_class
from auditor.report.embedding_map import EmbeddingMap, embedding_map, read_embeddings
from auditor.report.safe import encodable
from auditor.report.thumbnails import Thumbnailer
from auditor.results.findings import RUN_ID_KEY, Finding

TEMPLATES = Path(__file__).parent / "templates"
MESSAGE_CHARS = 400
DEFAULT_MAX_PIXELS = 89_478_485
# The page as a whole stays below this (the promise is 30 MB); thumbnails give way first.
MAX_HTML_BYTES = 29_000_000

WITH_THUMBNAILS = frozenset({"labels", "candidates", "images", "generic"})


@dataclass
class Tile:
    """One image as the template shows it; ``uri`` None means a text placeholder."""

    path: str
    uri: str | None
    alt: str
    split: str | None = None
    label: str | None = None


@dataclass
class Item:
    """One filterable entry: a finding, or a group of findings that share a ``group_id``."""

    check: str
    classes: list[str]
    finding: Finding
    score: str
    message: str
    tile: Tile | None = None
    members: list[Tile] = field(default_factory=list)
    candidates: list[tuple[str, str]] = field(default_factory=list)
    reason: str = ""
    anchor: str = ""  # the entry's id on the page, which the embedding map links to

    @property
    def classes_json(self) -> str:
        return json.dumps(self.classes)

    @property
    def severity(self) -> str:
        return str(self.finding.severity)

    @property
    def unreliable(self) -> bool:
        """The check could not vouch for this finding (its severity was lowered to info): the card says so."""
        return (self.finding.details or {}).get("reliable") is False

    def paths(self) -> list[str]:
        """Every image the entry shows."""
        return [tile.path for tile in self.members] or ([self.finding.path] if self.finding.path else [])


@dataclass
class Section:
    check: str
    layout: str
    title: str
    intro: str
    total: int  # entries: findings, or groups of copies where the layout groups them
    items: list[Item]
    severities: dict[str, int]
    findings: int

    @property
    def count(self) -> str:
        """The heading's count: a grouped section says both what it lists and how many findings that is (the
        summary table counts findings)."""
        if self.layout != "groups":
            return str(self.total)
        return f"{self.total} group{'s' if self.total != 1 else ''} · {self.findings} findings"


def _short(text: str, limit: int = MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class HtmlRenderer(Renderer):
    default_top: ClassVar[int] = 500

    def render(self, data: ReportData, options: ReportOptions) -> str:
        scan_config = (data.run.get("config") or {}).get("scan") or {}
        max_pixels = scan_config.get("max_image_pixels", DEFAULT_MAX_PIXELS)
        thumbs = Thumbnailer(data.dataset_root, data.readable, int(max_pixels))
        page = self._page(data, options, thumbs)
        # Long paths or messages took the room: give up as many thumbnail bytes as the page is over (a
        # placeholder is a little larger than nothing, hence the slack and the repeat).
        for _ in range(4):
            excess = len(page.encode("utf-8")) - MAX_HTML_BYTES
            if excess <= 0 or thumbs.used == 0:
                break
            thumbs.restart(max(0, thumbs.used - excess - 1_000))
            page = self._page(data, options, thumbs)
        return page

    def _page(self, data: ReportData, options: ReportOptions, thumbs: Thumbnailer) -> str:
        images = data.results.images
        info = {
            str(p): (_text(label), _text(split))
            for p, label, split in zip(images["path"], images["label"], images["split"], strict=True)
        }
        limit = options.limit(self.default_top)
        sections = [
            self._section(check, findings, limit, thumbs, info, data)
            for check, findings in data.by_check.items()
        ]
        flagged: dict[str, tuple[str, str]] = {}
        for number, item in enumerate((item for section in sections for item in section.items), start=1):
            item.anchor = f"entry-{number}"
            for path in item.paths():
                flagged.setdefault(path, (item.anchor, item.severity))
        env = Environment(
            loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
            undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        )
        dataset = data.run.get("dataset") or {}
        counts = data.class_counts()
        quality_kinds, quality_rows = data.quality_by_class()
        notes = []
        if thumbs.omitted:
            notes.append(f"{thumbs.omitted:,} thumbnail(s) left out to keep this file small.")
        scatter, missing = _embedding_map(data, flagged)
        if missing:
            notes.append(f"No embedding map: {missing}.")
        titles = {check: section.title for check, section in zip(data.by_check, sections, strict=True)}
        # Data text may hold lone surrogates (a non-UTF-8 folder name); shown as escapes, the page encodes.
        return encodable(env.get_template("report.html.j2").render(
            run=data.run,
            dataset=dataset,
            encoder=data.encoder_line(),
            warnings=data.warnings(),
            notes=notes,
            sections=sections,
            severities=SEVERITIES,
            skipped=data.skipped_checks(),
            classes=data.classes(),
            charts=[class_distribution(split, per) for split, per in counts.items()],
            kinds_chart=findings_by_class(data.by_check, titles),
            scatter=scatter,
            quality_kinds=quality_kinds,
            quality_rows=quality_rows,
            total=sum(len(s.items) for s in sections),
            total_findings=data.shown_findings,
            waived=[(f.check, subject(f), waiver_text(f)) for f in data.waived],
        ))

    def _section(
        self,
        check: str,
        findings: list[Finding],
        limit: int | None,
        thumbs: Thumbnailer,
        info: dict[str, tuple[str | None, str | None]],
        data: ReportData,
    ) -> Section:
        kind = data.kind(check)
        layout = kind.layout
        if layout == "groups":
            items = self._groups(check, findings, limit, thumbs, info)
            total = len({_group_key(f) for f in findings})
        else:
            shown = findings if limit is None else findings[:limit]
            items = [self._item(f, thumbs if layout in WITH_THUMBNAILS else None) for f in shown]
            total = len(findings)
        severities = data.severity_counts()[check]
        return Section(check, layout, kind.title, kind.intro, total, items, dict(severities), len(findings))

    @staticmethod
    def _item(finding: Finding, thumbs: Thumbnailer | None) -> Item:
        """``thumbs`` None: the layout shows no image (unreadable files, class-level findings)."""
        tile = None
        if finding.path and thumbs is not None:
            described = finding.label or "unlabelled"
            if finding.suggested_label:
                described += f", suggested {finding.suggested_label}"
            tile = Tile(finding.path, thumbs.uri(finding.path), f"{finding.path} ({described})",
                        finding.split, finding.label)
        probabilities = finding.details.get("probabilities")
        shares = {
            name: float(value)
            for name in finding.classes
            if isinstance(probabilities, dict)
            and isinstance(value := probabilities.get(name), int | float) and math.isfinite(value)
        }
        # Most likely candidate first when the check recorded probabilities; otherwise the check's order.
        names = sorted(finding.classes, key=lambda n: -shares[n]) if len(shares) == len(finding.classes) \
            else list(finding.classes)
        candidates = [(name, f"{shares[name]:.0%}" if name in shares else "") for name in names]
        reason = str(finding.details.get("reason") or finding.message)
        return Item(finding.check, sorted(finding_classes(finding)), finding, format_score(finding.score),
                    _short(finding.message), tile, candidates=candidates, reason=_short(reason))

    @staticmethod
    def _groups(
        check: str,
        findings: list[Finding],
        limit: int | None,
        thumbs: Thumbnailer,
        info: dict[str, tuple[str | None, str | None]],
    ) -> list[Item]:
        """One item per group, best group first; members are every path the group's findings name."""
        groups: dict[Any, list[Finding]] = {}
        for finding in findings:
            groups.setdefault(_group_key(finding), []).append(finding)
        ordered = list(groups.values())[: limit if limit is not None else None]
        items = []
        for members in ordered:
            best = members[0]
            paths: list[str] = []
            for finding in members:
                for path in (finding.path, finding.other_path):
                    if path and path not in paths:
                        paths.append(path)
            tiles = []
            classes: set[str] = set()
            for path in paths:
                label, split = info.get(path, (None, None))
                classes.update(finding_classes(next((f for f in members if f.path == path), best)))
                if label:
                    classes.add(label)
                alt = f"{path} ({label or 'unlabelled'}, {split or 'no split'})"
                tiles.append(Tile(path, thumbs.uri(path), alt, split, label))
            items.append(Item(check, sorted(classes), best, format_score(best.score), _short(best.message),
                              members=tiles))
        return items


def _group_key(finding: Finding) -> Any:
    if finding.group_id is not None:
        return ("group", finding.group_id)
    return ("pair", *sorted(p for p in (finding.path, finding.other_path) if p))


def _embedding_map(data: ReportData, flagged: dict[str, tuple[str, str]]) -> tuple[EmbeddingMap | None, str]:
    """The map, or None and why not (a report without embeddings is still a report)."""
    images = data.results.images
    labels = {str(p): str(label) for p, label in zip(images["path"], images["label"], strict=True)
              if _text(label) is not None}
    try:
        paths, vectors = read_embeddings(data.results.directory, data.run.get(RUN_ID_KEY))
    except ValueError as exc:
        return None, str(exc)
    scatter = embedding_map(paths, vectors, labels, flagged)
    return scatter, "" if scatter is not None else "fewer than two images were embedded"


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)
