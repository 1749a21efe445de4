"""image_quality: planted defects are found relative to the dataset, and only they."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageFilter

from auditor.checks.base import CheckContext
from auditor.checks.image_quality import IMAGE_KINDS, ImageQualityCheck, ImageQualityParams
from auditor.core.config import load_config
from auditor.ingest.images import read_image
from auditor.ingest.properties import PROPERTY_COLUMNS, image_properties
from auditor.results.findings import Finding
from auditor.scan import run_scan
from tests.conftest import synthetic_context
from tests.ingest.test_properties import textured

CLASSES = ("cat", "dog", "fox")


def plant(image: Image.Image, defect: str) -> Image.Image:
    array = np.asarray(image, dtype=np.float32)
    width, height = image.size
    if defect == "dark":
        return Image.fromarray(np.uint8(array * 0.12))
    if defect == "overexposed":
        return Image.fromarray(np.uint8(np.clip(array * 2.6 + 60, 0, 255)))
    if defect == "blurry":
        return image.filter(ImageFilter.GaussianBlur(5))
    if defect == "low_information":
        mean = array.reshape(-1, 3).mean(axis=0)
        return Image.fromarray(np.uint8(mean + (array - mean) * 0.03))
    if defect == "letterboxed":
        canvas = Image.new("RGB", image.size, (0, 0, 0))
        canvas.paste(image.resize((width, height * 2 // 3)), (0, height // 6))
        return canvas
    if defect == "odd_size":
        return image.resize((24, 18))
    if defect == "greyscale":
        return image.convert("L").convert("RGB")
    if defect == "odd_aspect_ratio":
        return image.crop((0, 0, width, width // 4))
    raise ValueError(defect)


def context(files: list[tuple[Image.Image, str]]) -> CheckContext:
    """A check context whose images frame holds each image's real properties (as the read stage stores)."""
    labels = [label for _, label in files]
    ctx = synthetic_context(np.zeros((len(files), 4)), list(labels))
    rows = []
    for image, _ in files:
        values = dict.fromkeys(PROPERTY_COLUMNS, np.nan)
        values.update(width=image.width, height=image.height)
        values.update(image_properties(image))
        rows.append(values)
    extra = pd.DataFrame(rows, index=ctx.images.index)
    ctx.images = pd.concat([ctx.images, extra], axis=1)
    return ctx


def run(ctx: CheckContext, **params: object) -> tuple[list[Finding], dict]:
    result = ImageQualityCheck(ImageQualityParams(**params)).run(ctx)  # type: ignore[arg-type]
    assert result.skipped is None
    return result.findings, result.summary


def flagged(findings: list[Finding], kind: str) -> set[str]:
    return {f.path for f in findings if f.check == kind and f.path}


def test_each_planted_defect_is_found_and_clean_images_are_not() -> None:
    files = [(textured(i), CLASSES[i % 3]) for i in range(45)]
    planted = {}
    for n, kind in enumerate(IMAGE_KINDS):
        index = 3 * n + 1
        files[index] = (plant(files[index][0], kind), files[index][1])
        planted[kind] = index
    ctx = context(files)
    findings, summary = run(ctx)
    paths = ctx.images["path"].tolist()
    for kind, index in planted.items():
        assert flagged(findings, kind) == {paths[index]}, kind
    assert summary.counts == dict.fromkeys(IMAGE_KINDS, 1)
    dark = next(f for f in findings if f.check == "dark")
    assert dark.score > 4.0 and "95th-percentile luminance" in dark.message
    assert not [f for f in findings if f.check == "quality_shortcut"]


def test_a_dataset_of_night_photos_is_not_all_dark() -> None:
    night = [(plant(textured(i), "dark"), CLASSES[i % 3]) for i in range(40)]
    black = Image.new("RGB", (200, 150), (1, 1, 2))
    black.putpixel((5, 5), (40, 40, 40))
    ctx = context([*night, (black, "cat")])
    findings, summary = run(ctx)
    # Only the nearly black frame is darker than this dataset's night photos.
    assert flagged(findings, "dark") == {ctx.images["path"].iloc[-1]}
    fence = summary.thresholds["dark"]
    assert ctx.images["luminance_p95"].iloc[-1] < fence.fence_low < fence.median < 0.25
    assert (ctx.images["luminance_p95"].iloc[:-1] > fence.fence_low).all()


def test_greyscale_is_odd_only_in_a_colour_dataset() -> None:
    colour = [(textured(i), CLASSES[i % 3]) for i in range(30)]
    grey = [(plant(textured(100 + i), "greyscale"), CLASSES[i % 3]) for i in range(2)]
    findings, _ = run(context(colour + grey))
    assert len(flagged(findings, "greyscale")) == 2
    mostly_grey = [(plant(textured(i), "greyscale"), CLASSES[i % 3]) for i in range(25)] + colour[:5]
    findings, summary = run(context(mostly_grey))
    assert flagged(findings, "greyscale") == set() and summary.greyscale_share > 0.8


