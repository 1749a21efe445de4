"""The terminal report: class-count bars per split, the findings per check, the encoder and its warnings.

Every string from the results goes in as ``rich_text`` (never parsed as markup, control characters
shown as escapes): a label ``x[`` or a path ``[/]`` prints as itself.

It reads at any width, 80 columns included: each finding is stacked, its score, severity and path on one line
that is never wrapped or cut (a path is copied from it whole), the label it has and the one suggested, the
split, then the message wrapped between words. A table too wide for the width is written as a list instead,
never squeezed until its words split.
"""

from __future__ import annotations

import io
import sys
from typing import ClassVar

from rich.console import Console
from rich.measure import Measurement
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from auditor.report.base import (
    SEVERITIES,
    Renderer,
    ReportData,
    ReportOptions,
    format_score,
    subject,
    waiver_text,
)
from auditor.report.safe import rich_text, visible
from auditor.results.findings import Finding
from auditor.results.reading import PROMINENT_WARNINGS

BAR_WIDTH = 30
# Where a finding's facts and message start, under its path: past the score and the severity.
INDENT = 18
SEVERITY_STYLES = {"error": "red", "warning": "yellow", "info": "blue"}


class TerminalRenderer(Renderer):
    default_top: ClassVar[int] = 15

    def render(self, data: ReportData, options: ReportOptions) -> str:
        buffer = io.StringIO()
        console = Console(
            file=buffer, width=options.width, force_terminal=options.color, no_color=not options.color,
            color_system="standard" if options.color else None, highlight=False, emoji=False,
        )
        dataset = data.run.get("dataset") or {}
        console.print(Text.assemble(("Dataset ", "bold"), visible(dataset.get("root", "?"))), soft_wrap=True)
        console.print(rich_text(
            f"{dataset.get('files', '?')} files, {dataset.get('readable', '?')} readable, "
            f"{len(dataset.get('classes') or [])} classes; scanned {data.run.get('created', '?')}"
        ))
        console.print(Text.assemble(("Encoder ", "bold"), visible(data.encoder_line())), soft_wrap=True)
        for warning in data.warnings():
            style = "bold yellow" if any(word in warning for word in PROMINENT_WARNINGS) else "yellow"
            console.print(Panel(rich_text(warning), title="warning", border_style=style, expand=False))
        self._class_bars(console, data)
        self._summary(console, data)
        self._quality_table(console, data)
        limit = options.limit(self.default_top)
        for check, findings in data.by_check.items():
            self._check_list(console, check, findings, limit)
        if data.waived:
            # Collapsed to one line each: they were reviewed already.
            shown = data.waived if limit is None else data.waived[:limit]
            console.print(Text(f"Waived by reviewed decisions (not counted): {len(data.waived)}", style="bold"))
            for finding in shown:
                console.print(rich_text(f"  {finding.check} {subject(finding)}: {waiver_text(finding)}", style="dim"),
                              soft_wrap=True)
            if len(shown) < len(data.waived):
                console.print(Text(f"  …and {len(data.waived) - len(shown)} more (--top 0 for all)", style="dim"))
        return buffer.getvalue()

    @staticmethod
    def _class_bars(console: Console, data: ReportData) -> None:
        counts = data.class_counts()
        if not counts or not data.asks_for("class_imbalance"):
            return
        for split, per in counts.items():
            # Bars scale within a split, where imbalance matters; the counts give absolute sizes.
            largest = max(per.values(), default=0) or 1
            table = Table(title=rich_text(f"Classes in {split}"), title_justify="left", show_header=False,
                          box=None)
            table.add_column("class", overflow="fold")
            table.add_column("count", justify="right")
            table.add_column("bar")
            for name, count in sorted(per.items(), key=lambda item: (-item[1], item[0])):
                bar = "█" * max(1 if count else 0, round(BAR_WIDTH * count / largest))
                table.add_row(rich_text(name), str(count), Text(bar, style="cyan"))
            console.print(table)

    @staticmethod
    def _summary(console: Console, data: ReportData) -> None:
        table = Table(title="Findings", title_justify="left")
        table.add_column("check", overflow="fold")
        for severity in SEVERITIES:
            table.add_column(severity, justify="right")
        for check, counts in data.severity_counts().items():
            table.add_row(rich_text(check), *(str(counts.get(s, 0)) for s in SEVERITIES))
        for check, reason in data.skipped_checks().items():
            table.add_row(rich_text(f"{check} (skipped: {reason})", style="dim"), *("-" for _ in SEVERITIES))
        if not data.by_check and not data.skipped_checks():
            table.add_row("no findings", *("0" for _ in SEVERITIES))
        console.print(table)

    @staticmethod
    def _quality_table(console: Console, data: ReportData) -> None:
        kinds, rows = data.quality_by_class()
        rows = [r for r in rows if any(r[2])]
        if not rows:
            return
        table = Table(title="Image quality by class", title_justify="left")
        # A kind's words one per line keep its column narrow.
        table.add_column("class", overflow="fold")
        table.add_column("images", justify="right")
        for kind in kinds:
            table.add_column(kind.replace("_", "_\n"), justify="right")
        for name, images, counts in rows:
            table.add_row(rich_text(name), str(images), *(str(n) for n in counts))
        # Measured unconstrained: its natural width, which rich would squeeze into the console's by splitting words.
        if Measurement.get(console, console.options.update_width(sys.maxsize), table).maximum <= console.width:
            console.print(table)
            return
        # Too many kinds for the width: a class per line, its non-zero counts wrapped between entries.
        console.print(Text("Image quality by class", style="italic"))
        for name, images, counts in rows:
            found = ", ".join(f"{kind} {n}" for kind, n in zip(kinds, counts, strict=True) if n)
            _indented(console, Text.assemble((visible(name), "bold"), f" ({images} images): {found}"), 1, 2)

    @staticmethod
    def _check_list(console: Console, check: str, findings: list[Finding], limit: int | None) -> None:
        shown = findings if limit is None else findings[:limit]
        title = f"{check}: {len(findings)} finding(s)"
        if len(shown) < len(findings):
            title += f", top {len(shown)} by score (--top 0 for all)"
        console.print(rich_text(title, style="bold"))
        for finding in shown:
            severity = str(finding.severity)
            console.print(Text.assemble(
                f"{format_score(finding.score):>7}  ", (f"{severity:<7}", SEVERITY_STYLES.get(severity, "")), "  ",
                visible(subject(finding)),
            ), soft_wrap=True)
            for text in (_facts(finding), finding.message):
                _indented(console, rich_text(text), INDENT)


def _indented(console: Console, text: Text, indent: int, hang: int = 0) -> None:
    """``text`` wrapped between words after ``indent`` spaces, its later lines ``hang`` spaces further in (no
    trailing spaces)."""
    if not text.plain:
        return
    for number, line in enumerate(text.wrap(console, max(console.width - indent - hang, 20))):
        line.rstrip()
        console.print(Text(" " * (indent + (hang if number else 0))) + line, soft_wrap=True)


def _facts(finding: Finding) -> str:
    """The split, the label given (and the one suggested), and the classes an image sits between, in one line."""
    facts = []
    if finding.split:
        facts.append(f"split {finding.split}")
    if finding.label and finding.suggested_label:
        facts.append(f"{finding.label} → {finding.suggested_label}")
    elif finding.label:
        facts.append(f"label {finding.label}")
    if finding.path and set(finding.classes) - {finding.label, finding.suggested_label}:
        # The classes an ambiguous image sits between; a label error's are its two labels, shown already.
        facts.append(f"classes {', '.join(finding.classes)}")
    return " · ".join(facts)
