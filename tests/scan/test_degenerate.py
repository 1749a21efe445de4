"""Degenerate datasets: flat images, identical images, two images, one class, nothing readable.

Each scans every check through the real console entry and must exit 0 with findings that make sense
for it and no traceback. (The hostile-input suite covers one class and nothing readable with the
label checks' skip messages; here the point is that every check, duplicates included, survives.)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from auditor.cli.app import main
from tests.conftest import draw_shape


def _scan(tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch,
          capsys: pytest.CaptureFixture[str]) -> tuple[pd.DataFrame, dict]:
    """``audit scan`` in-process with every check; asserts exit 0 and no traceback."""
    monkeypatch.setattr(sys, "argv", ["audit", "scan", str(data), "--out", str(tmp_path / "out"), "--encoder",
                                      "builtin", "--workers", "0", "--cache-dir", str(tmp_path / "cache")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    assert exit_info.value.code in (0, None), captured.err
    assert "Traceback" not in captured.err + captured.out
    findings = pd.read_parquet(tmp_path / "out/findings.parquet")
    return findings, json.loads((tmp_path / "out/run.json").read_text())


def _flat(colour: tuple[int, int, int], size: int = 48) -> Image.Image:
    return Image.new("RGB", (size, size), colour)


def test_flat_single_colour_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Distinct flat colours (enough of them for the embedding to be judged) have uninformative hashes,
    and no colour stands out as a copy of another: no duplicates."""
    data = tmp_path / "data"
    for c, label in enumerate(("warm", "cool")):
        (data / label).mkdir(parents=True)
        for i in range(12):
            colour = (230 - 15 * i, 60 * c, 40 + 15 * i) if c == 0 else (15 * i, 80 + 12 * i, 200)
            _flat(colour).save(data / label / f"{i}.png")
    findings, run = _scan(tmp_path, data, monkeypatch, capsys)
    assert "skipped" in run["checks"]["duplicates"]["perceptual"]
    assert "skipped" not in run["checks"]["duplicates"]["semantic"]
    duplicates = findings[findings["check"].isin(["exact_duplicate", "near_duplicate", "split_leakage"])]
    assert duplicates.empty, duplicates["message"].tolist()
    assert run["checks"]["duplicates"]["groups"] == {"split_leakage": 0, "exact_duplicate": 0,
                                                     "near_duplicate": 0}


def test_identical_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    """One picture saved under two labels: one exact-duplicate group, and the copies are label conflicts."""
    data = tmp_path / "data"
    for label in ("a", "b"):
        (data / label).mkdir(parents=True)
        for i in range(5):
            draw_shape("circle", seed=3).save(data / label / f"{i}.png")
    findings, run = _scan(tmp_path, data, monkeypatch, capsys)
    exact = findings[findings["check"] == "exact_duplicate"]
    assert len(exact) == 10 and exact["group_id"].nunique() == 1
    assert run["checks"]["duplicates"]["label_conflict_groups"] == 1
    assert set(findings[findings["check"] == "label_error"]["message"].str.startswith("label conflict")) == {True}


def test_two_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    for shape in ("circle", "square"):
        (data / shape).mkdir(parents=True)
        draw_shape(shape, seed=1).save(data / shape / "only.png")
    findings, run = _scan(tmp_path, data, monkeypatch, capsys)
    assert run["dataset"]["classes"] == ["circle", "square"]
    assert not findings["check"].isin(["exact_duplicate", "near_duplicate", "split_leakage", "unreadable"]).any()
    starved = findings[findings["check"] == "class_imbalance"]
    assert len(starved) == 2 and starved["message"].str.contains("starved").all()


def test_one_class(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data" / "only"
    data.mkdir(parents=True)
    for i in range(6):
        draw_shape("triangle", seed=i).save(data / f"{i}.png")
    findings, run = _scan(tmp_path, data.parent, monkeypatch, capsys)
    assert "at least two classes" in run["checks"]["label_errors"]["skipped"]
    assert findings.empty or not findings["check"].isin(["label_error", "ambiguous"]).any()


def test_nothing_readable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    for label in ("x", "y"):
        (data / label).mkdir(parents=True)
        for i in range(2):
            (data / label / f"{i}.png").write_bytes(b"not an image" + bytes([i]))
    findings, run = _scan(tmp_path, data, monkeypatch, capsys)
    assert (findings["check"] == "unreadable").sum() == 4
    assert run["checks"]["duplicates"]["images_in_groups"] == 0
    assert "no embedded images" in run["checks"]["outliers"]["skipped"]
