"""``audit gate``: pass or fail a results folder against the config's [gate] rules."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console

from auditor.cli.exit_codes import EXIT_GATE_FAILED
from auditor.cli.options import ResultsFolder, choice
from auditor.cli.terminal import interruptible, stdout_failure
from auditor.core.errors import OutputError

if TYPE_CHECKING:
    from auditor.core.config import GateConfig

# The values of auditor.report.gate_render.GateFormat, spelled out so that `audit --help` does not import pandas.
GateFormatName = Literal["text", "markdown", "json"]


def apply_gate(
    results: Path, rules: GateConfig, baseline: Path | None, fmt: str, output: Path | None, console: Console,
    decisions: Path | None = None, all_findings: bool = False,
) -> bool:
    """Evaluate the gate; ``fmt`` goes to ``output`` (the console then gets text) or stdout. True: passed.

    ``decisions``: a decisions file to apply as it is now (the scan's waivers otherwise). ``all_findings``: JSON
    lists every finding, not the first LISTED_FINDINGS of each list."""
    # Imported on use, as in every command: `audit --help` must not load pandas, torch or the checks.
    from auditor.actions.gate import LISTED_FINDINGS, evaluate
    from auditor.report.gate_render import GateFormat, print_verdict, render
    from auditor.results.decisions import load_decisions
    from auditor.results.destinations import refuse_destination
    from auditor.results.outputs import atomic_write
    from auditor.results.reading import load_results, recorded_decisions_file

    if output is not None:
        refuse_destination("--output", output, results)
    current = load_results(results)
    if decisions is None:  # the file the scan read, when it exists now: review's decisions count before a re-scan
        decisions = recorded_decisions_file(current)
    verdict = evaluate(current, rules, load_results(baseline) if baseline is not None else None,
                       load_decisions(decisions) if decisions is not None else None)
    listed = None if all_findings else LISTED_FINDINGS
    if output is not None:
        text = render(verdict, GateFormat(fmt), listed)
        atomic_write(output, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    if output is None and GateFormat(fmt) is not GateFormat.TEXT:
        typer.echo(render(verdict, GateFormat(fmt), listed), nl=False)
    else:
        print_verdict(console, verdict)
    lost = stdout_failure()
    if lost is not None:  # the exit code is then 2, so the verdict is said where it can still be read
        raise OutputError(f"the gate {'passed' if verdict.passed else 'FAILED'}, but its verdict could not be "
                          f"written to standard output: {lost}")
    return verdict.passed


def gate_command(
    results: ResultsFolder,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="TOML config with a \\[gate] section.")
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option("--baseline", help="Results folder of the base branch: only findings it lacks count."),
    ] = None,
    fmt: Annotated[str, choice("--format", "-f", allowed=GateFormatName, help="Output format.")] = "text",
    output: Annotated[
        Path | None,
        typer.Option("--output", help="Write the verdict in --format here; the terminal then gets text."),
    ] = None,
    decisions: Annotated[
        Path | None,
        typer.Option("--decisions", help="Decisions file to honour (default: the one the scan read, as it is now)."),
    ] = None,
    all_findings: Annotated[
        bool, typer.Option("--all-findings", help="json: list every finding (default: the first 1000 of each list).")
    ] = False,
) -> None:
    """Pass/fail RESULTS against the \\[gate] rules: exit 0 pass, 1 fail, 2 bad input or config."""
    from auditor.checks import PARAMS  # imported on use, as in every command (see apply_gate)
    from auditor.core.config import load_config

    rules = load_config(config, check_params=PARAMS).gate
    console = Console()
    # Off a terminal (CI logs), lines are not hard-wrapped at 80 columns in the middle of a message.
    console.soft_wrap = not console.is_terminal
    with interruptible("no verdict was given"):
        passed = apply_gate(results, rules, baseline, fmt, output, console, decisions, all_findings)
    if not passed:
        raise typer.Exit(EXIT_GATE_FAILED)
