"""The embedding map: PCA of the scan's vectors, sampled and linked to the findings' entries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from auditor.report.embedding_map import (
    CLASS_COLOURS,
    HEIGHT,
    MARGIN,
    OTHER_COLOUR,
    WIDTH,
    embedding_map,
    project,
    read_embeddings,
)


def _clusters(per: int = 50, dim: int = 16, seed: int = 0) -> np.ndarray:
    """Two clouds far apart along one direction, with small noise in every other."""
    rng = np.random.default_rng(seed)
    offset = np.zeros(dim)
    offset[3] = 10.0
    return np.vstack([rng.normal(size=(per, dim)) * 0.3, rng.normal(size=(per, dim)) * 0.3 + offset])


def test_the_first_axis_separates_what_differs_most_and_the_map_is_the_same_every_time() -> None:
    vectors = _clusters()
    coords, explained = project(vectors)
    first, second = coords[:50, 0], coords[50:, 0]
    assert first.max() < second.min() or second.max() < first.min()  # each cloud on its own side
    assert explained[0] > 0.8 and 0 < explained[1] < explained[0]
    mirrored, _ = project(-vectors)  # the axes are fixed by the cloud's shape, so a mirrored cloud maps mirrored
    assert np.allclose(mirrored, -coords)
    assert np.array_equal(project(vectors)[0], coords)


def test_flagged_images_are_always_drawn_last_and_link_to_their_entries() -> None:
    vectors = _clusters()
    paths = [f"img/{i}.png" for i in range(100)]
    labels = {path: ("a" if i < 50 else "b") for i, path in enumerate(paths)}
    flagged = {"img/7.png": ("entry-1", "error"), "img/70.png": ("entry-2", "info")}
    chart = embedding_map(paths, vectors, labels, flagged, max_plain=10)
    assert chart is not None and chart.embedded == 100 and len(chart.points) == 12 and chart.flagged == 2
    assert [(p.path, p.target, p.severity) for p in chart.points[-2:]] == [
        ("img/7.png", "entry-1", "error"), ("img/70.png", "entry-2", "info")]
    assert all(MARGIN <= p.x <= WIDTH - MARGIN and MARGIN <= p.y <= HEIGHT - MARGIN for p in chart.points)
    assert chart.legend == (("a", CLASS_COLOURS[0]), ("b", CLASS_COLOURS[1]))
    assert embedding_map(paths, vectors, labels, flagged, max_plain=10) == chart  # the same sample every time
    assert embedding_map(paths[:1], vectors[:1], labels, {}) is None


def test_classes_beyond_the_palette_and_unlabelled_images_share_grey() -> None:
    count = len(CLASS_COLOURS) + 2
    paths = [f"{i}.png" for i in range(count + 1)]
    labels = {path: f"class{i:02d}" for i, path in enumerate(paths[:-1])}
    chart = embedding_map(paths, np.random.default_rng(1).normal(size=(len(paths), 4)), labels, {})
    assert chart is not None
    assert sum(p.colour == OTHER_COLOUR for p in chart.points) == 3
    assert chart.legend[-1] == ("other classes or unlabelled", OTHER_COLOUR)


def _write(path: Path, run_id: str, rows: int = 3, dim: int = 4) -> None:
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(np.arange(rows * dim, dtype=np.float32)), dim)
    table = pa.table({"path": [f"{i}.png" for i in range(rows)], "embedding": vectors})
    pq.write_table(table.replace_schema_metadata({"auditor_run_id": run_id}), path)


def test_read_embeddings_takes_only_the_findings_own_scan(tmp_path: Path) -> None:
    _write(tmp_path / "embeddings.parquet", "run1")
    paths, vectors = read_embeddings(tmp_path, "run1")
    assert paths == ["0.png", "1.png", "2.png"] and vectors.shape == (3, 4) and vectors[2, 3] == 11
    with pytest.raises(ValueError, match="another scan"):
        read_embeddings(tmp_path, "run2")
    with pytest.raises(ValueError, match="cannot be read"):
        read_embeddings(tmp_path / "missing", "run1")
