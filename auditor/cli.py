"""Command-line entry point. Thin: parse options, call the core, render, map errors to exit codes."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from auditor import __version__
from auditor.errors import AuditorError

EXIT_OK, EXIT_GATE_FAILED, EXIT_USAGE = 0, 1, 2

app = typer.Typer(
    name="audit",
    help="Audit labelled image datasets: label errors, duplicates and leakage, ambiguity, imbalance.",
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
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
    dataset: Annotated[Path, typer.Argument(help="Dataset folder: DATASET/<class>/* or DATASET/<split>/<class>/*.")],
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
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or summary.")] = False,
) -> None:
    """Scan DATASET: embed every image, run the checks, write Parquet findings and run.json."""
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
    cfg = load_config(config, overrides)
    observer = RichObserver(console, enabled=not quiet and console.is_terminal)
    result = run_scan(dataset, cfg, out, manifest=manifest, observer=observer)
    if not quiet:
        print_summary(console, result)


def main() -> None:
    """Console-script entry: map our errors to exit code 2 with one readable message."""
    if "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ:
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    try:
        app()
    except AuditorError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_USAGE)
