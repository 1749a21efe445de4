"""Command-line entry point. Thin: parse options, call the core, render, map errors to exit codes."""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperCommand

from auditor import __version__
from auditor.core.errors import AuditorError

if TYPE_CHECKING:
    from auditor.core.config import GateConfig
    from auditor.results.reading import Results

EXIT_OK, EXIT_GATE_FAILED, EXIT_USAGE = 0, 1, 2
# 128 + SIGINT, what shells report for a command stopped by Ctrl-C.
EXIT_INTERRUPTED = 130
# A bug in auditor (sysexits' EX_SOFTWARE): never 1, which a CI job reads as "the gate failed".
EXIT_INTERNAL = 70


class _Command(TyperCommand):
    """Usage lines write a required argument as its help does (``DATASET``): typer wraps it in braces
    (``{DATASET}``), which reads as a placeholder to fill in or a set to choose from."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:  # Any: click's Context, or typer's own copy of click
        return [piece[1:-1] if piece.startswith("{") and piece.endswith("}") else piece
                for piece in super().collect_usage_pieces(ctx)]


app = typer.Typer(
    name="audit",
    help="Audit labelled image datasets: label errors, duplicates and leakage, ambiguity, imbalance.",
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_show_locals=False,
)
err_console = Console(stderr=True)
# click's base error (a missing argument, an unknown option, a bad value), found through typer's public
# ``BadParameter`` because typer may run its own copy of click.
_CLICK_ERROR: type[Exception] = next(kind for kind in typer.BadParameter.__mro__ if kind.__name__ == "ClickException")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"auditor {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """auditor: find what is wrong with an image dataset before you train on it."""


def _one_of(allowed: tuple[str, ...]) -> Callable[[typer.CallbackParam, str | None], str | None]:
    """Check a choice option here: a wrong value is then the one-line usage error (exit 2) every other bad input
    gets, where typer's own check of a Literal option prints a six-line box."""

    def check(param: typer.CallbackParam, value: str | None) -> str | None:
        if value is not None and value not in allowed:
            raise AuditorError(f"{'/'.join(param.opts)} must be one of {', '.join(allowed)}; got {value!r}")
        return value

    return check


def _choice(*declarations: str, allowed: Any, help: str) -> Any:
    """A typer option taking one of the values of the Literal ``allowed`` (shown in --help, completed by the shell)."""
    values: tuple[str, ...] = get_args(allowed)
    return typer.Option(*declarations, help=help, metavar="|".join(values), callback=_one_of(values),
                        autocompletion=lambda: list(values))


