"""The check stage on its own (``pipeline.run_checks``): every registered check runs on a context built from
in-memory vectors and image facts, as benchmarks/scale.py uses it at a million images."""

from __future__ import annotations

import numpy as np
import pandas as pd

from auditor.checks import REGISTRY, CheckContext
from auditor.core.config import AuditConfig, load_config
from auditor.embed.encoders.base import EncoderInfo
from auditor.ingest.properties import PROPERTY_COLUMNS
from auditor.results.findings import IMAGES_BASE_SCHEMA
from auditor.results.summaries import Skipped
from auditor.scan.pipeline import run_checks


def _context(config: AuditConfig) -> tuple[CheckContext, str, list[str]]:
    """Three well-separated classes of 40; one image of class a carries a class-b vector (a label error) and
    two images share one pixel content (an exact copy). Returns the context, the mislabelled path and the
    copies' paths."""
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(3, 32)) * 3.0
    labels = [name for name in ("a", "b", "c") for _ in range(40)]
    vectors = np.stack([centres["abc".index(label)] + rng.normal(size=32) for label in labels])
    vectors[5] = centres[1] + rng.normal(size=32)
    count = len(labels)
    paths = [f"{label}/{i:04d}.png" for i, label in enumerate(labels)]
    pixels = [f"px{i}" for i in range(count)]
    pixels[60] = pixels[61]
    vectors[60] = vectors[61]
    hashes = [f"{value:016x}" for value in rng.integers(0, 2**63, size=6 * count)]
    images = pd.DataFrame({
        "path": paths, "label": labels, "split": [None] * count, "sha256": pixels, "size_bytes": 1000,
        "width": 64, "height": 64, "format": "PNG", "mode": "RGB", "readable": True, "unreadable_reason": None,
        "pixel_sha256": pixels, "phash": hashes[:count], "dhash": hashes[count:2 * count],
        "levelled_hash": [a + b for a, b in zip(hashes[2 * count:3 * count], hashes[3 * count:4 * count],
                                                strict=True)],
        "mirror_hash": [a + b for a, b in zip(hashes[4 * count:5 * count], hashes[5 * count:], strict=True)],
        **{name: rng.uniform(0.3, 0.7, size=count) for name in PROPERTY_COLUMNS},
        "embedding_row": np.arange(count),
    })
    assert set(IMAGES_BASE_SCHEMA.names) <= set(images.columns)
    context = CheckContext(
        images=images, embeddings=vectors.astype(np.float32), classes=["a", "b", "c"], splits=[],
        empty_classes={}, encoder=EncoderInfo("precomputed", "precomputed", "test", 32, False), config=config,
    )
    return context, paths[5], [paths[60], paths[61]]


def test_every_check_runs_on_in_memory_vectors_and_finds_the_planted_problems() -> None:
    context, mislabelled, copies = _context(AuditConfig())
    stage = run_checks(context)
    assert set(stage.timings) == set(REGISTRY)
    assert all(seconds >= 0 for seconds in stage.timings.values())
    assert not any(isinstance(summary, Skipped) for summary in stage.summaries.values())
    label_errors = {f.path for f in stage.findings if f.check == "label_error"}
    assert mislabelled in label_errors
    assert {f.path for f in stage.findings if f.check == "exact_duplicate"} == set(copies)
    assert "label_quality" in stage.columns


def test_the_configured_check_list_is_what_runs() -> None:
    context, mislabelled, _ = _context(load_config(overrides={"scan": {"checks": ["label_errors"]}}))
    stage = run_checks(context)
    assert list(stage.timings) == ["label_errors"]
    assert {f.check for f in stage.findings} == {"label_error"}
    assert mislabelled in {f.path for f in stage.findings}


def test_settings_under_their_old_keys_warn_in_the_check_stage() -> None:
    context, mislabelled, _ = _context(load_config(overrides={"scan": {"checks": ["label_errors"]},
                                                              "checks": {"label_errors": {"unclaimed_images": True}}}))
    stage = run_checks(context)
    assert [w for w in stage.warnings if "deprecated" in w] == [
        "config key [checks.label_errors] unclaimed_images is deprecated and will be removed in the next release; "
        "set [evidence.label_issues] unclaimed_images instead"]
    assert mislabelled in {f.path for f in stage.findings}
