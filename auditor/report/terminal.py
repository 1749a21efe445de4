"""The terminal report: Rich tables per check, class-count bars per split, the encoder and its warnings.

Every string from the results goes in as ``rich_text`` (never parsed as markup, control characters
shown as escapes): a label ``x[`` or a path ``[/]`` prints as itself.
"""

from __future__ import annotations

import io
from typing import ClassVar

from rich.console import Console
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


class TerminalRenderer(Renderer):
    default_top: ClassVar[int] = 15

    def render(self, data: ReportData, options: ReportOptions) -> str:
        buffer = io.StringIO()
        console = Console(
            file=buffer, width=options.width, force_terminal=options.color, no_color=not options.color,
            color_system="standard" if options.color else None, highlight=False, emoji=False,
        )
        dataset = data.run.get("dataset") or {}
        console.print(Text.assemble(("Dataset ", "bold"), visible(dataset.get("root", "?"))))
        console.print(rich_text(
            f"{dataset.get('files', '?')} files, {dataset.get('readable', '?')} readable, "
            f"{len(dataset.get('classes') or [])} classes; scanned {data.run.get('created', '?')}"
        ))
        console.print(Text.assemble(("Encoder ", "bold"), visible(data.encoder_line())))
        for warning in data.warnings():
            style = "bold yellow" if any(word in warning for word in PROMINENT_WARNINGS) else "yellow"
            console.print(Panel(rich_text(warning), title="warning", border_style=style, expand=False))
        self._class_bars(console, data)
        self._summary(console, data)
        self._quality_table(console, data)
        limit = options.limit(self.default_top)
        for check, findings in data.by_check.items():
            self._check_table(console, check, findings, limit, options.width)
        if data.waived:
            # Collapsed to one line each: they were reviewed already.
            shown = data.waived if limit is None else data.waived[:limit]
            console.print(Text(f"Waived by reviewed decisions (not counted): {len(data.waived)}", style="bold"))
            for finding in shown:
                console.print(rich_text(f"  {finding.check} {subject(finding)}: {waiver_text(finding)}", style="dim"))
            if len(shown) < len(data.waived):
                console.print(Text(f"  …and {len(data.waived) - len(shown)} more (--top 0 for all)", style="dim"))
        return buffer.getvalue()

    @staticmethod
    def _class_bars(console: Console, data: ReportData) -> None:
        counts = data.class_counts()
        if not counts:
            return
        for split, per in counts.items():
            # Bars scale within a split, where imbalance matters; the counts give absolute sizes.
            largest = max(per.values(), default=0) or 1
            table = Table(title=rich_text(f"Classes in {split}"), title_justify="left", show_header=False,
                          box=None)
            table.add_column("class")
            table.add_column("count", justify="right")
            table.add_column("bar")
            for name, count in sorted(per.items(), key=lambda item: (-item[1], item[0])):
                bar = "█" * max(1 if count else 0, round(BAR_WIDTH * count / largest))
                table.add_row(rich_text(name), str(count), Text(bar, style="cyan"))
            console.print(table)

    @staticmethod
    def _summary(console: Console, data: ReportData) -> None:
        table = Table(title="Findings", title_justify="left")
        table.add_column("check")
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
        # Folded, never cut short with "…"; a kind's words one per line keep its column narrow.
        table.add_column("class", overflow="fold")
        table.add_column("images", justify="right", overflow="fold")
        for kind in kinds:
            table.add_column(kind.replace("_", "_\n"), justify="right", overflow="fold")
        for name, images, counts in rows:
            table.add_row(rich_text(name), str(images), *(str(n) for n in counts))
        console.print(table)

    @staticmethod
    def _check_table(
        console: Console, check: str, findings: list[Finding], limit: int | None, width: int
    ) -> None:
        shown = findings if limit is None else findings[:limit]
        # A path has no spaces to wrap at, so it gets the room it needs (up to half the width) and the
        # message, which wraps between words and is never cut, takes the rest.
        longest_subject = max((len(subject(f)) for f in shown), default=0)
        title = f"{check}: {len(findings)} finding(s)"
        if len(shown) < len(findings):
            title += f", top {len(shown)} by score (--top 0 for all)"
        table = Table(title=rich_text(title), title_justify="left", show_lines=False)
        table.add_column("score", justify="right")
        table.add_column("severity")
        table.add_column("image or classes", overflow="fold", min_width=min(longest_subject, width // 2))
        table.add_column("split")
        table.add_column("label")
        table.add_column("message", overflow="fold")
        styles = {"error": "red", "warning": "yellow", "info": "blue"}
        for finding in shown:
            label = finding.label or ""
            if finding.suggested_label:
                label = f"{label} -> {finding.suggested_label}"
            message = finding.message
            severity = str(finding.severity)
            table.add_row(
                format_score(finding.score), rich_text(severity, style=styles.get(severity, "")),
                rich_text(subject(finding)), rich_text(finding.split or ""), rich_text(label), rich_text(message),
            )
        console.print(table)
