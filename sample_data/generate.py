"""Regenerate the bundled sample dataset: drawn shapes in train/val/test with planted problems.

Run from the repository root: ``python sample_data/generate.py``. Deterministic (fixed seed); every
planted problem is listed in ``sample_data/README.md`` and in ``sample_data/planted.json``.
"""

from __future__ import annotations

import io
import json
import math
import random
import shutil
import struct
import zlib
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parent
SIDE = 96
CLASSES = ("circle", "square", "triangle", "star")
SPLIT_SIZES = {"train": 30, "val": 8, "test": 8}
STARVED_CLASS, STARVED_COUNTS = "hexagon", {"train": 3, "val": 1, "test": 1}


def _polygon(cx: float, cy: float, radius: float, sides: int, rotation: float, star: bool = False) -> list[tuple]:
    points = []
    count = sides * 2 if star else sides
    for i in range(count):
        r = radius if not star or i % 2 == 0 else radius * 0.45
        angle = rotation + 2 * math.pi * i / count
        points.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
    return points


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, rng: random.Random, box: tuple[int, int, int, int]) -> None:
    x0, y0, x1, y1 = box
    radius = rng.uniform(0.28, 0.42) * min(x1 - x0, y1 - y0)
    cx = rng.uniform(x0 + radius, x1 - radius)
    cy = rng.uniform(y0 + radius, y1 - radius)
    colour = tuple(rng.randint(20, 235) for _ in range(3))
    rotation = rng.uniform(0, 2 * math.pi)
    if shape == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=colour)
    elif shape == "square":
        draw.polygon(_polygon(cx, cy, radius * 1.2, 4, rotation), fill=colour)
    elif shape == "triangle":
        draw.polygon(_polygon(cx, cy, radius * 1.25, 3, rotation), fill=colour)
    elif shape == "star":
        draw.polygon(_polygon(cx, cy, radius * 1.3, 5, rotation, star=True), fill=colour)
    elif shape == "hexagon":
        draw.polygon(_polygon(cx, cy, radius * 1.15, 6, rotation), fill=colour)


def background(rng: random.Random) -> Image.Image:
    base = tuple(rng.randint(150, 255) for _ in range(3))
    image = Image.new("RGB", (SIDE, SIDE), base)
    noise = Image.effect_noise((SIDE, SIDE), rng.uniform(5, 25)).convert("RGB")
    return Image.blend(image, noise, 0.15)


