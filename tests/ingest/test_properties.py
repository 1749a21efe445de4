"""Pixel properties: each measures what its name says, on PIL-drawn images."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from auditor.ingest.images import read_image
from auditor.ingest.properties import PROPERTIES, PROPERTY_COLUMNS, Pixels, content_box, image_properties
from tests.conftest import draw_photo, draw_shape, framed


def textured(seed: int, size: tuple[int, int] = (200, 150)) -> Image.Image:
    """A photo-like picture: a colour gradient, sensor noise and a few sharp shapes."""
    rng = random.Random(seed)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    start = np.array([rng.randint(40, 200) for _ in range(3)], dtype=np.float32)
    end = np.array([rng.randint(40, 200) for _ in range(3)], dtype=np.float32)
    ramp = (xx / width)[..., None]
    noise = np.random.default_rng(seed).normal(0, 12, size=(height, width, 3))
    image = Image.fromarray(np.uint8(np.clip(start * (1 - ramp) + end * ramp + noise, 0, 255)))
    draw = ImageDraw.Draw(image)
    for _ in range(5):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(10, 40)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=tuple(rng.randint(0, 255) for _ in range(3)))
    return image


def props(image: Image.Image) -> dict[str, float]:
    return image_properties(image)


def test_registry_columns_schema_and_values_agree() -> None:
    values = props(textured(1))
    assert list(values) == list(PROPERTY_COLUMNS) == [p.column for p in PROPERTIES]
    assert len(set(PROPERTY_COLUMNS)) == len(PROPERTY_COLUMNS)
    assert all(isinstance(v, float) for v in values.values())


def test_exposure_properties_follow_brightness() -> None:
    normal = textured(2)
    array = np.asarray(normal, dtype=np.float32)
    dark = Image.fromarray(np.uint8(array * 0.15))
    bright = Image.fromarray(np.uint8(np.clip(array * 3.0, 0, 255)))
    n, d, b = props(normal), props(dark), props(bright)
    assert d["luminance_p95"] < 0.2 < n["luminance_p95"]
    assert d["brightness"] < n["brightness"] < b["brightness"]
    assert b["highlight_fraction"] > 0.2 > n["highlight_fraction"]
    crushed = props(Image.fromarray(np.uint8(array * 0.04)))
    assert crushed["shadow_fraction"] > 0.5 and n["shadow_fraction"] < 0.05
    assert b["luminance_p05"] > n["luminance_p05"]


def test_blur_lowers_sharpness_whatever_the_contrast() -> None:
    sharp = textured(3)
    blurred = sharp.filter(ImageFilter.GaussianBlur(4))
    dim = Image.fromarray(np.uint8(np.asarray(sharp, dtype=np.float32) * 0.4 + 60))
    s, b, d = props(sharp)["sharpness"], props(blurred)["sharpness"], props(dim)["sharpness"]
    assert b < 0.5 * s
    assert d == pytest.approx(s, rel=0.25)  # lower contrast is not blur


def test_sharpness_is_measured_at_one_scale_for_large_images() -> None:
    small = textured(4, (256, 192))
    large = small.resize((1024, 768), Image.Resampling.NEAREST)
    assert props(large)["sharpness"] == pytest.approx(props(small)["sharpness"], rel=0.1)


def test_flat_image_has_no_information_and_no_sharpness() -> None:
    flat = Image.new("RGB", (120, 90), (90, 100, 110))
    values = props(flat)
    assert values["entropy"] == pytest.approx(0.0, abs=1e-9)
    assert math.isnan(values["sharpness"])
    assert values["border_fraction"] == 0.0  # a flat image is not a letterbox
    assert props(textured(5))["entropy"] > 5.0


def test_greyscale_has_no_colour_even_as_jpeg(tmp_path: Path) -> None:
    grey = textured(6).convert("L").convert("RGB")
    grey.save(tmp_path / "grey.jpg", quality=85)
    with Image.open(tmp_path / "grey.jpg") as reread:
        jpeg_grey = reread.convert("RGB")
    dim_colour = Image.fromarray(np.uint8(np.asarray(textured(6), dtype=np.float32) * 0.1))
    assert props(grey)["colour_fraction"] == 0.0 and props(grey)["colourfulness"] < 1e-6
    assert props(jpeg_grey)["colour_fraction"] < 0.005
    assert props(dim_colour)["colour_fraction"] > 0.05
    assert props(textured(6))["colour_fraction"] > 0.5


@pytest.mark.parametrize("colour", [(0, 0, 0), (255, 255, 255)], ids=["black", "white"])
def test_letterbox_bars_are_measured_and_excluded_from_exposure(colour: tuple[int, int, int]) -> None:
    picture = textured(7, (200, 100))
    canvas = Image.new("RGB", (200, 150), colour)
    canvas.paste(picture, (0, 25))
    values = props(canvas)
    assert values["border_fraction"] == pytest.approx(50 / 150, abs=0.03)
    # Exposure describes the picture, not its bars.
    assert values["brightness"] == pytest.approx(props(picture)["brightness"], abs=0.03)
    pillarbox = Image.new("RGB", (260, 100), colour)
    pillarbox.paste(picture, (30, 0))
    assert props(pillarbox)["border_fraction"] == pytest.approx(60 / 260, abs=0.03)


def test_a_bar_on_one_side_only_is_not_a_letterbox() -> None:
    """A clear sky above a scene is uniform rows at the top, but nothing matches it at the bottom."""
    picture = textured(8, (200, 100))
    sky = Image.new("RGB", (200, 150), (120, 170, 230))
    sky.paste(picture, (0, 50))
    assert props(sky)["border_fraction"] == 0.0


def test_aspect_ratio_uses_the_original_size() -> None:
    assert props(textured(9, (600, 150)))["aspect_ratio"] == pytest.approx(4.0)
    assert Pixels.from_image(textured(9, (600, 150))).rgb.shape[:2] == (64, 256)


def test_read_image_stores_properties_and_unreadable_has_none(tmp_path: Path) -> None:
    textured(10).save(tmp_path / "ok.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    good = read_image(tmp_path / "ok.png", 10**8, 10**9)
    assert set(good.properties) == set(PROPERTY_COLUMNS)
    assert good.properties["aspect_ratio"] == pytest.approx(200 / 150)
    assert read_image(tmp_path / "bad.png", 10**8, 10**9).properties == {}


@pytest.mark.parametrize("size", [(1, 1), (1, 500), (700, 2), (3, 3)], ids=["1x1", "1x500", "700x2", "3x3"])
def test_degenerate_sizes_give_values_not_errors(size: tuple[int, int]) -> None:
    values = props(textured(11, size))
    assert values["aspect_ratio"] == pytest.approx(size[0] / size[1])
    assert 0.0 <= values["border_fraction"] <= 1.0 and 0.0 <= values["brightness"] <= 1.0
    assert all(math.isfinite(v) for k, v in values.items() if k != "sharpness")


def test_the_content_box_is_the_picture_inside_a_frame_or_letterbox() -> None:
    picture = draw_photo(4)
    assert content_box(picture) == (0, 0, 96, 72)
    assert content_box(framed(picture, 12)) == (12, 12, 108, 84)
    letterbox = Image.new("RGB", (96, 112), (0, 0, 0))
    letterbox.paste(picture, (0, 20))
    assert content_box(letterbox) == (0, 20, 96, 92)


def test_a_plain_shape_on_a_plain_background_is_not_cropped_to_the_shape() -> None:
    # Bars on every side, and the rows next to them are the shape's edge, but the shape itself is plain.
    canvas = Image.new("RGB", (64, 64), (230, 230, 230))
    ImageDraw.Draw(canvas).rectangle((12, 16, 50, 47), fill=(30, 60, 90))
    assert content_box(canvas) == (0, 0, 64, 64)
    for seed in range(30):
        shape = draw_shape("square", seed)
        assert content_box(shape.resize((59, 59), Image.Resampling.LANCZOS)) == (0, 0, 59, 59)
