"""The Markdown report for pull requests: counts, then the top findings per check in <details> blocks.

GitHub refuses comments over 65,536 characters, so the report is built within ``MAX_CHARS`` whatever the
dataset: rows are added round-robin across checks (every check gets its best findings first) until the
budget is spent, and the report says how many findings it left out. Every data string goes through
``gfm``/``gfm_code`` (report/safe.py): no HTML, link, image, mention or table break can come from data.
"""

from __future__ import annotations

from typing import ClassVar

from auditor.report.base import (
    SEVERITIES,
    Renderer,
    ReportData,
    ReportOptions,
    format_score,
    subject,
    waiver_text,
)
from auditor.report.safe import gfm, gfm_code, gfm_html
from auditor.results.findings import Finding

MAX_CHARS = 60_000
CELL_CHARS = 200
WARNING_CHARS = 500
# Room kept for the closing "left out" line, whatever the counts in it.
FOOTER_RESERVE = 400
# Classes listed in the image-quality table.
QUALITY_ROWS = 20
PLACEHOLDER = "| | | | | | _no room left in this comment; see the HTML report_ |\n"


def cell(text: object, limit: int = CELL_CHARS) -> str:
    """One table cell (or a line of a quote): data text, neutralised for GitHub Markdown."""
    return gfm(text, limit)


def _code(text: str) -> str:
    return gfm_code(text, CELL_CHARS)


class MarkdownRenderer(Renderer):
    default_top: ClassVar[int] = 10

    def render(self, data: ReportData, options: ReportOptions) -> str:
        head = self._head(data)
        limit = options.limit(self.default_top)
        rows = {check: [self._row(f) for f in items[:limit]] for check, items in data.by_check.items()}
        sections = {check: self._section_start(check, len(data.by_check[check])) for check in data.by_check}
        section_end = "\n</details>\n"

        budget = MAX_CHARS - len(head) - FOOTER_RESERVE
        taken: dict[str, int] = {}
        # Section frames first (every check is listed, even with no room for rows), in display order.
        for check, start in sections.items():
            cost = len(start) + len(section_end) + len(PLACEHOLDER)
            if cost > budget:
                break
            taken[check] = 0
            budget -= cost
        depth = max((len(r) for r in rows.values()), default=0)
        for rank in range(depth):
            for check in taken:
                if rank < len(rows[check]) and taken[check] == rank and len(rows[check][rank]) <= budget:
                    taken[check] += 1
                    budget -= len(rows[check][rank])

        parts = [head]
        for check in taken:
            parts.append(sections[check])
            shown = taken[check]
            parts.extend(rows[check][:shown])
            if shown == 0:
                parts.append(PLACEHOLDER)
            parts.append(section_end)
        left_out = data.shown_findings - sum(taken.values())
        if left_out:
            parts.append(
                f"\n_{left_out:,} of {data.shown_findings:,} findings are not listed here "
                f"(top {limit if limit is not None else 'all'} per check, {MAX_CHARS:,}-character limit); "
                "`audit report --format html --top 0` lists them all._\n"
            )
        if data.waived:
            parts.append(self._waived(data.waived, limit))
        text = "".join(parts)
        # Only a head with thousands of unknown check kinds can overflow; cut it rather than fail the comment.
        if len(text) > MAX_CHARS:
            text = text[: MAX_CHARS - 80] + "\n\n_report truncated at the comment size limit_\n"
        return text

    @staticmethod
    def _head(data: ReportData) -> str:
        dataset = data.run.get("dataset") or {}
        # Neutralised after the word "auditor", not alone: a lone "0.1.0" would open the text, where "0." reads as
        # a list item and is escaped ("0\\.1.0").
        tool = cell(f"auditor {data.run.get('tool_version', '?')}")
        lines = [
            "## Dataset audit\n",
            f"**{cell(dataset.get('files', '?'))}** files, {cell(dataset.get('readable', '?'))} readable, "
            f"{len(dataset.get('classes') or [])} classes"
            + (f" ({cell(', '.join(map(str, dataset.get('splits') or [])))})" if dataset.get("splits") else "")
            + f" · encoder {cell(data.encoder_line())} · {tool}\n",
        ]
        for warning in data.warnings()[:10]:
            # A blank line after each, or GitHub merges consecutive alerts into one.
            lines.append(f"> [!WARNING]\n> {cell(warning, WARNING_CHARS)}\n\n")
        lines.append("\n| check | " + " | ".join(SEVERITIES) + " | total |\n")
        lines.append("|---|" + "---:|" * (len(SEVERITIES) + 1) + "\n")
        for check, counts in data.severity_counts().items():
            lines.append(
                f"| {cell(check)} | " + " | ".join(str(counts.get(s, 0)) for s in SEVERITIES)
                + f" | {sum(counts.values())} |\n"
            )
        for check, reason in data.skipped_checks().items():
            lines.append(f"| {cell(check)} | skipped: {cell(reason, 120)} |" + " |" * len(SEVERITIES) + "\n")
        if not data.by_check:
            lines.append("| _no findings_ |" + " 0 |" * (len(SEVERITIES) + 1) + "\n")
        lines.append(MarkdownRenderer._quality_table(data))
        return "".join(lines) + "\n"

    @staticmethod
    def _waived(waived: list[Finding], limit: int | None) -> str:
        shown = waived if limit is None else waived[:limit]
        rows = "".join(f"| {cell(f.check)} | {_code(subject(f))} | {cell(waiver_text(f))} |\n" for f in shown)
        more = f"\n_…and {len(waived) - len(shown)} more._\n" if len(shown) < len(waived) else ""
        return (f"\n<details><summary>Waived by reviewed decisions (not counted): {len(waived):,}</summary>\n\n"
                f"| kind | image | accepted because |\n|---|---|---|\n{rows}{more}\n</details>\n")

    @staticmethod
    def _quality_table(data: ReportData) -> str:
        """Image-quality findings per class: the classes with any, highest share first, at most a screenful."""
        kinds, rows = data.quality_by_class()
        rows = sorted((r for r in rows if any(r[2])), key=lambda r: -max(n / max(r[1], 1) for n in r[2]))
        if not rows:
            return ""
        lines = ["\n**Image quality by class** (images with each finding)\n\n",
                 "| class | images | " + " | ".join(cell(k) for k in kinds) + " |\n",
                 "|---|---:|" + "---:|" * len(kinds) + "\n"]
        for name, images, counts in rows[:QUALITY_ROWS]:
            lines.append(f"| {cell(name, 60)} | {images} | " + " | ".join(str(n) for n in counts) + " |\n")
        if len(rows) > QUALITY_ROWS:
            lines.append(f"\n_{len(rows) - QUALITY_ROWS} more classes with quality findings: see the HTML report._\n")
        return "".join(lines)

    @staticmethod
    def _section_start(check: str, total: int) -> str:
        return (
            f"<details><summary><b>{gfm_html(check, CELL_CHARS)}</b>: {total:,} finding(s)</summary>\n\n"
            "| score | severity | image or classes | split | label | message |\n"
            "|---:|---|---|---|---|---|\n"
        )

    @staticmethod
    def _row(finding: Finding) -> str:
        label = finding.label or ""
        if finding.suggested_label:
            label = f"{label} → {finding.suggested_label}"
        return (
            f"| {format_score(finding.score)} | {cell(finding.severity)} | {_code(subject(finding))} | "
            f"{cell(finding.split or '')} | {cell(label)} | {cell(finding.message)} |\n"
        )