@contextmanager
def _interruptible(left: str) -> Iterator[None]:
    """Ctrl-C (or SIGTERM) in a command: one line saying what was left, exit 130, as scan does; ``left`` says
    what the interrupted command leaves behind."""
    try:
        yield
    except KeyboardInterrupt:
        err_console.print(f"[bold yellow]interrupted:[/] {left}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so that neither a later write nor the interpreter's last flush raises again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


class _StdoutConsole(Console):
    """The commands' stdout: a reader that stops early (`audit gate RESULTS | head -1`) is no error.

    No traceback and no message: the rest of the text is dropped and the command goes on to its usual exit
    code. The gate's is its verdict, 0 pass and 1 fail, however much of the text the reader took (rich and
    typer alone exit 1 on a broken pipe, which a CI step reads as "the gate failed").
    """

    def __init__(self) -> None:
        super().__init__(stderr=False)

    def on_broken_pipe(self) -> None:
        self.quiet = True
        _drop_stdout()


@contextmanager
def _reader_may_leave() -> Iterator[None]:
    """What ``_StdoutConsole`` does for text written with ``typer.echo``."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        _drop_stdout()


def _overrides(**options: Any) -> dict[str, Any]:
    """CLI options that were given, as a nested config dict (None means 'not given')."""
    mapping = {
        "encoder": ("encoder", "name"),
        "device": ("encoder", "device"),
        "batch_size": ("encoder", "batch_size"),
        "workers": ("encoder", "workers"),
        "embeddings": ("encoder", "precomputed_file"),
        "model_file": ("encoder", "model_file"),
        "cache_dir": ("scan", "cache_dir"),
        "engine": ("engine", "name"),
        "ray_address": ("engine", "address"),
    }
    result: dict[str, Any] = {}
    for key, value in options.items():
        if value is None:
            continue
        section, field = mapping[key]
        result.setdefault(section, {})[field] = str(value) if isinstance(value, Path) else value
    if options.get("workers") is not None:
        result.setdefault("scan", {})["workers"] = options["workers"]
    if options.get("embeddings") is not None and options.get("encoder") is None:
        result["encoder"]["name"] = "precomputed"
    if options.get("model_file") is not None and options.get("encoder") is None:
        result["encoder"]["name"] = "onnx"
    if options.get("ray_address") is not None and options.get("engine") is None:
        result["engine"]["name"] = "ray"
    return result


# The values of auditor.core.config.EngineConfig.name, spelled out so that `audit --help` does not import pydantic.
EngineName = Literal["local", "ray"]


@app.command(cls=_Command)
def scan(
    dataset: Annotated[
        Path,
        typer.Argument(metavar="DATASET", help="Dataset folder: DATASET/<class>/* or DATASET/<split>/<class>/*."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the results.")] = Path("audit_results"),
    config: Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file.")] = None,
    manifest: Annotated[
        Path | None, typer.Option("--manifest", help="CSV/Parquet with columns path,label[,split].")
    ] = None,
    encoder: Annotated[
        str | None, typer.Option("--encoder", help="auto | clip | builtin | precomputed | onnx.")
    ] = None,
    embeddings: Annotated[
        Path | None, typer.Option("--embeddings", help="Precomputed embeddings (.parquet or .npz) keyed by path.")
    ] = None,
    pred_probs: Annotated[
        Path | None,
        typer.Option("--pred-probs", help="Your model's out-of-sample class probabilities (Parquet: path + one "
                     "column per class), used instead of auditor's classifier."),
    ] = None,
    model_file: Annotated[
        Path | None, typer.Option("--model-file", help="ONNX image model for --encoder onnx (implies it).")
    ] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto | cpu | cuda.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Images per encoder batch.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Decoding worker processes (0: none).")] = None,
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Embedding cache folder.")] = None,
    engine: Annotated[
        EngineName | None,
        typer.Option("--engine", help="Where decode + embed run: local, or ray (Ray Data actors; "
                     "needs auditor\\[ray])."),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", help="Ray cluster address (implies --engine ray; default: $RAY_ADDRESS, "
                     "else a local Ray instance)."),
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the embedding cache.")] = False,
    checks: Annotated[
        str | None, typer.Option("--checks", help="Comma-separated checks to run (default: all).")
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bars or summary; warnings still go to stderr.")
    ] = False,
    gate: Annotated[
        bool,
        typer.Option("--gate", help="Apply the config's \\[gate] rules after the scan; exit 1 if they fail."),
    ] = False,
    baseline: Annotated[
        Path | None, typer.Option("--baseline", help="With --gate: results folder of the base branch.")
    ] = None,
    decisions: Annotated[
        Path | None,
        typer.Option("--decisions", help="Reviewed decisions (default: audit-decisions.toml beside DATASET)."),
    ] = None,
) -> None:
    """Scan DATASET: embed every image, run the checks, write Parquet findings and run.json."""
    overrides = _overrides(
        encoder=encoder, device=device, batch_size=batch_size, workers=workers,
        embeddings=embeddings, model_file=model_file, cache_dir=cache_dir, engine=engine, ray_address=ray_address,
    )
    if no_cache:
        overrides.setdefault("scan", {})["use_cache"] = False
    if decisions is not None:
        overrides.setdefault("scan", {})["decisions_file"] = str(decisions)
    if checks is not None:
        overrides.setdefault("scan", {})["checks"] = [c.strip() for c in checks.split(",") if c.strip()]
    if baseline is not None and not gate:
        raise AuditorError("--baseline only applies with --gate")
    if ray_address is not None and engine == "local":
        raise AuditorError("--ray-address only applies with --engine ray")
    # A Ctrl-C during the imports below (torch's take seconds) must end like one during the scan, not silently.
    with _interruptible("the scan had not started; nothing was written"):
        # Imported on use in every command: `audit --help` must not load pandas, torch or the checks.
        from auditor.checks import PARAMS
        from auditor.cli.console import RichObserver, print_summary
        from auditor.core.config import load_config
        from auditor.scan import run_scan

        cfg = load_config(config, overrides, check_params=PARAMS)
    console = _StdoutConsole()
    observer = RichObserver(console, enabled=not quiet and console.is_terminal)
    try:
        result = run_scan(dataset, cfg, out, manifest=manifest, observer=observer, pred_probs=pred_probs)
    except KeyboardInterrupt:
        from auditor.report.safe import visible  # on use: auditor.report imports pandas (see scan_command)

        observer.done()
        err_console.print(
            f"[bold yellow]interrupted:[/] results in {escape(visible(out))} were left as they were; "
            "finished embedding batches are cached, so the next scan resumes from there",
            highlight=False, soft_wrap=True,
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if quiet:
        # --quiet drops progress and the summary, never a warning: a CI log must still say a weak encoder ran.
        from auditor.core.library_warnings import PREFIX
        from auditor.report.safe import one_line  # on use: auditor.report imports pandas (see scan_command)

        for warning in result.warnings:
            # Library noise (cleanlab's per-class warnings) stays in run.json and the reports, not the CI log.
            if not warning.startswith(PREFIX):
                err_console.print(f"warning: {escape(one_line(warning))}", highlight=False, soft_wrap=True)
    else:
        print_summary(console, result)
    if gate and not _apply_gate(out, cfg.gate, baseline, "text", None, console):
        raise typer.Exit(EXIT_GATE_FAILED)


# The values of auditor.report.gate_render.GateFormat, spelled out so that `audit --help` does not import pandas.
GateFormatName = Literal["text", "markdown", "json"]


def _apply_gate(
    results: Path, rules: GateConfig, baseline: Path | None, fmt: str, output: Path | None, console: Console,
    decisions: Path | None = None,
) -> bool:
    """Evaluate the gate; ``fmt`` goes to ``output`` (the console then gets text) or stdout. True: passed.

    ``decisions``: a decisions file to apply as it is now (the scan's waivers otherwise)."""
    # Imported on use, as in every command (see scan_command).
    from auditor.actions.gate import evaluate
    from auditor.report.gate_render import GateFormat, print_verdict, render
    from auditor.results.decisions import load_decisions
    from auditor.results.outputs import atomic_write
    from auditor.results.reading import load_results, recorded_decisions_file

    current = load_results(results)
    if decisions is None:  # the file the scan read, when it exists now: review's decisions count before a re-scan
        decisions = recorded_decisions_file(current)
    verdict = evaluate(current, rules, load_results(baseline) if baseline is not None else None,
                       load_decisions(decisions) if decisions is not None else None)
    if output is not None:
        text = render(verdict, GateFormat(fmt))
        atomic_write(output, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    with _reader_may_leave():
        if output is None and GateFormat(fmt) is not GateFormat.TEXT:
            typer.echo(render(verdict, GateFormat(fmt)), nl=False)
        else:
            print_verdict(console, verdict)
    return verdict.passed


@app.command("gate", cls=_Command)
def gate_command(
    results: Annotated[Path, typer.Argument(metavar="RESULTS", help="Results folder written by `audit scan`.")],
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="TOML config with a \\[gate] section.")
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option("--baseline", help="Results folder of the base branch: only findings it lacks count."),
    ] = None,
    fmt: Annotated[str, _choice("--format", "-f", allowed=GateFormatName, help="Output format.")] = "text",
    output: Annotated[
        Path | None,
        typer.Option("--output", help="Write the verdict in --format here; the terminal then gets text."),
    ] = None,
    decisions: Annotated[
        Path | None,
        typer.Option("--decisions", help="Decisions file to honour (default: the one the scan read, as it is now)."),
    ] = None,
) -> None:
    """Pass/fail RESULTS against the \\[gate] rules: exit 0 pass, 1 fail, 2 bad input or config."""
    from auditor.checks import PARAMS  # imported on use, as in every command (see scan_command)
    from auditor.core.config import load_config

    rules = load_config(config, check_params=PARAMS).gate
    console = _StdoutConsole()
    # Off a terminal (CI logs), lines are not hard-wrapped at 80 columns in the middle of a message.
    console.soft_wrap = not console.is_terminal
    with _interruptible("no verdict was given"):
        passed = _apply_gate(results, rules, baseline, fmt, output, console, decisions)
    if not passed:
        raise typer.Exit(EXIT_GATE_FAILED)


# The values of auditor.report.ReportFormat, spelled out so that `audit --help` does not import pandas.
ReportFormatName = Literal["terminal", "markdown", "html"]


@app.command("report", cls=_Command)
def report_command(
    results: Annotated[Path, typer.Argument(metavar="RESULTS", help="Results folder written by `audit scan`.")],
    fmt: Annotated[str, _choice("--format", "-f", allowed=ReportFormatName, help="Output format.")] = "terminal",
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
    from auditor.report import ReportFormat, ReportOptions, render_results, write_report  # on use: see scan

    report_format = ReportFormat(fmt)
    if output is None and report_format is ReportFormat.HTML:
        output = results / "report.html"
    console = _StdoutConsole()
    color = output is None and report_format is ReportFormat.TERMINAL and console.is_terminal
    options = ReportOptions(tuple(check or ()), top, dataset, color, console.width if color else 120)
    with _interruptible("no report was written"):
        text = render_results(results, report_format, options)
        if output is None:
            with _reader_may_leave():
                typer.echo(text, nl=False)
            return
        write_report(output, text)
    from auditor.report.safe import visible  # on use: see report_command's imports

    console.print(f"report written to [bold]{escape(visible(output))}[/]", highlight=False)


@app.command("review", cls=_Command)
def review_command(
    results: Annotated[Path, typer.Argument(metavar="RESULTS", help="Results folder written by `audit scan`.")],
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
    from auditor.actions.review import decisions_path, default_who
    from auditor.results.reading import load_results

    loaded = load_results(results)
    target = decisions_path(loaded, decisions)
    try:
        until = date.fromisoformat(expires) if expires is not None else None
    except ValueError:
        raise AuditorError(f"--expires must be a date YYYY-MM-DD, got {expires!r}") from None
    reviewer = who or default_who()
    console = _StdoutConsole()
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

    if accept and relabel:
        raise AuditorError("--accept and --relabel exclude each other")
    if not check or len(check) != 1 or path is None:
        raise AuditorError("--accept/--relabel need one --check KIND and --path P")
    if label is not None and not relabel:
        raise AuditorError("--label only applies with --relabel")
    if accept and not reason:
        raise AuditorError("--accept needs --reason (it is the record of why the finding is fine)")
    finding = find_finding(results, check[0], path)
    action = "accept" if accept else "relabel"
    decision = make_decision(finding, results, action, reason or "relabelled in review", who, until, label)
    write_decisions(target, [decision])
    console.print(f"{escape(decision.describe())} written to [bold]{escape(str(target))}[/]", highlight=False)


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
    """One finding at a time; each decision is written at once, so quitting keeps what was decided."""
    import click  # typer's own dependency; read a single key press only in interactive review

    from auditor.actions.review import (
        existing_decisions,
        make_decision,
        review_queue,
        review_thumbnail,
        write_decisions,
    )

    queue = review_queue(results, checks, existing_decisions(target), top)
    if not queue:
        console.print("nothing to review: every image finding is decided or waived")
        return
    root = Path(str((results.run.get("dataset") or {}).get("root") or "."))
    max_pixels = int(((results.run.get("config") or {}).get("scan") or {}).get("max_image_pixels") or 89_478_485)
    done = {"accept": 0, "relabel": 0, "skip": 0}
    for number, finding in enumerate(queue, start=1):
        console.rule(f"{number}/{len(queue)} {escape(finding.check)} · score {finding.score:.3g}")
        console.print(f"path:      {escape(finding.path or '')}", highlight=False)
        given = f"label:     {escape(finding.label or '(none)')}"
        if finding.suggested_label:
            given += f" -> suggested {escape(finding.suggested_label)}"
        console.print(given, highlight=False)
        console.print(f"evidence:  {escape(finding.message)}", highlight=False)
        if finding.other_path:
            console.print(f"partner:   {escape(finding.other_path)}", highlight=False)
        thumbnail = review_thumbnail(results, finding, root, max_pixels)
        shown = thumbnail if thumbnail is not None else root / (finding.path or "")
        console.print(f"thumbnail: {escape(str(shown))}", highlight=False, soft_wrap=True)
        keys = ["a", "r", "s", "q"] if finding.suggested_label else ["a", "s", "q"]
        legend = "a=accept, r=relabel to suggested, s=skip, q=quit" if finding.suggested_label else \
            "a=accept, s=skip, q=quit"
        key = _answer(legend, type=click.Choice(keys), show_choices=False)
        if key is None:
            console.print("input ended: review stopped")
            break
        if key == "q":
            break
        if key == "s":
            done["skip"] += 1
            continue
        action = "accept" if key == "a" else "relabel"
        reason = _answer("reason", default="accepted in review" if key == "a" else "relabelled in review")
        if reason is None:
            console.print("input ended: review stopped")
            break
        write_decisions(target, [make_decision(finding, results, action, reason, who, until)])
        done[action] += 1
    console.print(f"accepted {done['accept']}, relabelled {done['relabel']}, skipped {done['skip']}; "
                  f"decisions in [bold]{escape(str(target))}[/]", highlight=False, soft_wrap=True)
    console.print(f"[dim]next: audit gate {escape(str(results.directory))} honours them now; audit fix "
                  f"{escape(str(results.directory))} --out manifest.csv applies relabels[/]", highlight=False,
                  soft_wrap=True)


@app.command("fix", cls=_Command)
def fix_command(
    results: Annotated[Path, typer.Argument(metavar="RESULTS", help="Results folder written by `audit scan`.")],
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
    from auditor.actions.fix import DEFAULT_SPLIT_PRIORITY, DUPLICATE_KINDS, FixOptions, plan_fix, write_fix
    from auditor.results.decisions import load_decisions, now_utc
    from auditor.results.reading import load_results, recorded_decisions_file, with_decisions

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
    )
    root_text = (loaded.run.get("dataset") or {}).get("root")
    source = decisions if decisions is not None else recorded_decisions_file(loaded)
    decided = load_decisions(source) if source is not None else []
    # Waivers as the decisions file says now: what was accepted since the scan stays untouched too.
    loaded, _ = with_decisions(loaded, decided, now_utc().date())
    fix = plan_fix(loaded, decided, options, now_utc().date())
    log = write_fix(fix, out, Path(root_text) if root_text else None)
    console = _StdoutConsole()
    table = Table(title=f"audit fix: {len(fix.manifest)} of {len(loaded.images)} images kept", title_justify="left")
    for column in ("action", "because of", "images"):
        table.add_column(column)
    for action, kind, count in fix.summary():
        table.add_row(action, kind, str(count))
    if not fix.changes:
        table.add_row("none", "nothing to fix", "0")
    console.print(table)
    console.print(f"manifest: [bold]{escape(str(out))}[/]; changes and reasons: {escape(str(log))}", highlight=False,
                  soft_wrap=True)
    if root_text:
        console.print(f"[dim]next: audit scan {escape(str(root_text))} --manifest {escape(str(out))}[/]",
                      highlight=False, soft_wrap=True)


ExportTarget = Literal["label-studio", "fiftyone"]


@app.command("export", cls=_Command)
def export_command(
    results: Annotated[Path, typer.Argument(metavar="RESULTS", help="Results folder written by `audit scan`.")],
    to: Annotated[
        str, _choice("--to", allowed=ExportTarget, help="label-studio (tasks JSON) or fiftyone (a dataset).")
    ],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="label-studio: the tasks JSON file to write.")
    ] = None,
    image_prefix: Annotated[
        str, typer.Option("--image-prefix", help="label-studio: prepended to each path in data.image "
                          "(a URL, or /data/local-files/?d=...).")
    ] = "",
    name: Annotated[str, typer.Option("--name", help="fiftyone: the dataset name.")] = "auditor",
    dataset: Annotated[
        Path | None, typer.Option("--dataset", help="fiftyone: the dataset folder (default: from run.json).")
    ] = None,
) -> None:
    """Hand label_error and ambiguous findings to Label Studio, or every image with its findings to FiftyOne."""
    from auditor.actions.exports import fiftyone_records, label_studio_config, label_studio_tasks, to_fiftyone
    from auditor.results.outputs import atomic_write
    from auditor.results.reading import load_results, with_current_decisions

    # Findings accepted since the scan are not handed to annotators either.
    loaded = with_current_decisions(load_results(results))
    console = _StdoutConsole()
    if to == "fiftyone":
        root = dataset or Path(str((loaded.run.get("dataset") or {}).get("root") or ""))
        if not root.is_dir():
            raise AuditorError(f"dataset folder not found: {root}; pass --dataset")
        built = to_fiftyone(fiftyone_records(loaded, root), name)
        console.print(f"FiftyOne dataset [bold]{escape(name)}[/] with {len(built)} samples", highlight=False)
        return
    if out is None:
        raise AuditorError("--to label-studio needs --out tasks.json")
    tasks = label_studio_tasks(loaded, image_prefix)
    text = json.dumps(tasks, indent=2, ensure_ascii=False) + "\n"
    atomic_write(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    config_path = out.with_name(f"{out.stem}.label_config.xml")
    classes = [str(c) for c in (loaded.run.get("dataset") or {}).get("classes") or []]
    config = label_studio_config(classes)
    atomic_write(config_path, lambda tmp: tmp.write_text(config, encoding="utf-8"))
    console.print(f"{len(tasks)} Label Studio task(s) in [bold]{escape(str(out))}[/]; labelling config: "
                  f"{escape(str(config_path))}", highlight=False, soft_wrap=True)


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (CI cancel, ``kill``, container stop) unwinds like Ctrl-C: outputs and cache stay whole."""
    raise KeyboardInterrupt


def _crash_log(exc: BaseException) -> Path | None:
    """Write the traceback of an unexpected exception to a log file; None if even that fails."""
    try:
        fd, name = tempfile.mkstemp(prefix=f"auditor-error-{time.strftime('%Y%m%d-%H%M%S')}-", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as log:
            log.write(f"auditor {__version__}, python {sys.version.split()[0]}\nargv: {sys.argv!r}\n\n")
            log.write("".join(traceback.format_exception(exc)))
    except OSError:
        return None
    return Path(name)


def main() -> None:
    """Console-script entry: our errors exit 2, bugs 70, each with one line on stderr."""
    signal.signal(signal.SIGTERM, _terminate)
    if "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ:
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    try:
        # Not standalone: click's own errors come here, to be one line like ours (typer draws them in a box).
        code = app(prog_name="audit", standalone_mode=False)
    except _CLICK_ERROR as exc:
        context = getattr(exc, "ctx", None)
        usage = ""
        if context is not None:
            form = context.get_usage().removeprefix("Usage: ").strip()
            usage = f" (usage: {form}; {context.command_path} -h for help)"
        message = str(exc.format_message()) if hasattr(exc, "format_message") else str(exc)
        if message:  # empty when the help was the answer (``audit`` alone prints it)
            err_console.print(f"[bold red]error:[/] {escape(message + usage)}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_USAGE)
    except typer.Abort:  # standard input ended at a prompt
        err_console.print("[bold red]error:[/] input ended before an answer", highlight=False)
        sys.exit(EXIT_USAGE)
    except AuditorError as exc:
        from auditor.report.safe import visible  # on use: `audit --help` must not import pandas

        # Several lines only for a config with several bad fields, one per field; data shown escaped.
        message = "\n".join(visible(line) for line in str(exc).splitlines())
        err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_USAGE)
    except Exception as exc:  # noqa: BLE001 - the one place a bug is turned into a report, not a traceback
        from auditor.report.safe import one_line  # on use: `audit --help` must not import pandas

        log = _crash_log(exc)
        where = f"traceback in {log}" if log is not None else "no log could be written"
        err_console.print(
            f"[bold red]internal error[/] (a bug in auditor, please report it): "
            f"{escape(one_line(f'{type(exc).__name__}: {exc}'))}; {escape(where)}",
            highlight=False, soft_wrap=True,
        )
        sys.exit(EXIT_INTERNAL)
    # Not standalone, typer returns what a command's Exit carried (the gate's 1, an interrupt's 130), else None.
    sys.exit(code if isinstance(code, int) else EXIT_OK)
