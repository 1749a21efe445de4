from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from auditor.core.errors import DatasetError
from auditor.ingest.dataset import discover
from tests.conftest import draw_shape


def _img(path: Path, shape: str = "circle", seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    draw_shape(shape, seed).save(path, format="PNG" if path.suffix.lower() == ".png" else "JPEG")


def test_class_layout_labels_and_posix_relative_paths(tmp_path: Path) -> None:
    _img(tmp_path / "cat" / "a.png")
    _img(tmp_path / "cat" / "nested" / "b.JPG")
    _img(tmp_path / "dog" / "c.jpeg")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    _img(tmp_path / "dog" / ".hidden.png")
    _img(tmp_path / ".cache" / "x.png")
    found = discover(tmp_path)
    assert found.layout == "class"
    assert found.splits == []
    assert found.classes == ["cat", "dog"]
    assert sorted((r.path, r.label, r.split) for r in found.records) == [
        ("cat/a.png", "cat", None),
        ("cat/nested/b.JPG", "cat", None),
        ("dog/c.jpeg", "dog", None),
    ]


def test_split_layout_never_takes_split_names_as_classes(tmp_path: Path) -> None:
    for split in ("train", "Validation", "test"):
        _img(tmp_path / split / "cat" / "a.png")
        _img(tmp_path / split / "dog" / "b.webp")
    (tmp_path / "train" / "bird").mkdir()
    found = discover(tmp_path)
    assert found.layout == "split/class"
    assert sorted(found.splits) == ["test", "train", "validation"]  # split names are case-insensitive
    assert found.classes == ["bird", "cat", "dog"]
    assert found.empty_classes == {"train": ["bird"]}
    assert {(r.split, r.label) for r in found.records} >= {("train", "cat"), ("validation", "dog")}


def test_split_folders_differing_only_in_case_are_one_split(tmp_path: Path) -> None:
    _img(tmp_path / "train" / "cat" / "a.png")
    _img(tmp_path / "TRAIN" / "cat" / "b.png", seed=1)
    _img(tmp_path / "Test" / "cat" / "c.png", seed=2)
    found = discover(tmp_path)
    assert found.splits == ["test", "train"]
    assert {r.path: r.split for r in found.records} == {"TRAIN/cat/b.png": "train", "train/cat/a.png": "train",
                                                       "Test/cat/c.png": "test"}


def test_mixed_split_and_class_folders_is_a_clear_error(tmp_path: Path) -> None:
    _img(tmp_path / "train" / "cat" / "a.png")
    _img(tmp_path / "dog" / "b.png")
    with pytest.raises(DatasetError, match="mixes split folders"):
        discover(tmp_path)


def test_empty_dataset_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "cat").mkdir()
    with pytest.raises(DatasetError, match="no images found"):
        discover(tmp_path)


def test_missing_dataset_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        discover(tmp_path / "nope")


def test_loose_images_are_noted_not_labelled(tmp_path: Path) -> None:
    _img(tmp_path / "loose.png")
    _img(tmp_path / "cat" / "a.png")
    found = discover(tmp_path)
    assert [r.path for r in found.records] == ["cat/a.png"]
    assert any("no class folder" in note for note in found.notes)


