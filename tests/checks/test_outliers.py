"""The outliers check: synthetic embeddings for the statistics, a real scan for blank and noise images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from auditor.checks.base import CheckContext
from auditor.checks.outliers import OutlierParams, OutliersCheck
from auditor.core.config import AuditConfig, EncoderConfig, ScanConfig
from auditor.scan import run_scan
from tests.conftest import synthetic_context, write_class_folder

SEED = 11


def make_context(vectors: np.ndarray, embedding_rows: list[int], labels: list[str | None]) -> CheckContext:
    return synthetic_context(vectors, labels, [f"img_{i:03d}.png" for i in range(len(labels))], embedding_rows)


def clusters(n_per: int = 40, dim: int = 32) -> np.ndarray:
    rng = np.random.default_rng(SEED)
    centres = np.eye(3, dim) * 4.0
    return np.vstack([centre + rng.normal(scale=0.5, size=(n_per, dim)) for centre in centres])


def test_flags_points_far_from_every_cluster_only() -> None:
    rng = np.random.default_rng(SEED)
    inliers = clusters()
    far = rng.normal(size=(2, 32)) * 4.0
    far[:, :3] = -4.0  # opposite every cluster centre
    vectors = np.vstack([inliers, far])
    ctx = make_context(vectors, list(range(len(vectors))), ["a"] * len(vectors))
    result = OutliersCheck(OutlierParams()).run(ctx)
    flagged = {f.path for f in result.findings}
    assert flagged == {f"img_{len(inliers):03d}.png", f"img_{len(inliers) + 1:03d}.png"}
    assert all(f.check == "outlier" and f.severity == "warning" for f in result.findings)
    assert result.findings[0].other_path is not None
    scores = result.columns["outlier_score"]
    assert scores.iloc[len(inliers):].min() > scores.iloc[: len(inliers)].max()
    assert result.summary.outliers == 2


def test_copies_of_an_outlier_do_not_vouch_for_each_other() -> None:
    """Three files with one content share one embedding row, so they are still far from everything."""
    inliers = clusters()
    far = -np.ones((1, 32)) * 4.0
    vectors = np.vstack([inliers, far])
    rows = [*range(len(inliers)), len(inliers), len(inliers), len(inliers)]
    ctx = make_context(vectors, rows, [None] * len(rows))
    result = OutliersCheck(OutlierParams()).run(ctx)
    expected = [f"img_{i:03d}.png" for i in range(len(inliers), len(rows))]
    assert sorted(f.path for f in result.findings) == expected


def test_unembedded_rows_and_tiny_datasets() -> None:
    inliers = clusters(n_per=4)
    ctx = make_context(inliers, [*range(len(inliers)), -1], ["a"] * (len(inliers) + 1))
    result = OutliersCheck(OutlierParams()).run(ctx)
    assert result.skipped is not None and "12" in result.skipped
    assert not result.findings


@pytest.mark.parametrize("kind", ["blank", "noise"], ids=["blank-frame", "static-noise"])
def test_scan_flags_planted_image(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "data"
    write_class_folder(root, per_class=15)
    planted = root / "circle" / f"{kind}.png"
    if kind == "blank":
        Image.new("RGB", (64, 64), (0, 0, 0)).save(planted)
    else:
        static = np.random.default_rng(SEED).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
        Image.fromarray(static).save(planted)
    config = AuditConfig(encoder=EncoderConfig(name="builtin"),
                         scan=ScanConfig(cache_dir=tmp_path / "cache", checks=["outliers"], workers=0))
    result = run_scan(root, config, tmp_path / "out")
    flagged = [f.path for f in result.findings if f.check == "outlier"]
    assert f"circle/{kind}.png" in flagged
    assert len(flagged) <= 2


def test_junk_filed_under_different_classes_does_not_shelter() -> None:
    """Five near-identical junk vectors spread over the classes: each is far from every class.

    Their nearest images overall are each other, so a search over all images would call them typical.
    """
    rng = np.random.default_rng(SEED)
    inliers = clusters()
    labels = [name for name in ("a", "b", "c") for _ in range(40)]
    junk = -np.ones((5, 32)) * 4.0 + rng.normal(scale=0.05, size=(5, 32))
    vectors = np.vstack([inliers, junk])
    ctx = make_context(vectors, list(range(len(vectors))), [*labels, "a", "b", "c", "a", "b"])
    result = OutliersCheck(OutlierParams()).run(ctx)
    assert sorted(f.path for f in result.findings) == [f"img_{i:03d}.png" for i in range(120, 125)]
    assert {f.details["closest_class"] for f in result.findings} <= {"a", "b", "c"}
    assert result.summary.per_class is True
