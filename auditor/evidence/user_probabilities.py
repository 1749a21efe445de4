"""Out-of-sample class probabilities from the user's own model (``--pred-probs FILE``).

A team's production classifier, cross-validated on its own data, is usually far better evidence than a
regression on our embeddings; label_errors, class_overlap and ambiguous then read it instead. Its rows
must be out of sample (predicted by a model that did not train on that image), or every training image
looks correctly labelled: we cannot check that, the README says so.

Accepted Parquet layouts: ``path`` plus one float column per class (the column name is the class), or
``path`` plus one list column with the class order in the schema metadata entry ``classes`` (a JSON list).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from auditor.core.errors import DatasetError

# Largest |row sum - 1| accepted: float32 rounding and printed probabilities sum to 1 only roughly.
SUM_TOLERANCE = 0.01


@dataclass(frozen=True)
class UserProbabilities:
    """Validated probabilities, columns in ``classes`` order (the dataset's sorted labelled classes)."""

    source: Path
    sha256: str
    classes: list[str]
    matrix: np.ndarray
    row_of: dict[str, int]

    def rows_for(self, paths: list[str], classes: list[str]) -> np.ndarray:
        """Rows of ``paths``, columns ``classes`` (renormalised: a class with no embedded image drops out)."""
        columns = [self.classes.index(name) for name in classes]
        rows = self.matrix[np.ix_([self.row_of[p] for p in paths], columns)]
        return np.asarray(rows / rows.sum(axis=1, keepdims=True), dtype=np.float64)

    def record(self, dataset_paths: list[str]) -> dict[str, Any]:
        """What run.json says about them: which file, and how it matched the dataset."""
        wanted = set(dataset_paths)
        matched = sum(1 for p in wanted if p in self.row_of)
        return {
            "source": "user",
            "file": str(self.source),
            "sha256": self.sha256,
            "rows": len(self.row_of),
            "matched_images": matched,
            "images_without_row": len(wanted) - matched,
            "rows_not_in_dataset": sum(1 for p in self.row_of if p not in wanted),
        }


def _fail(source: Path, message: str) -> DatasetError:
    return DatasetError(f"--pred-probs {source}: {message}")


def _read(source: Path) -> tuple[list[str], list[str], np.ndarray]:
    if not source.is_file():
        raise _fail(source, "file not found")
    try:
        table = pq.read_table(source)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for non-Parquet input
        raise _fail(source, f"not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    if "path" not in table.column_names:
        raise _fail(source, f"needs a 'path' column (found: {', '.join(table.column_names)})")
    paths = [str(p).replace("\\", "/") for p in table.column("path").to_pylist()]
    others = [name for name in table.column_names if name != "path"]
    list_columns = [name for name in others if pa.types.is_list(table.schema.field(name).type)
                    or pa.types.is_fixed_size_list(table.schema.field(name).type)
                    or pa.types.is_large_list(table.schema.field(name).type)]
    if list_columns:
        if len(others) != 1:
            raise _fail(source, "a list column of probabilities must be the only column besides 'path'")
        metadata = table.schema.metadata or {}
        raw = metadata.get(b"classes")
        if raw is None:
            raise _fail(source, f"list column {others[0]!r} needs a schema metadata entry 'classes' "
                                "(a JSON list naming the classes in column order)")
        try:
            classes = [str(c) for c in json.loads(raw)]
        except (ValueError, TypeError):
            raise _fail(source, "schema metadata 'classes' is not a JSON list of class names") from None
        values = table.column(others[0]).to_pylist()
        if any(v is None or len(v) != len(classes) for v in values):
            raise _fail(source, f"every {others[0]!r} entry must hold {len(classes)} probabilities "
                                "(one per entry of 'classes')")
        matrix = np.asarray(values, dtype=np.float64).reshape(len(values), len(classes))
    else:
        numeric = [name for name in others if pa.types.is_floating(table.schema.field(name).type)
                   or pa.types.is_integer(table.schema.field(name).type)]
        if not numeric or len(numeric) != len(others):
            bad = sorted(set(others) - set(numeric))
            raise _fail(source, "expected one float column per class" + (f"; not numeric: {', '.join(bad)}"
                                                                          if bad else ""))
        classes = list(others)
        matrix = np.column_stack([np.asarray(table.column(c).to_numpy(zero_copy_only=False), dtype=np.float64)
                                  for c in classes]) if len(table) else np.zeros((0, len(classes)))
    return paths, classes, matrix


def load_user_probabilities(source: Path, dataset_classes: list[str], dataset_paths: list[str]) -> UserProbabilities:
    """Read and validate ``source`` against the dataset; any problem is one clear error (exit 2)."""
    source = Path(source)
    paths, classes, matrix = _read(source)
    if len(set(classes)) != len(classes):
        raise _fail(source, "a class is named twice")
    missing = sorted(set(dataset_classes) - set(classes))
    extra = sorted(set(classes) - set(dataset_classes))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"no column for dataset class(es) {', '.join(map(repr, missing))}")
        if extra:
            parts.append(f"class(es) not in the dataset: {', '.join(map(repr, extra))}")
        raise _fail(source, "classes must match the dataset's: " + "; ".join(parts))
    if len(set(paths)) != len(paths):
        repeated = next(p for p in paths if paths.count(p) > 1)
        raise _fail(source, f"path {repeated!r} appears more than once")
    if not np.isfinite(matrix).all():
        raise _fail(source, "probabilities contain NaN or infinite values")
    if (matrix < 0).any():
        raise _fail(source, "probabilities must not be negative")
    sums = matrix.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > SUM_TOLERANCE)
    if len(off):
        raise _fail(source, f"{len(off)} row(s) do not sum to 1 (e.g. {paths[off[0]]!r}: {sums[off[0]]:.4f}); "
                            "give probabilities (softmax outputs), not logits")
    wanted = set(dataset_paths)
    if wanted and not any(p in wanted for p in paths):
        raise _fail(source, f"none of its {len(paths)} paths is an image of the dataset; paths must be relative "
                            f"to the dataset root as auditor writes them (e.g. {sorted(wanted)[0]!r})")
    order = [classes.index(name) for name in dataset_classes]
    # Renormalise the tolerated rounding, and keep the exact zeros cleanlab's logs cannot take away.
    ordered = matrix[:, order]
    ordered = np.clip(ordered / ordered.sum(axis=1, keepdims=True), 1e-12, None)
    ordered = ordered / ordered.sum(axis=1, keepdims=True)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    return UserProbabilities(source, digest, list(dataset_classes), ordered, {p: i for i, p in enumerate(paths)})
