"""Incremental re-scan for CI: a pull request that changes 1% of a dataset embeds only that 1%.

Generates a 2,000-image dataset (64-px PIL-drawn shapes, train/test splits), scans it with a fresh
embedding cache, changes 20 images (new content: redrawn shapes, shapes drawn in the wrong class folder,
noise images), re-scans with the same cache and prints run.json's embedding counts for both scans, the
wall times side by side, and the Markdown gate verdict against the first scan as baseline.

    python benchmarks/incremental.py [--images 2000] [--changed 20] [--workdir DIR]
    python benchmarks/incremental.py --smoke   # 50 images, 5 changed: the same two scans in seconds

Exits 1 if the re-scan embedded anything other than the changed images.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

from auditor.actions.gate import evaluate
from auditor.core.config import GateConfig, load_config
from auditor.report.gate_render import render_markdown
from auditor.results.reading import load_results
from auditor.scan import run_scan

SHAPES = ("circle", "square", "triangle", "diamond", "cross")
SIZE = 64


def draw(shape: str, seed: int) -> Image.Image:
    rng = random.Random(seed)
    image = Image.new("RGB", (SIZE, SIZE), tuple(rng.randint(170, 255) for _ in range(3)))
    pen = ImageDraw.Draw(image)
    r = rng.uniform(0.22, 0.4) * SIZE
    x, y = rng.uniform(r, SIZE - r), rng.uniform(r, SIZE - r)
    colour = tuple(rng.randint(0, 140) for _ in range(3))
    if shape == "circle":
        pen.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    elif shape == "square":
        pen.rectangle((x - r, y - r, x + r, y + r), fill=colour)
    elif shape == "triangle":
        pen.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=colour)
    elif shape == "diamond":
        pen.polygon([(x, y - r), (x + r, y), (x, y + r), (x - r, y)], fill=colour)
    else:
        width = max(2, int(r / 2))
        pen.line((x - r, y, x + r, y), fill=colour, width=width)
        pen.line((x, y - r, x, y + r), fill=colour, width=width)
    return image


def noise(seed: int) -> Image.Image:
    rng = random.Random(seed)
    return Image.frombytes("RGB", (SIZE, SIZE), bytes(rng.randrange(256) for _ in range(SIZE * SIZE * 3)))


def generate(root: Path, total: int) -> list[Path]:
    per_class = total // len(SHAPES)
    paths = []
    for c, shape in enumerate(SHAPES):
        for i in range(per_class):
            split = "test" if i % 5 == 0 else "train"
            folder = root / split / shape
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{shape}_{i:04d}.png"
            draw(shape, c * 100_000 + i).save(path)
            paths.append(path)
    return paths


def change(paths: list[Path], count: int, seed: int = 7) -> dict[str, list[str]]:
    """Overwrite ``count`` train images with new content: most redrawn, some mislabelled, some noise."""
    rng = random.Random(seed)
    chosen = rng.sample([p for p in paths if p.parts[-3] == "train"], count)
    kinds: dict[str, list[str]] = {"redrawn": [], "wrong_shape": [], "noise": []}
    for n, path in enumerate(chosen):
        shape = path.parent.name
        if n < 3:
            other = SHAPES[(SHAPES.index(shape) + 1) % len(SHAPES)]
            draw(other, 9_000_000 + n).save(path)
            kinds["wrong_shape"].append(f"{path.parent.name}/{path.name} (draws a {other})")
        elif n < 5:
            noise(9_100_000 + n).save(path)
            kinds["noise"].append(f"{path.parent.name}/{path.name}")
        else:
            draw(shape, 9_200_000 + n).save(path)
            kinds["redrawn"].append(f"{path.parent.name}/{path.name}")
    return kinds


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--changed", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (50 images, 5 changed)")
    args = parser.parse_args()
    if args.smoke:
        args.images, args.changed = 50, 5
    work = args.workdir or Path(tempfile.mkdtemp(prefix="auditor-incremental-"))
    data, cache = work / "data", work / "cache"
    config = load_config(overrides={"encoder": {"name": "builtin"}, "scan": {"cache_dir": str(cache)}})

    started = time.perf_counter()
    paths = generate(data, args.images)
    print(f"generated {len(paths)} images in {time.perf_counter() - started:.1f} s under {data}")

    started = time.perf_counter()
    first = run_scan(data, config, work / "base")
    first_s = time.perf_counter() - started
    kinds = change(paths, args.changed)
    started = time.perf_counter()
    second = run_scan(data, config, work / "head")
    second_s = time.perf_counter() - started

    for name, result, seconds in (("first scan", first, first_s), ("re-scan", second, second_s)):
        emb = result.run["embedding"]
        print(f"{name:10}: embedded {emb['embedded']:5d}, from cache {emb['from_cache']:5d}, "
              f"embed stage {result.run['timings_s']['embed']:.2f} s, total {seconds:.1f} s")
    print(f"re-scan / first scan wall time: {second_s / first_s:.2f}; embed stage: "
          f"{second.run['timings_s']['embed'] / first.run['timings_s']['embed']:.2f}")
    print(f"changed: {', '.join(f'{len(v)} {k}' for k, v in kinds.items())}")

    rules = GateConfig(
        max_near_duplicate=0, max_label_error_rate_per_class=0.005, max_findings={"outlier": 0})
    verdict = evaluate(load_results(work / "head"), rules, load_results(work / "base"))
    print()
    print(render_markdown(verdict))
    embedded = second.run["embedding"]["embedded"]
    if embedded != args.changed:
        print(f"MISMATCH: the re-scan embedded {embedded} images, expected {args.changed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
