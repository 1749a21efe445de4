"""Rich rendering for the CLI: progress bars and the end-of-scan summary (library code never prints)."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from auditor.cli.terminal import err_console
from auditor.report.safe import one_line, rich_text, visible
from auditor.results.reading import PROMINENT_WARNINGS, produced_kinds
from auditor.results.summaries import Skipped, read_summaries
from auditor.scan.pipeline import ScanResult

SEVERITIES = ("error", "warning", "info")


class RichObserver:
    """Shows one progress bar per pipeline stage, and the scan's weighty warnings on ``warnings_to`` (stderr) as
    soon as the pipeline knows them: before the bars that follow, with or without bars (``--quiet``)."""

    def __init__(self, console: Console, enabled: bool = True, warnings_to: Console | None = None) -> None:
        self.console = console
        self.enabled = enabled
        self.warnings_to = warnings_to or err_console
        # What was told already, so that --quiet does not print it a second time at the end.
        self.warned: list[str] = []
        self._progress: Progress | None = None
        self._task: int | None = None
        self._stage = ""

    def stage(self, name: str, total: int | None) -> None:
        if not self.enabled:
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=self.console, transient=False,
        )
        self._progress.start()
        self._stage = escape(name)
        self._task = self._progress.add_task(self._stage, total=total)

    def advance(self, count: int = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, count)  # type: ignore[arg-type]

    def step(self, text: str) -> None:
        """Show the sub-step beside the stage's name, so a long check's bar visibly moves on."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=f"{self._stage} [dim]{escape(text)}[/]")  # type: ignore[arg-type]

    def warn(self, text: str) -> None:
        self.warned.append(text)
        print_warning(self.warnings_to, text)

    def done(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        self._progress = None
        self._task = None


def print_warning(console: Console, text: str) -> None:
    """One warning as one line, ``warning: ...`` (a CI log greps for it)."""
    console.print(f"[bold yellow]warning:[/] {escape(one_line(text))}", highlight=False, soft_wrap=True)


def print_summary(console: Console, result: ScanResult) -> None:
    run = result.run
    encoder = result.encoder
    for warning in result.warnings:
        style = "bold yellow" if any(word in warning for word in PROMINENT_WARNINGS) else "yellow"
        console.print(Panel(rich_text(warning), title="warning", border_style=style, expand=False))
    data = run["dataset"]
    console.print(Text.assemble(
        (str(data["files"]), "bold"), f" files, {data['readable']} readable, {len(data['classes'])} classes",
        visible(f", splits: {', '.join(data['splits'])}") if data["splits"] else "",
    ))
    emb = run["embedding"]
    trained = "pretrained" if encoder.pretrained else "not pretrained"
    console.print(Text.assemble(
        "encoder: ", (visible(encoder.identity), "bold"),
        f" ({trained}); embedded {emb.get('embedded', 0)}, from cache {emb.get('from_cache', 0)}",
    ))
    probabilities = run.get("probabilities", {})
    if probabilities.get("source") == "user":
        console.print(Text.assemble(
            "class probabilities: yours, from ", (visible(str(probabilities["file"])), "bold"),
            f" ({probabilities['matched_images']} images matched, {probabilities['images_without_row']} without a row)",
        ))
    counts = Counter((f.check, str(f.severity)) for f in result.findings)
    produced = produced_kinds(run)
    table = Table(title="Findings", show_lines=False)
    table.add_column("check")
    for severity in SEVERITIES:
        table.add_column(severity, justify="right")
    for check, summary in read_summaries(run["checks"]).items():
        if isinstance(summary, Skipped):
            table.add_row(Text.assemble(check, (" (skipped)", "dim")), *("-" for _ in SEVERITIES))
            continue
        # A check may emit several kinds of finding (duplicates: split_leakage, near_duplicate, ...).
        for kind in sorted(produced.get(check, (check,))):
            table.add_row(rich_text(kind), *(str(counts.get((kind, s), 0)) for s in SEVERITIES))
    console.print(table)
    decided = run.get("decisions") or {}
    if decided.get("waived_findings"):
        console.print(f"{decided['waived_findings']} finding(s) waived by reviewed decisions in "
                      f"{escape(visible(decided.get('file')))} (kept in the results, not counted by the gate)",
                      highlight=False)
    out = visible(result.out_dir)
    # Never broken inside a path or a command: both are copied from here.
    console.print(Text.assemble("results written to ", (out, "bold")), soft_wrap=True)
    console.print(Text(f"next: audit report {out} --format html · audit gate {out}", style="dim"), highlight=False,
                  soft_wrap=True)
