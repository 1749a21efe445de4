"""The robustness benchmark's ground truth and scoring: a wrong planted.json or scorer would mislead every figure."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[2]


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shapes_collection_plants_what_planted_json_says(tmp_path: Path) -> None:
    collections = _module("collections")
    planted = collections.build_shapes(tmp_path / "shapes", per_class=15)
    root = tmp_path / "shapes"
    assert json.loads((root / "planted.json").read_text())["counts"] == planted["counts"]
    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix in {".png", ".jpg"}}
    assert planted["counts"]["images"] == len(files)
    for copy in planted["copies"]:
        original, duplicate = copy["original"], copy["copy"]
        assert {original, duplicate} <= files
        assert original.split("/")[1] == duplicate.split("/")[1]  # a copy keeps its class
        assert (original.split("/")[0] != duplicate.split("/")[0]) == copy["cross_split"]
        if copy["transform"] == "exact":
            assert (root / original).read_bytes() == (root / duplicate).read_bytes()
    for flip in planted["label_flips"]:
        assert flip["path"] in files and flip["path"].split("/")[1] == flip["given_label"] != flip["true_label"]
    touched = {c["original"] for c in planted["copies"]} | {c["copy"] for c in planted["copies"]}
    touched |= {f["path"] for f in planted["label_flips"]} | {b["path"] for b in planted["blends"]}
    assert set(planted["clean"]) == files - touched


def test_exif_rotated_copy_reads_back_as_the_original(tmp_path: Path) -> None:
    collections = _module("collections")
    source = tmp_path / "a.png"
    Image.linear_gradient("L").resize((64, 40)).convert("RGB").save(source)
    copy = collections.transformed_copy(source, tmp_path / "b", "exif_rotate")
    with Image.open(copy) as stored:
        assert stored.size == (40, 64)  # stored rotated...
        upright = ImageOps.exif_transpose(stored)
    with Image.open(source) as original:
        assert upright.size == original.size  # ...read back upright
        upright_grey = np.asarray(upright.convert("L"), dtype=np.int16)
        original_grey = np.asarray(original.convert("L"), dtype=np.int16)
    assert np.abs(upright_grey - original_grey).mean() < 3


def test_scoring_counts_group_pairs_flips_and_clean_false_alarms() -> None:
    robustness = _module("robustness")
    planted = {
        "copies": [{"original": "train/a/1.png", "copy": "test/a/c1.png", "transform": "jpeg", "cross_split": True},
                   {"original": "train/a/2.png", "copy": "train/a/c2.png", "transform": "crop", "cross_split": False}],
        "natural_copies": [], "blends": [{"path": "train/a/blend.png", "classes": ["a", "b"]}],
        "label_flips": [{"path": "train/b/flip.png", "true_label": "a", "given_label": "b"}],
        "clean": ["train/a/3.png", "train/b/4.png", "train/b/5.png", "test/b/6.png"],
    }
    rows = [
        ("split_leakage", "train/a/1.png", 0), ("split_leakage", "test/a/c1.png", 0),
        # A group of three: a planted copy pair plus a clean image; 3 pairs, one of them true.
        ("near_duplicate", "train/a/2.png", 1), ("near_duplicate", "train/a/c2.png", 1),
        ("near_duplicate", "train/a/3.png", 1),
        ("label_error", "train/b/flip.png", None), ("label_error", "train/b/4.png", None),
        ("ambiguous", "train/a/blend.png", None),
    ]
    findings = pd.DataFrame([{"check": c, "path": p, "group_id": g, "other_path": None, "severity": "warning",
                              "message": ""}
                             for c, p, g in rows])
    split_of = {p: p.split("/")[0] for p in ["train/a/1.png", "test/a/c1.png", "train/a/2.png", "train/a/c2.png",
                                             "train/a/3.png"]}
    label_of = dict.fromkeys(split_of, "a")
    scored = robustness.score(findings, planted, split_of, label_of)
    duplicates = scored["duplicates (pairs)"]
    assert (duplicates["flagged"], duplicates["precision"], duplicates["recall"]) == (4, 0.5, 1.0)
    assert duplicates["clean"] == 0.25
    assert scored["split_leakage (pairs)"]["precision"] == scored["split_leakage (pairs)"]["recall"] == 1.0
    labels = scored["label_error"]
    assert (labels["precision"], labels["recall"], labels["clean"]) == (0.5, 1.0, 0.25)
    assert scored["ambiguous"]["recall"] == 1.0
