"""``audit review``: record a decision on a finding, given as options or answered at the terminal's prompts."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from auditor.cli.options import ResultsFolder
from auditor.core.errors import AuditorError

if TYPE_CHECKING:
    from auditor.results.reading import Results


def review_command(
    results: ResultsFolder,
    accept: Annotated[bool, typer.Option("--accept", help="Accept the finding: the data is right as it is.")] = False,
    relabel: Annotated[
        bool, typer.Option("--relabel", help="Decide the image's label should be the suggested one (or --label).")
    ] = False,
    check: Annotated[
        list[str] | None,
        typer.Option("--check", help="Finding kind, e.g. label_error (interactive: a repeatable filter)."),
    ] = None,
    path: Annotated[str | None, typer.Option("--path", help="The image's path as in the findings.")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why; recorded with the decision.")] = None,
    label: Annotated[str | None, typer.Option("--label", help="With --relabel: the new label.")] = None,
    who: Annotated[str | None, typer.Option("--who", help="Reviewer (default: git user.name or $USER).")] = None,
    expires: Annotated[
        str | None, typer.Option("--expires", help="Last day the decision holds, YYYY-MM-DD.")
    ] = None,
    decisions: Annotated[
        Path | None,
        typer.Option("--decisions", help="Decisions file (default: the one the scan read, or beside the dataset)."),
    ] = None,
    interactive: Annotated[
        bool, typer.Option("--interactive", "-i", help="Walk the top findings one by one (default on a terminal).")
    ] = False,
    top: Annotated[int, typer.Option("--top", min=1, help="Interactive: findings to walk.")] = 20,
) -> None:
    """Record reviewed decisions: accept a finding (the gate stops counting it) or relabel its image."""
    # Imported on use, as in every command: `audit --help` must not load pandas.
    from auditor.actions.review import decisions_path, default_who
    from auditor.results.destinations import refuse_destination
    from auditor.results.reading import load_results

    loaded = load_results(results)
    target = decisions_path(loaded, decisions)
    refuse_destination("--decisions", target, results)
    try:
        until = date.fromisoformat(expires) if expires is not None else None
    except ValueError:
        raise AuditorError(f"--expires must be a date YYYY-MM-DD, got {expires!r}") from None
    reviewer = who or default_who()
    console = Console()
    if accept or relabel:
        _review_one(loaded, target, accept, relabel, check, path, reason, label, reviewer, until, console)
        return
    if not (interactive or sys.stdin.isatty()):
        raise AuditorError("nothing to do: pass --accept or --relabel with --check and --path, or --interactive")
    _review_interactively(loaded, target, tuple(check or ()), top, reviewer, until, console)


def _review_one(results: Results, target: Path, accept: bool, relabel: bool, check: list[str] | None,
                path: str | None, reason: str | None, label: str | None, who: str, until: date | None,
                console: Console) -> None:
    from auditor.actions.review import find_finding, make_decision, write_decisions
    from auditor.report.safe import visible
    from auditor.results.decisions import label_problem

    if accept and relabel:
        raise AuditorError("--accept and --relabel exclude each other")
    if not check or len(check) != 1 or path is None:
        raise AuditorError("--accept/--relabel need one --check KIND and --path P")
    if label is not None and not relabel:
        raise AuditorError("--label only applies with --relabel")
    if label is not None and (problem := label_problem(label)) is not None:
        raise AuditorError(f"--label: {problem}")
    if accept and not reason:
        raise AuditorError("--accept needs --reason (it is the record of why the finding is fine)")
    finding = find_finding(results, check[0], path)
    action = "accept" if accept else "relabel"
    decision = make_decision(finding, results, action, reason or "relabelled in review", who, until, label)
    write_decisions(target, [decision])
    console.print(f"{escape(visible(decision.describe()))} written to [bold]{escape(visible(target))}[/]",
                  highlight=False, soft_wrap=True)


def _answer(text: str, **options: Any) -> str | None:
    """``click.prompt``'s answer, or None when standard input ended (click reports that, and Ctrl-C, as
    ``Abort``; an interrupt stays an interrupt)."""
    import click  # typer's own dependency; read a single key press only in interactive review

    try:
        return str(click.prompt(text, **options))
    except click.exceptions.Abort as stop:
        if isinstance(stop.__context__, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        return None


def _review_interactively(results: Results, target: Path, checks: tuple[str, ...], top: int, who: str,
                          until: date | None, console: Console) -> None:
    """The session's questions at the terminal's prompts; each decision is written at once, so quitting keeps
    what was decided."""
    import click  # typer's own dependency; read a single key press only in interactive review

    from auditor.actions.review_session import KeyQuestion, ReviewSession
    from auditor.report.safe import visible

    session = ReviewSession.start(results, target, checks, top, who, until)
    if not session.queue:
        console.print("nothing to review: every image finding is decided or waived")
        return
    while (question := session.question()) is not None:
        if isinstance(question, KeyQuestion):
            console.rule(escape(visible(question.title)))
            for line in question.lines:
                console.print(escape(visible(line)), highlight=False)
            if question.picture is None:
                console.print("thumbnail: none (the scan could not decode this file; do not open it)", highlight=False)
            else:
                console.print(f"thumbnail: {escape(visible(question.picture))}", highlight=False, soft_wrap=True)
            session.answer(_answer(question.legend, type=click.Choice(question.keys), show_choices=False))
        else:
            session.answer(_answer(question.prompt, default=question.default, show_default=False))
    if session.input_ended:
        console.print("input ended: review stopped")
    done = session.tally
    console.print(f"accepted {done.accepted}, relabelled {done.relabelled}, skipped {done.skipped}; "
                  f"decisions in [bold]{escape(visible(target))}[/]", highlight=False, soft_wrap=True)
    console.print(f"[dim]next: audit gate {escape(visible(results.directory))} honours them now; audit fix "
                  f"{escape(visible(results.directory))} --out manifest.csv applies relabels[/]", highlight=False,
                  soft_wrap=True)