def test_exposure_explains_low_entropy_unless_the_frame_is_blank() -> None:
    files = [(textured(i), CLASSES[i % 3]) for i in range(30)]
    files.append((plant(textured(200), "dark"), "cat"))
    files.append((Image.new("RGB", (200, 150), (0, 0, 0)), "dog"))
    ctx = context(files)
    findings, _ = run(ctx)
    dim, blank = ctx.images["path"].iloc[-2], ctx.images["path"].iloc[-1]
    assert {dim, blank} <= flagged(findings, "dark")
    assert flagged(findings, "low_information") == {blank}


def test_a_class_where_a_defect_concentrates_is_a_shortcut() -> None:
    files = []
    for i in range(60):
        label = CLASSES[i % 3]
        image = textured(i)
        # 12 of 20 "fox" images are dark, and one "cat" image: a cue the model would learn for "fox".
        if (label == "fox" and i < 36) or i == 0:
            image = plant(image, "dark")
        files.append((image, label))
    findings, summary = run(context(files))
    shortcuts = [f for f in findings if f.check == "quality_shortcut"]
    assert [(f.classes, f.details["kind"]) for f in shortcuts] == [(("fox",), "dark")]
    assert shortcuts[0].details["class_rate"] == pytest.approx(12 / 20)
    assert shortcuts[0].details["p_value"] < 0.01
    assert summary.per_class["fox"]["dark"] == 12 and summary.per_class["cat"]["dark"] == 1


def test_too_few_images_skip_the_check() -> None:
    ctx = context([(textured(i), "cat") for i in range(5)])
    result = ImageQualityCheck(ImageQualityParams()).run(ctx)
    assert result.skipped == "needs at least 20 readable images to know what is typical (found 5)"
    assert result.findings == []


def test_scan_writes_property_columns_and_quality_findings(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for i in range(24):
        folder = data / CLASSES[i % 3]
        folder.mkdir(parents=True, exist_ok=True)
        image = plant(textured(i), "blurry") if i == 5 else textured(i)
        image.save(folder / f"img_{i:03d}.png")
    (data / "cat" / "broken.png").write_bytes(b"not an image")
    config = load_config(overrides={"encoder": {"name": "builtin", "workers": 0},
                                    "scan": {"cache_dir": str(tmp_path / "cache"), "workers": 0,
                                             "checks": ["image_quality"]}})
    run_scan(data, config, tmp_path / "out")
    images = pq.read_table(tmp_path / "out" / "images.parquet").to_pandas().set_index("path")
    assert set(PROPERTY_COLUMNS) <= set(images.columns)
    assert images.loc["cat/broken.png", list(PROPERTY_COLUMNS)].isna().all()
    direct = read_image(data / "fox" / "img_005.png", 10**8, 10**9).properties
    assert images.loc["fox/img_005.png", "sharpness"] == pytest.approx(direct["sharpness"])
    findings = pq.read_table(tmp_path / "out" / "findings.parquet").to_pandas()
    assert findings.loc[findings["check"] == "blurry", "path"].tolist() == ["fox/img_005.png"]
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["checks"]["image_quality"]["counts"]["blurry"] == 1

    # The gate limits each kind; the reports show a section per kind and the per-class table.
    from auditor.actions.gate import GateConfig, evaluate
    from auditor.report import ReportFormat, ReportOptions, render_results
    from auditor.results.reading import load_results

    results = load_results(tmp_path / "out")
    assert not evaluate(results, GateConfig(max_findings={"blurry": 0})).passed
    assert evaluate(results, GateConfig(max_findings={"blurry": 1})).passed
    html = render_results(tmp_path / "out", ReportFormat.HTML, ReportOptions())
    assert "Blurry images" in html and "Image quality by class" in html and "fox/img_005.png" in html
    markdown = render_results(tmp_path / "out", ReportFormat.MARKDOWN, ReportOptions())
    assert "**Image quality by class**" in markdown and "| fox | 8 | 1 |" in markdown
    terminal = render_results(tmp_path / "out", ReportFormat.TERMINAL, ReportOptions(width=200))
    assert "Image quality by class" in terminal and "blurry: 1 finding(s)" in terminal


def test_a_dataset_of_flat_frames_has_no_sharpness_to_compare() -> None:
    frames = [(Image.new("RGB", (64, 48), (10 * i, 100, 200 - 5 * i)), CLASSES[i % 3]) for i in range(24)]
    findings, summary = run(context(frames))
    assert not flagged(findings, "blurry") and summary.counts["blurry"] == 0
