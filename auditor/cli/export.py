"""``audit export``: findings to Label Studio tasks, or every image with its findings to a FiftyOne dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape

from auditor.cli.options import ResultsFolder, choice
from auditor.core.errors import AuditorError

ExportTarget = Literal["label-studio", "fiftyone"]


def export_command(
    results: ResultsFolder,
    to: Annotated[
        str, choice("--to", allowed=ExportTarget, help="label-studio (tasks JSON) or fiftyone (a dataset).")
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
    # Imported on use, as in every command: `audit --help` must not load pandas.
    from auditor.actions.exports import fiftyone_records, label_studio_config, label_studio_tasks, to_fiftyone
    from auditor.report.safe import visible
    from auditor.results.destinations import refuse_destination
    from auditor.results.outputs import atomic_write
    from auditor.results.reading import load_results, with_current_decisions

    # Findings accepted since the scan are not handed to annotators either.
    loaded = with_current_decisions(load_results(results))
    console = Console()
    if to == "fiftyone":
        root = dataset or Path(str((loaded.run.get("dataset") or {}).get("root") or ""))
        if not root.is_dir():
            raise AuditorError(f"dataset folder not found: {root}; pass --dataset")
        built = to_fiftyone(fiftyone_records(loaded, root), name)
        console.print(f"FiftyOne dataset [bold]{escape(visible(name))}[/] with {len(built)} samples", highlight=False)
        return
    if out is None:
        raise AuditorError("--to label-studio needs --out tasks.json")
    refuse_destination("--out", out, results)
    tasks = label_studio_tasks(loaded, image_prefix)
    text = json.dumps(tasks, indent=2, ensure_ascii=False) + "\n"
    atomic_write(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    config_path = out.with_name(f"{out.stem}.label_config.xml")
    classes = [str(c) for c in (loaded.run.get("dataset") or {}).get("classes") or []]
    config = label_studio_config(classes)
    atomic_write(config_path, lambda tmp: tmp.write_text(config, encoding="utf-8"))
    console.print(f"{len(tasks)} Label Studio task(s) in [bold]{escape(visible(out))}[/]; labelling config: "
                  f"{escape(visible(config_path))}", highlight=False, soft_wrap=True)
