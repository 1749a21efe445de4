"""``--pred-probs``: the user's own out-of-sample probabilities replace auditor's classifier."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from auditor.core.config import load_config
from auditor.core.errors import DatasetError
from auditor.evidence.user_probabilities import load_user_probabilities
from auditor.scan import run_scan
from tests.conftest import SHAPES, run_cli, write_class_folder

CHECKS = ["label_errors", "ambiguous", "class_overlap"]


def _config(tmp_path: Path, **ambiguity: object):  # type: ignore[no-untyped-def]
    return load_config(overrides={
        "encoder": {"name": "builtin", "workers": 0},
        "scan": {"workers": 0, "cache_dir": str(tmp_path / "cache"), "checks": CHECKS},
        "evidence": {"ambiguity": dict(ambiguity)},
    })


def _confident(paths: list[str]) -> pd.DataFrame:
    """0.9 on each image's folder class, 0.05 on the others."""
    rows = []
    for path in paths:
        label = path.split("/")[0]
        rows.append({"path": path, **{c: 0.9 if c == label else 0.05 for c in SHAPES}})
    return pd.DataFrame(rows)


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, list[str]]:
    root = tmp_path / "data"
    files = write_class_folder(root, per_class=10)
    return root, sorted(p.relative_to(root).as_posix() for p in files)


def test_user_probabilities_drive_label_errors_and_ambiguity(tmp_path: Path, dataset) -> None:  # type: ignore[no-untyped-def]
    root, paths = dataset
    # Drawn clearly as a circle, so auditor's own classifier has no reason to doubt the label ...
    doubted, split = "circle/circle_003.png", "triangle/triangle_004.png"
    own = run_scan(root, _config(tmp_path), tmp_path / "own")
    assert doubted not in {f.path for f in own.findings if f.check == "label_error"}
    assert own.run["probabilities"] == {"source": "auditor"}

    # ... but the user's model says square, and is torn on another image.
    frame = _confident(paths)
    frame.loc[frame.path == doubted, list(SHAPES)] = [0.03, 0.95, 0.02]
    frame.loc[frame.path == split, list(SHAPES)] = [0.49, 0.02, 0.49]
    frame.to_parquet(tmp_path / "probs.parquet")
    result = run_scan(root, _config(tmp_path, closeness_weight=0.0), tmp_path / "user",
                      pred_probs=tmp_path / "probs.parquet")
    errors = [f for f in result.findings if f.check == "label_error"]
    assert [(f.path, f.suggested_label) for f in errors] == [(doubted, "square")]
    assert split in {f.path for f in result.findings if f.check == "ambiguous"}
    record = result.run["probabilities"]
    assert record["source"] == "user" and record["matched_images"] == 30 and record["images_without_row"] == 0
    assert json.loads((tmp_path / "user" / "run.json").read_text())["probabilities"]["file"].endswith("probs.parquet")


def test_list_column_with_classes_metadata_is_the_same_evidence(tmp_path: Path, dataset) -> None:  # type: ignore[no-untyped-def]
    root, paths = dataset
    wide = _confident(paths)
    wide.loc[wide.path == "square/square_001.png", list(SHAPES)] = [0.9, 0.05, 0.05]
    order = ["triangle", "circle", "square"]  # any order: the metadata names it
    table = pa.table({"path": wide.path.tolist(), "probs": wide[order].to_numpy().tolist()})
    table = table.replace_schema_metadata({"classes": json.dumps(order)})
    pq.write_table(table, tmp_path / "list.parquet")
    result = run_scan(root, _config(tmp_path), tmp_path / "out", pred_probs=tmp_path / "list.parquet")
    errors = [(f.path, f.suggested_label) for f in result.findings if f.check == "label_error"]
    assert errors == [("square/square_001.png", "circle")]


