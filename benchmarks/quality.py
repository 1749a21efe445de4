"""Image-quality benchmark: planted defects in a folder of photo-like images, auditor vs cleanvision.

    python benchmarks/quality.py                      # 400 clean images, 20 per defect, seed 0
    python benchmarks/quality.py --clean 800 --per-defect 30 --seed 1
    python benchmarks/quality.py --smoke   # 16 clean, 2 per defect, 8 night photos: the same runs in seconds

Clean pictures are half crops of scikit-learn's two bundled sample photographs (``load_sample_images``:
china.jpg and flower.jpg, shipped inside scikit-learn; random crop, scale, flip and colour/gamma jitter)
and half procedural scenes (smooth colour fields, multi-octave texture, 3-8 shapes, sensor noise, slight
blur), auto-exposed to a mean luminance of 0.38-0.55, 240-384 px wide, landscape 1.25-1.5, saved as JPEG
q90 or PNG in four class folders. Then each defect is planted into ``--per-defect`` further pictures (one defect each):

    dark          pixel values x 0.08-0.2 (underexposed)
    overexposed   exposure raised until 40-70% of the pixels clip to white (blown highlights)
    blurry        Gaussian blur, radius 3-6 px
    low_information  flattened: 3-6% of the picture's contrast left around its mean colour
    letterboxed   picture squeezed between black or white bars taking 25-45% of the height or width
    odd_size      shrunk to 20-40 px wide (tiny)
    greyscale     converted to grey, half stored as greyscale (mode L), half as RGB
    odd_aspect_ratio  cropped to 3:1-4:1 or 1:3-1:4

``audit scan`` (built-in encoder, only the image_quality check) and cleanvision's matching issue types
run on the same folder; per kind, precision and recall over the planted images are printed side by side
with each tool's wall time. A finding of a kind on an image planted with another defect counts as a
false positive. Letterboxing has no cleanvision counterpart.

A second folder holds only night photos (every picture at 12-30% exposure) and a few near-black frames: a
dataset-relative check flags the frames, not the whole folder.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

CLASSES = ("alpha", "beta", "gamma", "delta")
DEFECTS = ("dark", "overexposed", "blurry", "low_information", "letterboxed", "odd_size", "greyscale",
           "odd_aspect_ratio")
# cleanvision's issue type for each of our kinds (None: it has none).
CLEANVISION_KIND = {
    "dark": "dark", "overexposed": "light", "blurry": "blurry", "low_information": "low_information",
    "letterboxed": None, "odd_size": "odd_size", "greyscale": "grayscale", "odd_aspect_ratio": "odd_aspect_ratio",
}


def sample_photos() -> list[np.ndarray]:
    from sklearn.datasets import load_sample_images

    return list(load_sample_images().images)


def photo_crop(photos: list[np.ndarray], rng: random.Random) -> Image.Image:
    """A random crop of a sample photograph, scaled, flipped and colour-jittered."""
    photo = photos[rng.randrange(len(photos))]
    height, width = photo.shape[:2]
    aspect = rng.uniform(1.25, 1.5)
    crop_w = rng.randint(200, width)
    crop_h = min(height, round(crop_w / aspect))
    crop_w = round(crop_h * aspect)
    x, y = rng.randint(0, width - crop_w), rng.randint(0, height - crop_h)
    image = Image.fromarray(photo[y:y + crop_h, x:x + crop_w])
    target = rng.randint(240, 384)
    image = image.resize((target, round(target / aspect)), Image.Resampling.LANCZOS)
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
    array = np.asarray(image, dtype=np.float32) / 255.0
    array = array ** rng.uniform(0.8, 1.25) * np.array([rng.uniform(0.85, 1.15) for _ in range(3)])
    return Image.fromarray(np.uint8(np.clip(array * 255.0, 0, 255)))


def scene(rng: random.Random) -> Image.Image:
    """A procedural photo-like picture: smooth colour field, texture, shapes, sensor noise, slight blur."""
    width = rng.randint(240, 384)
    height = round(width / rng.uniform(1.25, 1.5))
    nprng = np.random.default_rng(rng.randint(0, 2**31))
    field = np.zeros((height, width, 3), dtype=np.float32)
    for octave, weight in ((3, 90.0), (12, 30.0), (48, 12.0)):
        coarse = nprng.normal(0, 1, size=(octave, max(2, round(octave * width / height)), 3))
        layer = Image.fromarray(np.uint8(np.clip(128 + 40 * coarse, 0, 255))).resize((width, height),
                                                                                      Image.Resampling.BICUBIC)
        field += (np.asarray(layer, dtype=np.float32) - 128) / 40 * weight
    base = np.array([rng.randint(60, 200) for _ in range(3)], dtype=np.float32)
    image = Image.fromarray(np.uint8(np.clip(base + field, 0, 255)))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(3, 8)):
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(0.08, 0.3) * min(width, height)
        kind = rng.choice(["ellipse", "polygon", "line"])
        if kind == "ellipse":
            draw.ellipse((cx - r, cy - r * rng.uniform(0.5, 1.5), cx + r, cy + r), fill=colour)
        elif kind == "line":
            draw.line((cx - r, cy - r, cx + r * rng.uniform(-1, 1), cy + r), fill=colour, width=rng.randint(2, 8))
        else:
            sides = rng.randint(3, 7)
            draw.polygon([(cx + r * rng.uniform(0.5, 1) * math.cos(2 * math.pi * k / sides),
                           cy + r * rng.uniform(0.5, 1) * math.sin(2 * math.pi * k / sides))
                          for k in range(sides)], fill=colour)
    noisy = np.asarray(image, dtype=np.float32) + nprng.normal(0, rng.uniform(2, 8), size=(height, width, 3))
    return Image.fromarray(np.uint8(np.clip(noisy, 0, 255))).filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.0)))


def auto_exposure(image: Image.Image, rng: random.Random) -> Image.Image:
    """Gain so the mean luminance lands at 0.38-0.55, as a camera's averaging meter would: the clean
    pictures are well exposed, so a dark or bright one is a planted defect, not an accident of the crop."""
    array = np.asarray(image, dtype=np.float32)
    luminance = array @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    gain = 255.0 * rng.uniform(0.38, 0.55) / max(float(luminance.mean()), 1.0)
    return Image.fromarray(np.uint8(np.clip(array * gain, 0, 255)))


def clean_picture(photos: list[np.ndarray], rng: random.Random) -> Image.Image:
    return auto_exposure(photo_crop(photos, rng) if rng.random() < 0.5 else scene(rng), rng)


def plant(image: Image.Image, defect: str, rng: random.Random) -> Image.Image:
    """``image`` with one defect."""
    array = np.asarray(image, dtype=np.float32)
    width, height = image.size
    if defect == "dark":
        return Image.fromarray(np.uint8(array * rng.uniform(0.08, 0.2)))
    if defect == "overexposed":
        # Exposure raised until 40-70% of the picture clips to white.
        luminance = array @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        knee = max(float(np.percentile(luminance, 100 * (1 - rng.uniform(0.4, 0.7)))), 1.0)
        return Image.fromarray(np.uint8(np.clip(array * 255.0 / knee, 0, 255)))
    if defect == "blurry":
        return image.filter(ImageFilter.GaussianBlur(rng.uniform(3.0, 6.0)))
    if defect == "low_information":
        mean = array.reshape(-1, 3).mean(axis=0)
        return Image.fromarray(np.uint8(np.clip(mean + (array - mean) * rng.uniform(0.03, 0.06), 0, 255)))
    if defect == "letterboxed":
        share = rng.uniform(0.25, 0.45)
        colour = rng.choice([(0, 0, 0), (255, 255, 255)])
        canvas = Image.new("RGB", image.size, colour)
        if rng.random() < 0.5:  # bars above and below
            inner = image.resize((width, round(height * (1 - share))), Image.Resampling.LANCZOS)
            canvas.paste(inner, (0, (height - inner.height) // 2))
        else:  # bars left and right
            inner = image.resize((round(width * (1 - share)), height), Image.Resampling.LANCZOS)
            canvas.paste(inner, ((width - inner.width) // 2, 0))
        return canvas
    if defect == "odd_size":
        side = rng.randint(20, 40)
        return image.resize((side, max(1, round(side * height / width))), Image.Resampling.LANCZOS)
    if defect == "greyscale":
        grey = image.convert("L")
        # Half stored as greyscale files, half as grey pixels in RGB files (as scraped images often are).
        return grey if rng.random() < 0.5 else grey.convert("RGB")
    if defect == "odd_aspect_ratio":
        ratio = rng.uniform(3.0, 4.0)
        if rng.random() < 0.5:  # wide strip
            strip = max(8, round(width / ratio))
            top = rng.randint(0, height - strip)
            return auto_exposure(image.crop((0, top, width, top + strip)), rng)
        strip = max(8, round(height / ratio))
        left = rng.randint(0, max(0, width - strip))
        return auto_exposure(image.crop((left, 0, left + strip, height)), rng)
    raise ValueError(defect)


def build_folder(root: Path, clean: int, per_defect: int, seed: int) -> dict[str, str]:
    """Write the folder; returns planted path -> defect."""
    rng = random.Random(seed)
    photos = sample_photos()
    planted: dict[str, str] = {}
    jobs = [None] * clean + [d for d in DEFECTS for _ in range(per_defect)]
    rng.shuffle(jobs)
    for i, defect in enumerate(jobs):
        image = clean_picture(photos, rng)
        if defect is not None:
            image = plant(image, defect, rng)
        ext = ".jpg" if rng.random() < 0.5 else ".png"
        rel = f"{rng.choice(CLASSES)}/img_{i:05d}{ext}"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        image.save(root / rel, **({"quality": 90} if ext == ".jpg" else {}))
        if defect is not None:
            planted[rel] = defect
    return planted


def build_night_folder(root: Path, night: int, black: int, seed: int) -> set[str]:
    """Night photos: every clean picture at 12-30% of its exposure, and ``black`` frames at 2% (returned)."""
    rng = random.Random(seed + 1)
    photos = sample_photos()
    frames = set()
    for i in range(night + black):
        array = np.asarray(clean_picture(photos, rng), dtype=np.float32)
        gain = 0.02 if i >= night else rng.uniform(0.12, 0.3)
        rel = f"{rng.choice(CLASSES)}/night_{i:05d}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.uint8(array * gain)).save(root / rel)
        if i >= night:
            frames.add(rel)
    return frames


def run_ours(root: Path, work: Path) -> tuple[dict[str, set[str]], float, dict[str, object]]:
    import pandas as pd

    out = work / f"out_{root.name}"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "auditor", "scan", str(root), "--out", str(out), "--cache-dir",
                    str(work / "cache"), "--encoder", "builtin", "--checks", "image_quality"],
                   check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    findings = pd.read_parquet(out / "findings.parquet")
    found = {kind: set(findings.loc[findings["check"] == kind, "path"]) for kind in DEFECTS}
    run = json.loads((out / "run.json").read_text())
    return found, elapsed, {"read_s": run["timings_s"]["read"], "summary": run["checks"].get("image_quality")}


def run_cleanvision(root: Path) -> tuple[dict[str, set[str]] | None, float, str | None]:
    try:
        from cleanvision import Imagelab
    except ImportError:
        return None, 0.0, "cleanvision is not installed (pip install cleanvision)"
    kinds = {theirs: {} for theirs in CLEANVISION_KIND.values() if theirs}
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            lab = Imagelab(data_path=str(root))
            lab.find_issues(kinds)
    except Exception as exc:  # noqa: BLE001 - the point is to show how it fails
        return None, time.perf_counter() - started, f"{type(exc).__name__}: {str(exc)[:120]}"
    elapsed = time.perf_counter() - started
    base = str(root.resolve()) + "/"
    issues = lab.issues
    found = {}
    for ours, theirs in CLEANVISION_KIND.items():
        if theirs is not None:
            flagged = issues.index[issues[f"is_{theirs}_issue"]]
            found[ours] = {str(p).removeprefix(base) for p in flagged}
    return found, elapsed, None


def precision_recall(found: set[str], truth: set[str]) -> tuple[float, float]:
    hits = len(found & truth)
    return (hits / len(found) if found else float("nan")), hits / max(len(truth), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clean", type=int, default=400)
    parser.add_argument("--per-defect", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--night", type=int, default=200, help="pictures in the night-photo folder")
    parser.add_argument("--keep", type=Path, help="write the folder here and keep it")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (16 clean, 2 per defect, 8 night photos)")
    args = parser.parse_args()
    if args.smoke:
        args.clean, args.per_defect, args.night = 16, 2, 8
    with tempfile.TemporaryDirectory(prefix="quality_bench_") as tmp:
        work = Path(tmp)
        root = args.keep or work / "data"
        planted = build_folder(root, args.clean, args.per_defect, args.seed)
        print(f"{args.clean + len(planted)} images: {args.clean} clean, {args.per_defect} planted per defect "
              f"(seed {args.seed})")
        ours, ours_s, info = run_ours(root, work)
        theirs, theirs_s, error = run_cleanvision(root)
        print(f"\n{'kind':<18}{'auditor P':>10}{'R':>7}{'n':>5}   {'cleanvision P':>14}{'R':>7}{'n':>5}")
        for kind in DEFECTS:
            truth = {path for path, defect in planted.items() if defect == kind}
            p, r = precision_recall(ours[kind], truth)
            line = f"{kind:<18}{p:>10.3f}{r:>7.3f}{len(ours[kind]):>5}   "
            if theirs is not None and kind in theirs:
                cp, cr = precision_recall(theirs[kind], truth)
                line += f"{cp:>14.3f}{cr:>7.3f}{len(theirs[kind]):>5}"
            else:
                line += f"{'-':>14}{'-':>7}{'-':>5}"
            print(line)
        print(f"\ntime: auditor scan {ours_s:.1f} s (read stage with properties {info['read_s']:.1f} s; the rest is "
              f"start-up and the built-in embedding), cleanvision {theirs_s:.1f} s")
        if error:
            print(f"cleanvision did not run: {error}")
        shortcut = (info["summary"] or {}).get("shortcuts")
        print(f"quality_shortcut findings (none planted: defects are spread over classes at random): {shortcut}")

        night_root = work / "night"
        black = build_night_folder(night_root, args.night, max(1, args.night // 20), args.seed)
        ours, _, _ = run_ours(night_root, work)
        theirs, _, error = run_cleanvision(night_root)
        print(f"\nnight photos: {args.night} pictures at 12-30% exposure plus {len(black)} near-black frames (2%)")
        print(f"  auditor dark: {len(ours['dark'])} flagged, {len(ours['dark'] & black)} of {len(black)} frames")
        if theirs is not None:
            print(f"  cleanvision dark: {len(theirs['dark'])} flagged, {len(theirs['dark'] & black)} of {len(black)} "
                  "frames")


if __name__ == "__main__":
    main()
