"""Shared test helpers: small datasets drawn with PIL in tmp_path, an isolated embedding cache."""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")


def draw_shape(shape: str, seed: int, size: int = 64) -> Image.Image:
    """A coloured shape on a light background; the seed varies colour, position and scale."""
    rng = random.Random(seed)
    image = Image.new("RGB", (size, size), tuple(rng.randint(170, 255) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    radius = rng.uniform(0.25, 0.4) * size
    cx, cy = rng.uniform(radius, size - radius), rng.uniform(radius, size - radius)
    colour = tuple(rng.randint(0, 140) for _ in range(3))
    if shape == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=colour)
    elif shape == "square":
        draw.rectangle((cx - radius, cy - radius, cx + radius, cy + radius), fill=colour)
    elif shape == "triangle":
        draw.polygon([(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=colour)
    else:
        raise ValueError(shape)
    return image


def write_class_folder(root: Path, per_class: int, shapes: Iterable[str] = SHAPES, seed: int = 0,
                       ext: str = ".png") -> list[Path]:
    written = []
    for c, shape in enumerate(shapes):
        folder = root / shape
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            path = folder / f"{shape}_{i:03d}{ext}"
            draw_shape(shape, seed * 10_000 + c * 1000 + i).save(path)
            written.append(path)
    return written


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's embedding cache."""
    monkeypatch.setenv("AUDITOR_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def class_dataset(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_class_folder(root, per_class=8)
    return root
