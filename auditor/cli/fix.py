"""``audit fix``: a cleaned manifest from a results folder; the dataset itself is never touched."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from auditor.cli.options import ResultsFolder
from auditor.core.errors import AuditorError


def fix_command(
    results: ResultsFolder,
    out: Annotated[Path, typer.Option("--out", "-o", help="Cleaned manifest to write: .csv or .parquet.")],
    drop: Annotated[
        list[str] | None, typer.Option("--drop", help="Also drop images with this finding kind (repeatable).")
    ] = None,
    keep_unreadable: Annotated[
        bool, typer.Option("--keep-unreadable", help="Keep unreadable files (dropped by default).")
    ] = False,
    no_dedupe: Annotated[
        list[str] | None,
        typer.Option("--no-dedupe", help="Keep every copy for this duplicate kind (exact_duplicate, near_duplicate)."),
    ] = None,
    drop_weak: Annotated[
        bool, typer.Option("--drop-weak", help="Also act on weak evidence: drop copies only one witness vouches "
                           "for, and let --relabel-above relabel label errors the scan found unreliable (info). "
                           "Copies under different labels are never dropped.")
    ] = False,
    keep_leakage: Annotated[
        bool, typer.Option("--keep-leakage", help="Leave leaked copies in every split.")
    ] = False,
    split_priority: Annotated[
        str | None,
        typer.Option("--split-priority", help="Which split's copy of a leaked image stays, first wins "
                     "(default train,dev,val,valid,validation,test)."),
    ] = None,
    relabel_above: Annotated[
        float | None,
        typer.Option("--relabel-above", min=0.0, max=1.0,
                     help="Also relabel label_error findings scoring at least this to the suggested label."),
    ] = None,
    decisions: Annotated[
        Path | None, typer.Option("--decisions", help="Decisions file (default: the one the scan read).")
    ] = None,
) -> None:
    """Write a cleaned manifest (path,label,split) for `audit scan --manifest`; the dataset is never touched."""
    # Imported on use, as in every command: `audit --help` must not load pandas.
    from auditor.actions.fix import DEFAULT_SPLIT_PRIORITY, DUPLICATE_KINDS, FixOptions, plan_fix, write_fix
    from auditor.report.safe import visible
    from auditor.results.decisions import load_decisions, now_utc
    from auditor.results.destinations import refuse_destination
    from auditor.results.reading import load_results, recorded_decisions_file, with_decisions

    refuse_destination("--out", out, results)
    loaded = load_results(results)
    unknown = sorted(set(no_dedupe or ()) - set(DUPLICATE_KINDS))
    if unknown:
        raise AuditorError(f"--no-dedupe takes {', '.join(DUPLICATE_KINDS)}, got {', '.join(unknown)}")
    priority = (tuple(s.strip() for s in split_priority.split(",") if s.strip()) if split_priority
                else DEFAULT_SPLIT_PRIORITY)
    options = FixOptions(
        dedupe=tuple(k for k in DUPLICATE_KINDS if k not in (no_dedupe or ())),
        leakage=not keep_leakage,
        split_priority=priority,
        relabel_above=relabel_above,
        drop=tuple(drop or ()) + (() if keep_unreadable else ("unreadable",)),
        drop_weak=drop_weak,
    )
    root_text = (loaded.run.get("dataset") or {}).get("root")
    source = decisions if decisions is not None else recorded_decisions_file(loaded)
    decided = load_decisions(source) if source is not None else []
    # Waivers as the decisions file says now: what was accepted since the scan stays untouched too.
    loaded, _ = with_decisions(loaded, decided, now_utc().date())
    fix = plan_fix(loaded, decided, options, now_utc().date())
    log = write_fix(fix, out)
    console = Console()
    table = Table(title=f"audit fix: {len(fix.manifest)} of {len(loaded.images)} images kept", title_justify="left")
    for column in ("action", "because of", "images"):
        table.add_column(column)
    for action, kind, count in fix.summary():
        table.add_row(action, kind, str(count))
    if not fix.changes:
        table.add_row("none", "nothing to fix", "0")
    console.print(table)
    left = fix.left_in()
    if left["review"]:
        console.print(f"{left['review']} images are copies filed under different labels: label conflicts to "
                      f"review (audit review {escape(visible(results))}), not dropped", highlight=False, soft_wrap=True)
    if left["keep"]:
        copies = "1 copy rests" if left["keep"] == 1 else f"{left['keep']} copies rest"
        console.print(f"{copies} on one witness only: kept (--drop-weak drops them)",
                      highlight=False, soft_wrap=True)
    console.print(f"manifest: [bold]{escape(visible(out))}[/]; changes and reasons: {escape(visible(log))}",
                  highlight=False,
                  soft_wrap=True)
    if root_text:
        console.print(f"[dim]next: audit scan {escape(visible(root_text))} --manifest {escape(visible(out))}[/]",
                      highlight=False, soft_wrap=True)
