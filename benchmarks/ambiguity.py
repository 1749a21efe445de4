"""Benchmark the ``ambiguous`` and ``outliers`` checks on a generated dataset with planted cases.

Clean images are single PIL-drawn shapes. Planted into the class folders: 50/50 alpha blends of two
classes' images and pictures showing one shape of each of two classes (both filed under one of the
two source classes), plus blank and noise images that belong to no class. The script runs the real
scan pipeline (builtin encoder, a throw-away cache) and prints recall and false-alarm rates.

Run from the repository root: ``python benchmarks/ambiguity.py [--per-class 60] [--seeds 0 1 2 3 4]``;
``--smoke`` runs the same scan on 8 images per class, 4 two-class and 2 blank/noise images, in seconds.
"""

from __future__ import annotations

import argparse
import math
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIDE = 96
CLASSES = ("circle", "square", "triangle", "star", "cross")


def _polygon(
    cx: float, cy: float, radius: float, sides: int, rotation: float, star: bool = False
) -> list[tuple[float, float]]:
    count = sides * 2 if star else sides
    points = []
    for i in range(count):
        r = radius if not star or i % 2 == 0 else radius * 0.45
        angle = rotation + 2 * math.pi * i / count
        points.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
    return points


def _draw(draw: ImageDraw.ImageDraw, shape: str, rng: random.Random, box: tuple[int, int, int, int]) -> None:
    x0, y0, x1, y1 = box
    radius = rng.uniform(0.3, 0.42) * min(x1 - x0, y1 - y0)
    cx, cy = rng.uniform(x0 + radius, x1 - radius), rng.uniform(y0 + radius, y1 - radius)
    colour = _class_colour(shape, rng)
    rotation = rng.uniform(-0.3, 0.3)
    if shape == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=colour)
    elif shape == "square":
        draw.polygon(_polygon(cx, cy, radius * 1.25, 4, rotation + math.pi / 4), fill=colour)
    elif shape == "triangle":
        draw.polygon(_polygon(cx, cy, radius * 1.25, 3, rotation - math.pi / 2), fill=colour)
    elif shape == "star":
        draw.polygon(_polygon(cx, cy, radius * 1.3, 5, rotation - math.pi / 2, star=True), fill=colour)
    elif shape == "cross":
        arm = radius * 0.35
        draw.rectangle((cx - radius, cy - arm, cx + radius, cy + arm), fill=colour)
        draw.rectangle((cx - arm, cy - radius, cx + arm, cy + radius), fill=colour)
    else:
        raise ValueError(shape)


# Each class has a typical colour, as real categories often do; the shade varies per image.
_HUES = {"circle": 0.0, "square": 0.62, "triangle": 0.33, "star": 0.14, "cross": 0.8}


def _class_colour(shape: str, rng: random.Random) -> tuple[int, int, int]:
    import colorsys

    hue = (_HUES[shape] + rng.uniform(-0.02, 0.02)) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, rng.uniform(0.75, 1.0), rng.uniform(0.55, 0.8))
    return int(r * 255), int(g * 255), int(b * 255)


def _background(rng: random.Random) -> Image.Image:
    return Image.new("RGB", (SIDE, SIDE), tuple(rng.randint(200, 255) for _ in range(3)))


def shape_image(shapes: list[str], rng: random.Random) -> Image.Image:
    """One shape filling the frame, or several side by side."""
    image = _background(rng)
    draw = ImageDraw.Draw(image)
    width = SIDE // len(shapes)
    for i, shape in enumerate(shapes):
        top = 0 if len(shapes) == 1 else SIDE // 2 - width // 2
        height = SIDE if len(shapes) == 1 else width
        _draw(draw, shape, rng, (i * width, top, (i + 1) * width, top + height))
    return image.filter(ImageFilter.GaussianBlur(0.5))


@dataclass
class Planted:
    blends: dict[str, tuple[str, str]] = field(default_factory=dict)  # relative path -> source classes
    outliers: list[str] = field(default_factory=list)
    clean: list[str] = field(default_factory=list)