def make_image(shapes: list[str], rng: random.Random) -> Image.Image:
    image = background(rng)
    draw = ImageDraw.Draw(image)
    if len(shapes) == 1:
        draw_shape(draw, shapes[0], rng, (0, 0, SIDE, SIDE))
    else:
        width = SIDE // len(shapes)
        for i, shape in enumerate(shapes):
            draw_shape(draw, shape, rng, (i * width, SIDE // 4, (i + 1) * width, SIDE * 3 // 4))
    return image.filter(ImageFilter.GaussianBlur(0.6))


def save(image: Image.Image, path: Path, quality: int = 92) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in {".jpg", ".jpeg"}:
        image.save(path, quality=quality)
    else:
        image.save(path)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(side: int = 10_000) -> bytes:
    """A valid 1-bit PNG of side x side pixels: a few kB on disk, 100 M pixels decoded."""
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


QUALITY_DEFECTS = (
    ("dark", "circle", "train/circle/dark_circle.png"),
    ("overexposed", "square", "train/square/overexposed_square.png"),
    ("blurry", "triangle", "train/triangle/blurry_triangle.png"),
    ("letterboxed", "star", "train/star/letterboxed_star.png"),
    ("odd_size", "circle", "train/circle/tiny_circle.png"),
    ("greyscale", "square", "train/square/greyscale_square.png"),
    ("odd_aspect_ratio", "triangle", "train/triangle/wide_strip_triangle.png"),
)


def quality_defect(image: Image.Image, kind: str) -> Image.Image:
    """``image`` (SIDE x SIDE) with one image-quality defect."""
    if kind == "dark":
        return Image.eval(image, lambda v: round(v * 0.12))
    if kind == "overexposed":
        return Image.eval(image, lambda v: min(255, round(v * 2.5 + 60)))
    if kind == "blurry":
        return image.filter(ImageFilter.GaussianBlur(3))
    if kind == "letterboxed":
        canvas = Image.new("RGB", (SIDE, SIDE), (0, 0, 0))
        canvas.paste(image.resize((SIDE, SIDE * 5 // 8)), (0, SIDE * 3 // 16))
        return canvas
    if kind == "odd_size":
        return image.resize((SIDE // 4, SIDE // 4))
    if kind == "greyscale":
        return image.convert("L").convert("RGB")
    if kind == "odd_aspect_ratio":
        return image.crop((0, SIDE * 3 // 8, SIDE, SIDE * 5 // 8))
    raise ValueError(kind)


def main() -> None:
    rng = random.Random(20261122)
    for child in ROOT.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
    planted: dict[str, list] = {
        "label_error": [], "exact_duplicate": [], "near_duplicate": [], "split_leakage": [],
        "ambiguous": [], "outlier": [], "unreadable": [], "class_imbalance": [STARVED_CLASS],
    }
    for split, size in SPLIT_SIZES.items():
        for label in CLASSES:
            for i in range(size):
                ext = ".jpg" if i % 2 else ".png"
                save(make_image([label], rng), ROOT / split / label / f"{label}_{i:03d}{ext}")
        for i in range(STARVED_COUNTS[split]):
            save(make_image([STARVED_CLASS], rng), ROOT / split / STARVED_CLASS / f"{STARVED_CLASS}_{i:03d}.png")

    # Label errors: a clear shape filed under another class.
    for true, given, i in [("circle", "square", 0), ("triangle", "circle", 1), ("star", "triangle", 2),
                           ("square", "star", 3), ("circle", "triangle", 4)]:
        rel = f"train/{given}/mislabelled_{true}_{i}.png"
        save(make_image([true], rng), ROOT / rel)
        planted["label_error"].append({"path": rel, "true_label": true})

    # Duplicates: byte copy, JPEG re-encode, resize, and a train -> test leak.
    source = ROOT / "train/circle/circle_000.png"
    shutil.copyfile(source, ROOT / "train/circle/circle_000_copy.png")
    planted["exact_duplicate"].append(["train/circle/circle_000.png", "train/circle/circle_000_copy.png"])
    with Image.open(ROOT / "train/square/square_002.png") as img:
        save(img.convert("RGB"), ROOT / "train/square/square_002_reencoded.jpg", quality=70)
        save(img.resize((88, 88)), ROOT / "train/square/square_002_resized.png")
    planted["near_duplicate"].append(["train/square/square_002.png", "train/square/square_002_reencoded.jpg",
                                      "train/square/square_002_resized.png"])
    shutil.copyfile(ROOT / "train/star/star_004.png", ROOT / "test/star/star_leaked.png")
    planted["split_leakage"].append(["train/star/star_004.png", "test/star/star_leaked.png"])

    # Ambiguous: two classes in one picture.
    for a, b, i in [("circle", "square", 0), ("triangle", "star", 1), ("square", "triangle", 2)]:
        rel = f"train/{a}/two_shapes_{a}_{b}_{i}.png"
        save(make_image([a, b], rng), ROOT / rel)
        planted["ambiguous"].append({"path": rel, "classes": [a, b]})

    # Outliers: belong to no class.
    save(Image.new("RGB", (SIDE, SIDE), (0, 0, 0)), ROOT / "train/square/blank_black.png")
    save(Image.effect_noise((SIDE, SIDE), 120).convert("RGB"), ROOT / "train/star/static_noise.png")
    planted["outlier"] += ["train/square/blank_black.png", "train/star/static_noise.png"]

    # Unreadable files.
    (ROOT / "train/circle/empty.png").write_bytes(b"")
    (ROOT / "train/square/notes.jpg").write_text("this is a text file with an image extension\n")
    buffer = io.BytesIO()
    make_image(["triangle"], rng).save(buffer, format="PNG")
    (ROOT / "val/triangle/truncated.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (ROOT / "train/star/bomb.png").write_bytes(bomb_png())
    planted["unreadable"] += ["train/circle/empty.png", "train/square/notes.jpg", "val/triangle/truncated.png",
                              "train/star/bomb.png"]

    # Ambiguous, continued: 50/50 blends of two classes' pictures (made last, so the files above stay as
    # they were: PIL's noise draws from one process-wide random stream).
    blend_rng = random.Random(20261123)
    for a, b, i in [("circle", "star", 0), ("square", "triangle", 1), ("star", "circle", 2)]:
        rel = f"train/{a}/blend_{a}_{b}_{i}.png"
        save(Image.blend(make_image([a], blend_rng), make_image([b], blend_rng), 0.5), ROOT / rel)
        planted["ambiguous"].append({"path": rel, "classes": [a, b]})

    # Image quality: defects of the pictures themselves (made last, with their own stream, so every file
    # above stays byte-identical).
    quality_rng = random.Random(20261124)
    planted["image_quality"] = []
    for kind, label, rel in QUALITY_DEFECTS:
        save(quality_defect(make_image([label], quality_rng), kind), ROOT / rel)
        planted["image_quality"].append({"path": rel, "kind": kind})

    (ROOT / "planted.json").write_text(json.dumps(planted, indent=2) + "\n")


if __name__ == "__main__":
    main()
