"""``audit scan``: embed a dataset's images, run the checks, write the results (and gate them with --gate)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console

from auditor.cli.exit_codes import EXIT_GATE_FAILED
from auditor.cli.gate import apply_gate
from auditor.cli.terminal import Interrupted, err_console, interruptible
from auditor.core.errors import AuditorError


def config_overrides(**options: Any) -> dict[str, Any]:
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


def scan_command(
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
    overrides = config_overrides(
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
    with interruptible("the scan had not started; nothing was written"):
        # Imported on use in every command: `audit --help` must not load pandas, torch or the checks.
        from auditor.checks import PARAMS
        from auditor.cli.console import RichObserver, print_summary, print_warning
        from auditor.core.config import load_config
        from auditor.scan import run_scan

        cfg = load_config(config, overrides, check_params=PARAMS)
    console = Console()
    observer = RichObserver(console, enabled=not quiet and console.is_terminal)
    try:
        result = run_scan(dataset, cfg, out, manifest=manifest, observer=observer, pred_probs=pred_probs)
    except KeyboardInterrupt:
        from auditor.report.safe import visible  # on use: auditor.report imports pandas

        observer.done()
        raise Interrupted(f"results in {visible(out)} were left as they were; finished embedding batches are "
                          "cached, so the next scan resumes from there") from None
    if quiet:
        # --quiet drops progress and the summary, never a warning: a CI log must still say a weak encoder ran.
        # Each once: the observer told the weightiest ones on stderr already, as soon as they were known.
        from auditor.core.library_warnings import PREFIX

        for warning in result.warnings:
            # Library noise (cleanlab's per-class warnings) stays in run.json and the reports, not the CI log.
            if not warning.startswith(PREFIX) and warning not in observer.warned:
                print_warning(err_console, warning)
    else:
        print_summary(console, result)
    if gate and not apply_gate(out, cfg.gate, baseline, "text", None, console):
        raise typer.Exit(EXIT_GATE_FAILED)

