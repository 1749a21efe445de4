"""Command-line entry point. Thin: parse options, call the core, render, map errors to exit codes."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape

from auditor import __version__
from auditor.errors import AuditorError

if TYPE_CHECKING:
    from auditor.config import GateConfig

EXIT_OK, EXIT_GATE_FAILED, EXIT_USAGE = 0, 1, 2
# 128 + SIGINT, what shells report for a command stopped by Ctrl-C.
EXIT_INTERRUPTED = 130
# A bug in auditor (sysexits' EX_SOFTWARE): never 1, which a CI job reads as "the gate failed".
EXIT_INTERNAL = 70

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


def _overrides(**options: Any) -> dict[str, Any]:
    """CLI options that were given, as a nested config dict (None means 'not given')."""
    mapping = {
        "encoder": ("encoder", "name"),
        "device": ("encoder", "device"),
        "batch_size": ("encoder", "batch_size"),
        "workers": ("encoder", "workers"),
        "embeddings": ("encoder", "precomputed_file"),
        "cache_dir": ("scan", "cache_dir"),
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
    return result


@app.command()
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
        str | None, typer.Option("--encoder", help="auto | clip | builtin | precomputed.")
    ] = None,
    embeddings: Annotated[
        Path | None, typer.Option("--embeddings", help="Precomputed embeddings (.parquet or .npz) keyed by path.")
    ] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto | cpu | cuda.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Images per encoder batch.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Decoding worker processes (0: none).")] = None,
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Embedding cache folder.")] = None,
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
) -> None:
    """Scan DATASET: embed every image, run the checks, write Parquet findings and run.json."""
    # Imported on use in every command: `audit --help` must not load pandas, torch or the checks.
    from auditor.checks import PARAMS
    from auditor.config import load_config
    from auditor.console import RichObserver, print_summary
    from auditor.scan import run_scan

    overrides = _overrides(
        encoder=encoder, device=device, batch_size=batch_size, workers=workers,
        embeddings=embeddings, cache_dir=cache_dir,
    )
    if no_cache:
        overrides.setdefault("scan", {})["use_cache"] = False
    if checks is not None:
        overrides.setdefault("scan", {})["checks"] = [c.strip() for c in checks.split(",") if c.strip()]
    console = Console(stderr=False)
    if baseline is not None and not gate:
        raise AuditorError("--baseline only applies with --gate")
    cfg = load_config(config, overrides, check_params=PARAMS)
    observer = RichObserver(console, enabled=not quiet and console.is_terminal)
    try:
        result = run_scan(dataset, cfg, out, manifest=manifest, observer=observer)
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
        from auditor.library_warnings import PREFIX
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
    results: Path, rules: GateConfig, baseline: Path | None, fmt: str, output: Path | None, console: Console
) -> bool:
    """Evaluate the gate; ``fmt`` goes to ``output`` (the console then gets text) or stdout. True: passed."""
    # Imported on use, as in every command (see scan_command).
    from auditor.gate import evaluate
    from auditor.outputs import atomic_write
    from auditor.report.gate_render import GateFormat, print_verdict, render
    from auditor.results import load_results

    verdict = evaluate(load_results(results), rules, load_results(baseline) if baseline is not None else None)
    if output is not None:
        text = render(verdict, GateFormat(fmt))
        atomic_write(output, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    if output is None and GateFormat(fmt) is not GateFormat.TEXT:
        typer.echo(render(verdict, GateFormat(fmt)), nl=False)
    else:
        print_verdict(console, verdict)
    return verdict.passed


@app.command("gate")
def gate_command(
    results: Annotated[Path, typer.Argument(metavar="RESULTS", help="Results folder written by `audit scan`.")],
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="TOML config with a \\[gate] section.")
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option("--baseline", help="Results folder of the base branch: only findings it lacks count."),
    ] = None,
    fmt: Annotated[
        GateFormatName, typer.Option("--format", "-f", help="Output format.")
    ] = "text",
    output: Annotated[
        Path | None,
        typer.Option("--output", help="Write the verdict in --format here; the terminal then gets text."),
    ] = None,
) -> None:
    """Pass/fail RESULTS against the \\[gate] rules: exit 0 pass, 1 fail, 2 bad input or config."""
    from auditor.checks import PARAMS  # imported on use, as in every command (see scan_command)
    from auditor.config import load_config

    rules = load_config(config, check_params=PARAMS).gate
    console = Console(stderr=False)
    # Off a terminal (CI logs), lines are not hard-wrapped at 80 columns in the middle of a message.
    console.soft_wrap = not console.is_terminal
    if not _apply_gate(results, rules, baseline, fmt, output, console):
        raise typer.Exit(EXIT_GATE_FAILED)


# The values of auditor.report.ReportFormat, spelled out so that `audit --help` does not import pandas.
ReportFormatName = Literal["terminal", "markdown", "html"]


@app.command("report")
def report_command(
    results: Annotated[Path, typer.Argument(metavar="RESULTS", help="Results folder written by `audit scan`.")],
    fmt: Annotated[ReportFormatName, typer.Option("--format", "-f", help="Output format.")] = "terminal",
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
    console = Console(stderr=False)
    color = output is None and report_format is ReportFormat.TERMINAL and console.is_terminal
    options = ReportOptions(tuple(check or ()), top, dataset, color, console.width if color else 120)
    text = render_results(results, report_format, options)
    if output is None:
        typer.echo(text, nl=False)
        return
    write_report(output, text)
    from auditor.report.safe import visible  # on use: see report_command's imports

    console.print(f"report written to [bold]{escape(visible(output))}[/]", highlight=False)


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
        app()
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
