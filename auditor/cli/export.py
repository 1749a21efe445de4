"""``audit export``: findings to Label Studio tasks, or every image with its findings to a FiftyOne dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape

from auditor.cli.options import ResultsFolder, choice
from auditor.cli.terminal import err_console
from auditor.core.errors import AuditorError

if TYPE_CHECKING:
    from auditor.results.reading import Results

ExportTarget = Literal["label-studio", "fiftyone"]


def _dataset_root(loaded: Results, dataset: Path | None) -> Path:
    """The scanned dataset folder: --dataset, else the one run.json records."""
    root = dataset or Path(str((loaded.run.get("dataset") or {}).get("root") or ""))
    if not root.is_dir():
        raise AuditorError(f"dataset folder not found: {root}; pass --dataset")
    return root


def _image_prefix(loaded: Results, image_prefix: str, local_files: Path | None, dataset: Path | None) -> str:
    from auditor.actions.exports import local_files_prefix

    if local_files is None:
        return image_prefix
    if image_prefix:
        raise AuditorError("--local-files and --image-prefix both set data.image: pass one")
    if not local_files.is_dir():
        raise AuditorError(f"--local-files {local_files}: not a folder")
    return local_files_prefix(local_files, _dataset_root(loaded, dataset))


def _say_how_images_resolve(console: Console, tasks: list[dict[str, Any]], prefix: str,
                            local_files: Path | None) -> None:
    """An import whose images 404 looks like a broken tool: say where Label Studio will look, or that it cannot."""
    from auditor.report.safe import visible

    example = escape(visible(tasks[0]["data"]["image"])) if tasks else None
    example_part = f", e.g. {example}" if example else ""
    if local_files is not None:
        console.print(
            f"images: Label Studio's local files{example_part}; start it with "
            "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true and LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT="
            f"{escape(visible(local_files.resolve()))}, and add a Local files storage (Cloud Storage) whose path "
            "holds the dataset folder", highlight=False, soft_wrap=True)
    elif prefix:
        console.print(f"images: --image-prefix + the URL-encoded dataset-relative path{example_part}",
                      highlight=False, soft_wrap=True)
    else:
        err_console.print(
            "warning: data.image is the bare dataset-relative path, which Label Studio cannot load; pass "
            "--local-files ROOT (its local files serving, ROOT = LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT) or "
            "--image-prefix URL", highlight=False, soft_wrap=True)


def export_command(
    results: ResultsFolder,
    to: Annotated[
        str, choice("--to", allowed=ExportTarget, help="label-studio (tasks JSON) or fiftyone (a dataset).")
    ],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="label-studio: the tasks JSON file to write.")
    ] = None,
    image_prefix: Annotated[
        str, typer.Option("--image-prefix", help="label-studio: prepended to each URL-encoded path in data.image "
                          "(e.g. a bucket URL).")
    ] = "",
    local_files: Annotated[
        Path | None, typer.Option("--local-files", metavar="ROOT", help="label-studio: data.image in Label Studio's "
                                  "local-files form (/data/local-files/?d=), ROOT being its local files document "
                                  "root (a folder holding the dataset).")
    ] = None,
    name: Annotated[str, typer.Option("--name", help="fiftyone: the dataset name.")] = "auditor",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="fiftyone: replace an existing dataset of that name.")
    ] = False,
    dataset: Annotated[
        Path | None, typer.Option("--dataset", help="The dataset folder (default: from run.json); for fiftyone "
                                  "and --local-files.")
    ] = None,
) -> None:
    """Hand label_error and ambiguous findings to Label Studio, or every image with its findings to FiftyOne."""
    # Imported on use, as in every command: `audit --help` must not load pandas.
    from auditor.actions.exports import (
        fiftyone_info,
        fiftyone_records,
        label_studio_config,
        label_studio_tasks,
        to_fiftyone,
    )
    from auditor.report.safe import visible
    from auditor.results.destinations import refuse_destination
    from auditor.results.outputs import atomic_write
    from auditor.results.reading import load_results, with_current_decisions

    # Findings accepted since the scan are not handed to annotators either.
    loaded = with_current_decisions(load_results(results))
    console = Console()
    if to == "fiftyone":
        root = _dataset_root(loaded, dataset)
        built = to_fiftyone(fiftyone_records(loaded, root), fiftyone_info(loaded), name, overwrite)
        console.print(f"FiftyOne dataset [bold]{escape(visible(name))}[/] with {len(built)} samples", highlight=False)
        return
    if out is None:
        raise AuditorError("--to label-studio needs --out tasks.json")
    refuse_destination("--out", out, results)
    prefix = _image_prefix(loaded, image_prefix, local_files, dataset)
    tasks = label_studio_tasks(loaded, prefix)
    text = json.dumps(tasks, indent=2, ensure_ascii=False) + "\n"
    atomic_write(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    config_path = out.with_name(f"{out.stem}.label_config.xml")
    classes = [str(c) for c in (loaded.run.get("dataset") or {}).get("classes") or []]
    config = label_studio_config(classes)
    atomic_write(config_path, lambda tmp: tmp.write_text(config, encoding="utf-8"))
    console.print(f"{len(tasks)} Label Studio task(s) in [bold]{escape(visible(out))}[/]; labelling config: "
                  f"{escape(visible(config_path))}", highlight=False, soft_wrap=True)
    _say_how_images_resolve(console, tasks, prefix, local_files)
