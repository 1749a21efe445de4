"""A 2-D map of the scan's embedding for the HTML report: PCA with numpy, computed when the report is made.

Where a flagged image sits among the classes (a mislabelled image inside another class's cloud, a cluster
of outliers, two classes that overlap) is seen faster than read from scores. PCA needs nothing beyond numpy
and gives the same map every time; its axes are the two directions of largest variance, so the map is a
projection (near on the map may be far in the embedding), which the page says.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from auditor.results.findings import EMBEDDINGS_FILE

# Images drawn without a finding, at most (every flagged image is drawn): keeps the page small and quick.
MAX_PLAIN_POINTS = 3000
# Rows the axes are fitted on, at most: the covariance of a sample is as good for two axes, and bounded in time.
MAX_FIT_ROWS = 20_000
WIDTH, HEIGHT, MARGIN = 640, 440, 10
# Colours of the most common classes (Okabe-Ito, then Tableau); the rest, and unlabelled images, are grey.
CLASS_COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#bcbd22", "#8c564b",
                 "#7f7f7f", "#17becf")
OTHER_COLOUR = "#c4c8cf"
RUN_ID_METADATA = b"auditor_run_id"


@dataclass(frozen=True)
class Point:
    """One image on the map; ``target`` is the id of its finding's entry on the page (None: not flagged)."""

    x: float
    y: float
    path: str
    label: str
    colour: str
    target: str | None = None
    severity: str | None = None


@dataclass(frozen=True)
class EmbeddingMap:
    points: tuple[Point, ...]  # plain images first, so that flagged ones are drawn on top
    legend: tuple[tuple[str, str], ...]  # (class, colour)
    embedded: int  # images in the embedding, drawn or not
    explained: tuple[float, float]  # share of the variance along each axis
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def flagged(self) -> int:
        return sum(point.target is not None for point in self.points)

    @property
    def explained_share(self) -> str:
        """How much of the embedding's variance the map shows, as the page states it."""
        return f"{sum(self.explained):.0%}"


def read_embeddings(directory: Path, run_id: str | None) -> tuple[list[str], np.ndarray]:
    """Paths and vectors of a results folder's embedding; ``ValueError`` when it is missing, unreadable, or
    from another scan than the findings (a map of other vectors would place the findings wrongly)."""
    path = directory / EMBEDDINGS_FILE
    try:
        schema = pq.read_schema(path)
        written_by = (schema.metadata or {}).get(RUN_ID_METADATA, b"").decode("utf-8", "replace")
        if run_id is not None and written_by != run_id:
            raise ValueError(f"{EMBEDDINGS_FILE} is from another scan than the findings")
        table = pq.read_table(path, columns=["path", "embedding"])
    except (OSError, pa.ArrowException) as exc:
        raise ValueError(f"{EMBEDDINGS_FILE} cannot be read: {exc}") from None
    column = table.column("embedding").combine_chunks()
    if not pa.types.is_fixed_size_list(column.type):
        raise ValueError(f"{EMBEDDINGS_FILE} has no fixed-size embedding column")
    dim = column.type.list_size
    vectors = column.flatten().to_numpy(zero_copy_only=False).astype(np.float64).reshape(-1, dim)
    return [str(p) for p in table.column("path").to_pylist()], vectors


def project(vectors: np.ndarray, fit_rows: int = MAX_FIT_ROWS) -> tuple[np.ndarray, tuple[float, float]]:
    """The rows on the embedding's first two principal axes, and each axis's share of the variance.

    Each axis's sign is fixed (its largest component positive), so a report made twice draws the same map.
    """
    finite = np.where(np.isfinite(vectors), vectors, 0.0)
    fit = finite if len(finite) <= fit_rows else finite[np.random.default_rng(0).choice(len(finite), fit_rows,
                                                                                        replace=False)]
    mean = fit.mean(axis=0)
    covariance = np.cov(fit - mean, rowvar=False) if len(fit) > 1 else np.zeros((finite.shape[1],) * 2)
    values, vectors_ = np.linalg.eigh(np.atleast_2d(covariance))
    order = np.argsort(values)[::-1][:2]
    axes = vectors_[:, order]
    if axes.shape[1] < 2:  # a one-dimensional embedding: the second axis is flat
        axes = np.hstack([axes, np.zeros((axes.shape[0], 2 - axes.shape[1]))])
    axes *= np.where(axes[np.abs(axes).argmax(axis=0), range(2)] < 0, -1.0, 1.0)
    total = float(values.clip(min=0).sum())
    shares = [float(values[i].clip(min=0)) / total if total > 0 else 0.0 for i in order] + [0.0, 0.0]
    return (finite - mean) @ axes, (shares[0], shares[1])


def _scaled(coords: np.ndarray, width: int, height: int) -> np.ndarray:
    """Coordinates stretched to fill the drawing, each axis on its own (y upwards): the axes of a PCA carry no
    unit worth keeping, and a cloud squeezed into one corner shows less."""
    low, high = coords.min(axis=0), coords.max(axis=0)
    span = np.where(high - low > 1e-12, high - low, 1.0)
    unit = (coords - low) / span
    x = MARGIN + unit[:, 0] * (width - 2 * MARGIN)
    y = height - MARGIN - unit[:, 1] * (height - 2 * MARGIN)
    return np.round(np.column_stack([x, y]), 1)


def class_colours(labels: list[str]) -> dict[str, str]:
    """The most common classes get a colour each (ties by name); the rest share grey."""
    counts: dict[str, int] = {}
    for label in labels:
        if label:
            counts[label] = counts.get(label, 0) + 1
    ranked = sorted(counts, key=lambda name: (-counts[name], name))
    return {name: CLASS_COLOURS[n] for n, name in enumerate(ranked[: len(CLASS_COLOURS)])}


def embedding_map(
    paths: list[str],
    vectors: np.ndarray,
    labels: dict[str, str],
    flagged: dict[str, tuple[str, str]],
    max_plain: int = MAX_PLAIN_POINTS,
) -> EmbeddingMap | None:
    """The map of ``vectors`` (one row per path); None when fewer than two images were embedded.

    ``labels``: path -> given label; ``flagged``: path -> (the id of its entry on the page, its severity).
    Plain images beyond ``max_plain`` are left out at random (the same ones every time).
    """
    if len(paths) < 2:
        return None
    coords, explained = project(vectors)
    xy = _scaled(coords, WIDTH, HEIGHT)
    plain = [i for i, path in enumerate(paths) if path not in flagged]
    if len(plain) > max_plain:
        plain = sorted(np.random.default_rng(0).choice(plain, max_plain, replace=False).tolist())
    marked = [i for i, path in enumerate(paths) if path in flagged]
    colours = class_colours([labels.get(path, "") for path in paths])

    def point(i: int) -> Point:
        path = paths[i]
        label = labels.get(path, "")
        target, severity = flagged.get(path, (None, None))
        return Point(float(xy[i, 0]), float(xy[i, 1]), path, label, colours.get(label, OTHER_COLOUR), target,
                     severity)

    legend = tuple(colours.items())
    if any(labels.get(path, "") not in colours for path in paths):
        legend += (("other classes or unlabelled", OTHER_COLOUR),)
    return EmbeddingMap(tuple(point(i) for i in plain + marked), legend, len(paths), explained)

