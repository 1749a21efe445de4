"""Where a command may write: never inside the dataset, never over a file of a results set.

auditor promises never to write into a dataset (a training pipeline or a version-control tool would pick the
file up as data), and a report, verdict, manifest or decisions file written over ``findings.parquet`` or
``run.json`` would destroy the results it was made from. Every command that writes checks its destination
here, before any work is done, so all of them refuse the same paths with the same one-line message.
"""

from __future__ import annotations

import json
from pathlib import Path

from auditor.core.errors import OutputError
from auditor.results.findings import RESULT_SET_FILES, RUN_FILE


def is_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies under it, once links and ``..`` are resolved."""
    folder_real, path_real = Path(folder).resolve(), Path(path).resolve()
    return path_real == folder_real or folder_real in path_real.parents


def refuse_inside_dataset(option: str, path: Path, dataset: Path) -> None:
    """An ``OutputError`` (exit 2) naming ``option`` when ``path`` lies inside the dataset folder."""
    if is_inside(path, dataset):
        raise OutputError(f"{option} {path} is inside the dataset {dataset}; auditor never writes into a dataset")


def recorded_dataset(results: Path) -> Path | None:
    """The dataset folder run.json records, or None when it cannot tell (the readers then say what is wrong)."""
    try:
        run = json.loads((Path(results) / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    dataset = run.get("dataset") if isinstance(run, dict) else None
    root = dataset.get("root") if isinstance(dataset, dict) else None
    return Path(root) if isinstance(root, str) and root else None


def refuse_destination(option: str, path: Path, results: Path) -> None:
    """Refuse (exit 2, naming ``option``) an output ``path`` inside the dataset of ``results`` or over one of
    the files of the result set in ``results``."""
    dataset = recorded_dataset(results)
    if dataset is not None:
        refuse_inside_dataset(option, path, dataset)
    target = Path(path).resolve()
    folder = target.parent
    if target.name in RESULT_SET_FILES and (folder == Path(results).resolve() or (folder / RUN_FILE).is_file()):
        raise OutputError(f"{option} {path} would overwrite {target.name} of the results in {folder}; "
                          "give another file")
