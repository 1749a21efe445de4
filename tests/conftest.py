"""Shared test helpers: small datasets drawn with PIL in tmp_path, an isolated embedding cache."""

from __future__ import annotations

import contextlib
import io
import random
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

from auditor.checks.base import CheckContext
from auditor.cli.app import main
from auditor.core.config import AuditConfig
from auditor.embed.encoders.base import EncoderInfo

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


def draw_photo(seed: int, size: tuple[int, int] = (96, 72)) -> Image.Image:
    """A photo-like picture: smooth random colour blobs with sensor-like noise, no plain background."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.uniform(70, 255, (6, 8, 3)).astype(np.uint8))
    smooth = np.asarray(coarse.resize(size, Image.Resampling.BICUBIC), dtype=np.float64)
    return Image.fromarray(np.clip(smooth + rng.normal(0.0, 6.0, smooth.shape), 0, 255).astype(np.uint8))


def framed(picture: Image.Image, width: int = 12, colour: tuple[int, int, int] = (0, 0, 0)) -> Image.Image:
    """``picture`` inside a uniform frame ``width`` pixels wide, as a photo frame or mount."""
    canvas = Image.new("RGB", (picture.width + 2 * width, picture.height + 2 * width), colour)
    canvas.paste(picture, (width, width))
    return canvas


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


def write_split_shapes(root: Path, train: int = 8, test: int = 4) -> Path:
    """train/<shape>/ and test/<shape>/ with ``train`` and ``test`` distinct drawings per shape."""
    for split, count, offset in (("train", train, 0), ("test", test, 500)):
        for c, shape in enumerate(SHAPES):
            folder = root / split / shape
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                draw_shape(shape, c * 1000 + offset + i).save(folder / f"{shape}_{i:03d}.png")
    return root


@pytest.fixture(autouse=True, scope="session")
def _ctrl_c_raises() -> Iterable[None]:
    """Tests of Ctrl-C need Python's own SIGINT handler. A CI runner may start the suite with SIGINT ignored (a
    shell's background job does), and an ignored SIGINT is inherited by every scan the tests start, so the
    interrupt tests would test nothing. With Python's handler here, child processes start with the default."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


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


def synthetic_context(
    vectors: np.ndarray,
    labels: list[str | None],
    paths: list[str] | None = None,
    embedding_rows: list[int] | None = None,
    pixel_ids: list[str] | None = None,
) -> CheckContext:
    """A check context over synthetic embeddings, so a check can be tested without images or a scan.

    ``embedding_rows`` (default: row i is image i) with -1 marks an unreadable, unembedded image.
    """
    rows = list(range(len(labels))) if embedding_rows is None else embedding_rows
    images = pd.DataFrame(
        {
            "path": paths or [f"{label or 'none'}/{i:04d}.png" for i, label in enumerate(labels)],
            "label": labels,
            "split": [None] * len(rows),
            "sha256": [f"sha{row}" for row in rows],
            "readable": [row >= 0 for row in rows],
            "pixel_sha256": pixel_ids or [f"px{row}" for row in rows],
            "embedding_row": rows,
        }
    )
    return CheckContext(
        images=images,
        embeddings=vectors.astype(np.float32),
        classes=sorted({label for label in labels if label}),
        splits=[],
        empty_classes={},
        encoder=EncoderInfo("builtin", "builtin", "test", vectors.shape[1], False),
        config=AuditConfig(),
    )


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``audit ARGS`` through the console-script entry ``main()``, in this process: the code a shell runs, its
    exit code, stdout and stderr, without a fresh interpreter's seconds of imports per call. Tests that need a
    real process (start-up, environment read at import, pipes, signals) start one."""
    stdout, stderr = io.StringIO(), io.StringIO()
    argv, sigterm = sys.argv, signal.getsignal(signal.SIGTERM)
    sys.argv = ["audit", *args]
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                main()
                code = 0
            except SystemExit as exit_info:
                code = 0 if exit_info.code is None else int(exit_info.code)
    finally:
        sys.argv = argv
        signal.signal(signal.SIGTERM, sigterm)
    return subprocess.CompletedProcess(["audit", *args], code, stdout.getvalue(), stderr.getvalue())