def generate(root: Path, per_class: int, blends: int, outliers: int, seed: int) -> Planted:
    rng = random.Random(seed)
    planted = Planted()
    for label in CLASSES:
        for i in range(per_class):
            rel = f"{label}/{label}_{i:03d}.png"
            (root / label).mkdir(parents=True, exist_ok=True)
            shape_image([label], rng).save(root / rel)
            planted.clean.append(rel)
    for i in range(blends):
        a, b = rng.sample(CLASSES, 2)
        if i % 2 == 0:
            image = Image.blend(shape_image([a], rng), shape_image([b], rng), 0.5)
            kind = "blend"
        else:
            image = shape_image([a, b], rng)
            kind = "pair"
        rel = f"{a}/{kind}_{a}_{b}_{i:03d}.png"
        image.save(root / rel)
        planted.blends[rel] = (a, b)
    for i in range(outliers):
        label = rng.choice(CLASSES)
        if i % 2 == 0:
            image = Image.new("RGB", (SIDE, SIDE), tuple(rng.randint(0, 255) for _ in range(3)))
            kind = "blank"
        else:
            image = Image.effect_noise((SIDE, SIDE), rng.uniform(60, 120)).convert("RGB")
            kind = "noise"
        rel = f"{label}/{kind}_{i:03d}.png"
        image.save(root / rel)
        planted.outliers.append(rel)
    return planted


def _rate(part: int, whole: int) -> str:
    return f"{part}/{whole} = {part / whole:.1%}" if whole else "n/a"


@dataclass
class SeedResult:
    blends: tuple[int, int]  # (flagged naming both classes, planted)
    pairs: tuple[int, int]
    clean_ambiguous: tuple[int, int]
    outliers_found: tuple[int, int]
    outlier_precision: tuple[int, int]
    clean_outliers: tuple[int, int]


def run_seed(per_class: int, blends: int, outliers: int, seed: int) -> SeedResult:
    from auditor.core.config import AuditConfig, EncoderConfig, ScanConfig
    from auditor.scan import run_scan

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        planted = generate(root, per_class, blends, outliers, seed)
        config = AuditConfig(encoder=EncoderConfig(name="builtin"),
                             scan=ScanConfig(cache_dir=Path(tmp) / "cache", checks=["ambiguous", "outliers"]))
        result = run_scan(root, config, Path(tmp) / "out")

    ambiguous = {f.path: f for f in result.findings if f.check == "ambiguous"}
    flagged_outliers = {f.path for f in result.findings if f.check == "outlier"}
    clean = set(planted.clean)

    def named(kind: str) -> tuple[int, int]:
        paths = [p for p in planted.blends if Path(p).name.startswith(kind)]
        hits = [p for p in paths if p in ambiguous and set(planted.blends[p]) <= set(ambiguous[p].classes)]
        return len(hits), len(paths)

    true_outliers = flagged_outliers & set(planted.outliers)
    return SeedResult(
        blends=named("blend"),
        pairs=named("pair"),
        clean_ambiguous=(len(clean & ambiguous.keys()), len(clean)),
        outliers_found=(len(true_outliers), len(planted.outliers)),
        outlier_precision=(len(true_outliers), len(flagged_outliers)),
        clean_outliers=(len(clean & flagged_outliers), len(clean)),
    )


ROWS = (
    ("ambiguous: 50/50 blends flagged naming both classes (target >= 70%)", "blends"),
    ("ambiguous: two shapes side by side flagged naming both classes", "pairs"),
    ("ambiguous: clean images flagged (target < 2%)", "clean_ambiguous"),
    ("outlier: blank/noise images found (recall)", "outliers_found"),
    ("outlier: precision (target >= 0.5)", "outlier_precision"),
    ("outlier: clean images flagged", "clean_outliers"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=60, help="clean images per class")
    parser.add_argument("--blends", type=int, default=30, help="planted two-class images (half blends, half pairs)")
    parser.add_argument("--outliers", type=int, default=6, help="planted blank/noise images")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="one generated dataset per seed")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (8 per class, 4 two-class, 2 blank/noise)")
    args = parser.parse_args()
    if args.smoke:
        args.per_class, args.blends, args.outliers, args.seeds = 8, 4, 2, [0]

    results = {seed: run_seed(args.per_class, args.blends, args.outliers, seed) for seed in args.seeds}
    print(f"{len(CLASSES)} classes x {args.per_class} clean images, {args.blends} two-class images, "
          f"{args.outliers} blank/noise images per dataset; builtin encoder; seeds {args.seeds}")
    for title, attribute in ROWS:
        print(title)
        for seed, result in results.items():
            print(f"  seed {seed}: {_rate(*getattr(result, attribute))}")
        if len(results) > 1:
            rates = [part / whole for part, whole in (getattr(r, attribute) for r in results.values()) if whole]
            worst = max(rates) if attribute.startswith("clean") else min(rates)
            print(f"  mean {np.mean(rates):.1%}, worst seed {worst:.1%}")


if __name__ == "__main__":
    main()