def test_images_without_a_row_are_counted_and_left_out(tmp_path: Path, dataset) -> None:  # type: ignore[no-untyped-def]
    root, paths = dataset
    left_out = ["circle/circle_000.png", "square/square_000.png"]
    _confident([p for p in paths if p not in left_out]).to_parquet(tmp_path / "probs.parquet")
    result = run_scan(root, _config(tmp_path), tmp_path / "out", pred_probs=tmp_path / "probs.parquet")
    assert result.run["probabilities"]["images_without_row"] == 2
    assert any("2 labelled image(s) have no row" in w for w in result.warnings)
    quality = result.images.set_index("path")["label_quality"]
    assert quality[left_out].isna().all() and quality.drop(left_out).notna().all()


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda f: f.assign(circle=f.circle * 3), "do not sum to 1"),
    (lambda f: f.drop(columns=["square"]), "no column for dataset class(es) 'square'"),
    (lambda f: f.assign(hexagon=0.0), "class(es) not in the dataset: 'hexagon'"),
    (lambda f: f.assign(path="elsewhere/" + f.path), "none of its 30 paths is an image of the dataset"),
    (lambda f: f.drop(columns=["path"]), "needs a 'path' column"),
    (lambda f: f.assign(circle=np.nan), "NaN"),
])
def test_invalid_files_are_rejected_before_embedding(tmp_path: Path, dataset, mutate, message) -> None:  # type: ignore[no-untyped-def]
    root, paths = dataset
    mutate(_confident(paths)).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(DatasetError, match="--pred-probs .*" + message.replace("(", r"\(").replace(")", r"\)")):
        run_scan(root, _config(tmp_path), tmp_path / "out", pred_probs=tmp_path / "bad.parquet")
    assert not (tmp_path / "out").exists()


def test_cli_rejects_logits_with_exit_2(tmp_path: Path, dataset) -> None:  # type: ignore[no-untyped-def]
    root, paths = dataset
    logits = _confident(paths)
    logits[list(SHAPES)] = np.log(logits[list(SHAPES)].to_numpy())
    logits.to_parquet(tmp_path / "logits.parquet")
    result = run_cli("scan", str(root), "--out", str(tmp_path / "out"), "--encoder", "builtin",
                     "--workers", "0", "--pred-probs", str(tmp_path / "logits.parquet"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "probabilities must not be negative" in result.stderr


def test_cli_summary_says_whose_probabilities_were_used(tmp_path: Path, dataset) -> None:  # type: ignore[no-untyped-def]
    root, paths = dataset
    _confident(paths[1:]).to_parquet(tmp_path / "[probs].parquet")  # a name rich would read as markup
    result = run_cli("scan", str(root), "--out", str(tmp_path / "out"), "--encoder", "builtin",
                     "--workers", "0", "--checks", "label_errors", "--pred-probs", str(tmp_path / "[probs].parquet"))
    assert result.returncode == 0, result.stderr
    summary = " ".join(result.stdout.split())
    assert "class probabilities: yours, from" in summary and "[probs].parquet" in summary
    assert "29 images matched, 1 without a row" in summary


def test_loaded_probabilities_follow_the_dataset_class_order_and_record_the_match(tmp_path: Path) -> None:
    source = tmp_path / "probs.parquet"
    pd.DataFrame({"path": ["a.png", "b.png", "gone.png"], "dog": [0.2, 0.7, 0.5], "cat": [0.8, 0.3, 0.5]}
                 ).to_parquet(source)
    probs = load_user_probabilities(source, ["cat", "dog"], ["a.png", "b.png", "c.png"])
    assert probs.classes == ["cat", "dog"]
    np.testing.assert_allclose(probs.rows_for(["b.png", "a.png"], ["cat", "dog"]), [[0.3, 0.7], [0.8, 0.2]])
    np.testing.assert_allclose(probs.rows_for(["a.png"], ["dog"]), [[1.0]])  # renormalised over the classes given
    assert probs.record(["a.png", "b.png", "c.png"]) == probs.record(["a.png", "b.png", "c.png"]) | {
        "source": "user", "rows": 3, "matched_images": 2, "images_without_row": 1, "rows_not_in_dataset": 1}