def test_symlink_loop_and_outside_link(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _img(root / "cat" / "a.png")
    (root / "cat" / "loop").symlink_to(root / "cat", target_is_directory=True)
    outside = tmp_path / "outside.png"
    _img(outside)
    (root / "cat" / "escape.png").symlink_to(outside)
    (root / "cat" / "inside.png").symlink_to(root / "cat" / "a.png")
    found = discover(root)
    by_path = {r.path: r for r in found.records}
    assert by_path["cat/escape.png"].problem == "symlink points outside the dataset; not followed"
    assert by_path["cat/inside.png"].problem is None
    assert not any(p.startswith("cat/loop/loop") for p in by_path)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"], ids=["csv", "parquet"])
def test_manifest_labels_and_splits(tmp_path: Path, suffix: str) -> None:
    root = tmp_path / "data"
    _img(root / "imgs" / "1.png")
    _img(root / "imgs" / "2.png")
    frame = pd.DataFrame({"path": ["imgs/1.png", "imgs/2.png", "imgs/3.png"], "label": ["a", "b", "b"],
                          "split": ["train", "test", "test"]})
    manifest = tmp_path / f"m{suffix}"
    frame.to_csv(manifest, index=False) if suffix == ".csv" else frame.to_parquet(manifest)
    found = discover(root, manifest)
    assert found.layout == "manifest"
    assert found.classes == ["a", "b"]
    assert found.splits == ["test", "train"]
    problems = {r.path: r.problem for r in found.records}
    assert problems == {"imgs/1.png": None, "imgs/2.png": None,
                        "imgs/3.png": "file listed in the manifest does not exist"}


@pytest.mark.parametrize(
    "bad", ["../outside.png", "/etc/passwd", "a/../../x.png"], ids=["dotdot", "absolute", "nested"]
)
def test_manifest_paths_escaping_the_dataset_are_rejected(tmp_path: Path, bad: str) -> None:
    root = tmp_path / "data"
    _img(root / "a.png")
    manifest = tmp_path / "m.csv"
    pd.DataFrame({"path": ["a.png", bad], "label": ["x", "y"]}).to_csv(manifest, index=False)
    with pytest.raises(DatasetError, match="escapes the dataset"):
        discover(root, manifest)


def test_manifest_missing_columns(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("file,class\na.png,x\n")
    with pytest.raises(DatasetError, match="lacks column"):
        discover(tmp_path, manifest)


def test_manifest_nulls_mean_unlabelled_and_no_split(tmp_path: Path) -> None:
    """Parquet nulls once became a class and a split literally named "nan" / "None"."""
    root = tmp_path / "data"
    for name in ("1.png", "2.png", "3.png"):
        _img(root / name)
    frame = pd.DataFrame({"path": ["1.png", "2.png", "3.png"], "label": ["a", None, "b"],
                          "split": ["train", "train", None]})
    manifest = tmp_path / "m.parquet"
    frame.to_parquet(manifest)
    found = discover(root, manifest)
    assert found.classes == ["a", "b"] and found.splits == ["train"]
    by_path = {r.path: (r.label, r.split) for r in found.records}
    assert by_path == {"1.png": ("a", "train"), "2.png": (None, "train"), "3.png": ("b", None)}
    csv = tmp_path / "m.csv"
    csv.write_text("path,label,split\n1.png,a,train\n2.png,,train\n3.png,b,\n")
    assert {r.path: (r.label, r.split) for r in discover(root, csv).records} == by_path


@pytest.mark.parametrize("missing", ["nan", "NaN", "NULL", "null", "None", " none "])
def test_written_out_nulls_in_a_csv_manifest_mean_unlabelled(tmp_path: Path, missing: str) -> None:
    root = tmp_path / "data"
    for name in ("1.png", "2.png"):
        _img(root / name)
    csv = tmp_path / "m.csv"
    csv.write_text(f"path,label,split\n1.png,a,Train\n2.png,{missing},{missing}\n")
    found = discover(root, csv)
    assert found.classes == ["a"] and found.splits == ["train"]
    assert {r.path: (r.label, r.split) for r in found.records} == {"1.png": ("a", "train"), "2.png": (None, None)}


def test_fifo_listed_in_a_manifest_is_not_called_missing(tmp_path: Path) -> None:
    import os

    root = tmp_path / "data"
    _img(root / "a.png")
    os.mkfifo(root / "pipe.png")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\na.png,x\npipe.png,y\n")
    problems = {r.path: r.problem for r in discover(root, manifest).records}
    assert problems == {"a.png": None, "pipe.png": "not a regular file (a pipe, socket or device)"}


def test_control_characters_in_folder_names_are_problems_not_labels(tmp_path: Path) -> None:
    """An ESC sequence in a class or sub-folder name must never become a label printed to a terminal."""
    _img(tmp_path / "cat" / "a.png")
    _img(tmp_path / "red\x1b[31m" / "b.png")
    _img(tmp_path / "cat" / "sub\x07bell" / "c.png")
    found = discover(tmp_path)
    assert found.classes == ["cat"]
    by_path = {r.path: r for r in found.records}
    assert by_path["cat/a.png"].problem is None
    for path in ("red\x1b[31m/b.png", "cat/sub\x07bell/c.png"):
        assert "folder name contains control characters" in (by_path[path].problem or "")
    assert by_path["red\x1b[31m/b.png"].label is None


def test_control_characters_in_manifest_labels_are_problems_not_labels(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _img(root / "a.png")
    _img(root / "b.png")
    manifest = tmp_path / "m.parquet"
    pd.DataFrame({"path": ["a.png", "b.png"], "label": ["x", "evil\x1b]0;title\x07"]}).to_parquet(manifest)
    found = discover(root, manifest)
    assert found.classes == ["x"]
    bad = next(r for r in found.records if r.path == "b.png")
    assert bad.label is None and "label contains control characters" in (bad.problem or "")
