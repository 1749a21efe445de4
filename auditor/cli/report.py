"""``audit report``: a results folder as a terminal report, a Markdown summary or an HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape

from auditor.cli.options import ResultsFolder, choice, output_width
from auditor.cli.terminal import interruptible

# The values of auditor.report.ReportFormat, spelled out so that `audit --help` does not import pandas.
ReportFormatName = Literal["terminal", "markdown", "html"]


def report_command(
    results: ResultsFolder,
    fmt: Annotated[str, choice("--format", "-f", allowed=ReportFormatName, help="Output format.")] = "terminal",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write here (default: stdout; html: RESULTS/report.html)."),
    ] = None,
    check: Annotated[
        list[str] | None, typer.Option("--check", help="Only this check or finding kind (repeatable).")
    ] = None,
    top: Annotated[
        int | None,
        typer.Option(
            "--top", min=0, help="Findings per check, best first; 0: all (default 15; markdown 10; html 500)."
        ),
    ] = None,
    dataset: Annotated[
        Path | None, typer.Option("--dataset", help="Dataset folder for thumbnails (default: from run.json).")
    ] = None,
) -> None:
    """Render RESULTS as a terminal report, a Markdown summary, or a self-contained HTML page."""
    # Imported on use, as in every command: `audit --help` must not load pandas.
    from auditor.report import ReportFormat, ReportOptions, render_results, write_report
    from auditor.results.destinations import refuse_destination

    report_format = ReportFormat(fmt)
    if output is None and report_format is ReportFormat.HTML:
        output = results / "report.html"
    if output is not None:
        refuse_destination("--output", output, results)
    console = Console()
    color = output is None and report_format is ReportFormat.TERMINAL and console.is_terminal
    options = ReportOptions(tuple(check or ()), top, dataset, color, output_width(console))
    with interruptible("no report was written"):
        text = render_results(results, report_format, options)
        if output is None:
            typer.echo(text, nl=False)
            return
        write_report(output, text)
    from auditor.report.safe import visible

    # Never broken inside the path: it is copied from here.
    console.print(f"report written to [bold]{escape(visible(output))}[/]", highlight=False, soft_wrap=True)
