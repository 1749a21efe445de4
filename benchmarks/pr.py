"""Pull requests through the CI gate: do clean ones pass and bad ones fail, with each encoder and config?

A base ``<split>/<class>/file`` dataset (train/val/test, 60/20/20 per class) is built from a folder of real
photos in ``<class>/file`` layout, scanned, and then changed by simulated pull requests, each scanned and gated
with ``--baseline`` on the base scan (``run_scan`` + ``evaluate``, what ``audit scan`` + ``audit gate`` run):

- clean: new photos added to train, to val, to test; files renamed; files deleted; new photos re-saved as JPEG
  at another quality (new content, so not a copy); val images moved to train;
- bad: test images copied into train exactly, resized, mirrored and cropped; random train images relabelled; a
  batch of new photos of one class filed under another; a truncated upload; a copy of a train image in train.

The photo set's own natural copies are kept out of every change and the base: a scan of the whole source
(with each encoder) lists every image in a duplicate finding, a thumbnail comparison every mirrored pair, and
none of them is used. Each PR is gated with (a) the default ``[gate]`` config, (b) a strict one
(``max_near_duplicate = 0``, ``[gate.max_findings] label_error = 0``) and (c) ``strict-all``, strict with every
model-based kind at 0 (``ambiguous``, ``outlier``, ``class_overlap`` too: where refit churn would show most),
with the built-in encoder and, given ``--model-file``, a real CNN through ``--encoder onnx`` (NHWC, 0-255,
224 px stretched: e.g. fastdup 2.54's MobileNetV3-Large ``UndisclosedFastdupModel2.ort``, CC BY-NC-ND, measure
only, never commit it). Prints a Markdown table: PR, expected verdict, the verdict per (encoder, config) with
the rules that blocked, and how many model-based findings on untouched images were not counted; then a
summary line per encoder.

    python benchmarks/pr.py --source /work/bench-src/flowers17 --per-class 30 \\
        --model-file /work/bench-src/fastdup/fastdup/UndisclosedFastdupModel2.ort
    python benchmarks/pr.py --smoke   # generated pictures, built-in encoder only: the same path in seconds

Source used for docs/benchmarks/pr.md: Oxford 17 flowers (17 classes x 80 jpgs,
https://www.robots.ox.ac.uk/~vgg/data/flowers/17/), fetched for measuring only; never commit the photos.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from auditor.actions.gate import Verdict, evaluate
from auditor.core.config import AuditConfig, GateConfig, load_config
from auditor.results.reading import load_results
from auditor.scan import run_scan

SPLITS = {"train": 0.6, "val": 0.2, "test": 0.2}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
COPY_KINDS = ("exact_duplicate", "near_duplicate", "split_leakage")
# How many images each PR changes (per class for the additions; in all for the rest).
ADD_PER_CLASS = 1
CHANGED = 6
# Two source photos whose thumbnails correlate this well, one mirrored, are one photo (a natural copy).
MIRROR_CORRELATION = 0.95


@dataclass
class Base:
    """The base dataset and what the PRs may draw from: ``spare`` photos per class, never in the base."""

    root: Path
    spare: dict[str, list[Path]]
    rng: random.Random

    def files(self, split: str) -> list[Path]:
        return sorted(p for p in (self.root / split).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)

    def pick(self, split: str, count: int) -> list[Path]:
        return self.rng.sample(self.files(split), min(count, len(self.files(split))))

    def take_spare(self, label: str) -> Path:
        return self.spare[label].pop()


# --- Changes a PR makes to a copy of the base dataset ---------------------------------------------------


def _add(split: str) -> Callable[[Base, Path], None]:
    def change(base: Base, root: Path) -> None:
        for label in sorted(base.spare):
            for _ in range(ADD_PER_CLASS):
                source = base.take_spare(label)
                shutil.copy(source, root / split / label / f"added_{source.name}")
    return change


def rename(base: Base, root: Path) -> None:
    for path in base.pick("train", CHANGED) + base.pick("test", CHANGED // 2):
        target = root / path.relative_to(base.root)
        target.rename(target.with_name("renamed_" + target.name))


def delete(base: Base, root: Path) -> None:
    for path in base.pick("train", CHANGED):
        (root / path.relative_to(base.root)).unlink()


def reencode(base: Base, root: Path) -> None:
    """New photos re-saved as JPEG at quality 60: new content, as an export pipeline would write it."""
    for label in sorted(base.spare):
        source = base.take_spare(label)
        with Image.open(source) as image:
            image.convert("RGB").save(root / "train" / label / f"q60_{source.stem}.jpg", quality=60)


def move_val_to_train(base: Base, root: Path) -> None:
    for path in base.pick("val", CHANGED):
        (root / path.relative_to(base.root)).rename(root / "train" / path.parent.name / path.name)


def _test_copies(transform: Callable[[Image.Image], Image.Image], prefix: str) -> Callable[[Base, Path], None]:
    def change(base: Base, root: Path) -> None:
        for path in base.pick("test", CHANGED):
            with Image.open(path) as image:
                copy = transform(image.convert("RGB"))
            copy.save(root / "train" / path.parent.name / f"{prefix}_{path.stem}.png")
    return change


def exact_test_copies(base: Base, root: Path) -> None:
    for path in base.pick("test", CHANGED):
        shutil.copy(path, root / "train" / path.parent.name / f"copy_{path.name}")


def _resized(image: Image.Image) -> Image.Image:
    return image.resize((max(8, image.width // 2), max(8, image.height // 2)), Image.Resampling.LANCZOS)


def _cropped(image: Image.Image) -> Image.Image:
    dx, dy = image.width // 10, image.height // 10
    return image.crop((dx, dy, image.width - dx, image.height - dy))


def mislabel(base: Base, root: Path) -> None:
    labels = sorted(base.spare)
    for path in base.pick("train", CHANGED):
        other = base.rng.choice([label for label in labels if label != path.parent.name])
        (root / path.relative_to(base.root)).rename(root / "train" / other / f"moved_{path.name}")


def wrong_class_batch(base: Base, root: Path) -> None:
    """New photos of one class, all filed under another (a batch uploaded to the wrong folder)."""
    given, actual = sorted(base.spare)[:2]
    for _ in range(min(CHANGED, len(base.spare[actual]))):
        source = base.take_spare(actual)
        shutil.copy(source, root / "train" / given / f"batch_{source.name}")


def truncated_upload(base: Base, root: Path) -> None:
    label = sorted(base.spare)[0]
    data = base.take_spare(label).read_bytes()
    (root / "train" / label / "upload.jpg").write_bytes(data[: len(data) // 2])


def duplicate_in_train(base: Base, root: Path) -> None:
    path = base.pick("train", 1)[0]
    shutil.copy(path, root / path.relative_to(base.root).with_name("again_" + path.name))


@dataclass(frozen=True)
class PullRequest:
    name: str
    clean: bool
    change: Callable[[Base, Path], None]


PULL_REQUESTS = (
    PullRequest("add to train", True, _add("train")),
    PullRequest("add to val", True, _add("val")),
    PullRequest("add to test", True, _add("test")),
    PullRequest("rename", True, rename),
    PullRequest("delete", True, delete),
    PullRequest("re-encode new photos", True, reencode),
    PullRequest("move val to train", True, move_val_to_train),
    PullRequest("exact test copies in train", False, exact_test_copies),
    PullRequest("resized test copies in train", False, _test_copies(_resized, "resized")),
    PullRequest("mirrored test copies in train", False, _test_copies(ImageOps.mirror, "mirrored")),
    PullRequest("cropped test copies in train", False, _test_copies(_cropped, "cropped")),
    PullRequest("random mislabels", False, mislabel),
    PullRequest("batch under the wrong class", False, wrong_class_batch),
    PullRequest("truncated upload", False, truncated_upload),
    PullRequest("duplicate in train", False, duplicate_in_train),
)


# --- Sources ------------------------------------------------------------------------------------------------


def _draw(kind: int, rng: random.Random, size: int = 96) -> Image.Image:
    """One of four shapes, in a random place and colour, over random clutter (so no two pictures are alike)."""
    image = Image.new("RGB", (size, size), tuple(rng.randint(120, 255) for _ in range(3)))
    pen = ImageDraw.Draw(image)
    for _ in range(12):
        points = [(rng.uniform(0, size), rng.uniform(0, size)) for _ in range(2)]
        pen.line(points, fill=tuple(rng.randint(0, 255) for _ in range(3)), width=rng.randint(1, 6))
    r = rng.uniform(0.2, 0.35) * size
    x, y = rng.uniform(r, size - r), rng.uniform(r, size - r)
    colour = (rng.randint(0, 255), 60 * kind % 256, rng.randint(0, 255))
    if kind % 4 == 0:
        pen.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    elif kind % 4 == 1:
        pen.rectangle((x - r, y - r, x + r, y + r), fill=colour)
    elif kind % 4 == 2:
        pen.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=colour)
    else:
        pen.line((x - r, y, x + r, y), fill=colour, width=8)
    return image


def generate_source(root: Path, classes: int = 4, per_class: int = 24, seed: int = 0) -> Path:
    """Smoke data: ``classes`` kinds of drawn shapes, ``per_class`` each, in ``<class>/file`` layout."""
    rng = random.Random(seed)
    for kind in range(classes):
        folder = root / f"shape{kind}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            _draw(kind, rng).save(folder / f"img_{i:03d}.png")
    return root


def _thumbnail(image: Image.Image) -> np.ndarray:
    """32x32 grey levels, centred and unit length: the correlation of two is their dot product."""
    grey = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.BILINEAR), dtype=np.float64).ravel()
    grey -= grey.mean()
    return grey / (np.linalg.norm(grey) + 1e-9)


def mirrored_pairs(source: Path) -> set[str]:
    """Source-relative paths of images that are another's mirror image (thumbnail correlation >= 0.95).
    The scan's copy evidence is not mirror-aware with every encoder (issue 27 item 3), and Oxford 17 flowers
    holds such pairs (c4/image_0242 and image_0243)."""
    paths = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    plain, mirrored = [], []
    for path in paths:
        with Image.open(path) as image:
            plain.append(_thumbnail(image))
            mirrored.append(_thumbnail(ImageOps.mirror(image)))
    similar = np.stack(plain) @ np.stack(mirrored).T
    np.fill_diagonal(similar, -1.0)
    rows, columns = np.nonzero(similar >= MIRROR_CORRELATION)
    return {str(paths[i].relative_to(source)) for i in (*rows, *columns)}


def natural_copies(source: Path, configs: dict[str, AuditConfig], work: Path) -> set[str]:
    """Source-relative paths of every image in a copy finding of a whole-source scan with any encoder, or
    mirrored (``mirrored_pairs``)."""
    copies = mirrored_pairs(source)
    for name, config in configs.items():
        results = run_scan(source, config, work / f"source_{name}")
        copies |= {str(f.path) for f in results.findings if f.check in COPY_KINDS and f.path}
        copies |= {str(f.other_path) for f in results.findings if f.check in COPY_KINDS and f.other_path}
    return copies


def build_base(source: Path, root: Path, per_class: int, excluded: set[str], seed: int) -> Base:
    """Split ``per_class`` photos per class 60/20/20; the class's other photos (no natural copies) are spare."""
    rng = random.Random(seed)
    spare: dict[str, list[Path]] = {}
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                        and str(p.relative_to(source)) not in excluded)
        rng.shuffle(photos)
        chosen, spare[folder.name] = photos[:per_class], photos[per_class:]
        start = 0
        for split, share in SPLITS.items():
            count = round(per_class * share) if split != "test" else len(chosen) - start
            (root / split / folder.name).mkdir(parents=True, exist_ok=True)
            for photo in chosen[start:start + count]:
                shutil.copy(photo, root / split / folder.name / photo.name)
            start += count
    return Base(root, spare, rng)


# --- Running and reporting ----------------------------------------------------------------------------


def encoder_configs(cache: Path, model_file: Path | None) -> dict[str, AuditConfig]:
    scan = {"cache_dir": str(cache), "workers": 0}
    configs = {"builtin": load_config(overrides={"encoder": {"name": "builtin"}, "scan": scan})}
    if model_file is not None:
        onnx = {"name": "onnx", "model_file": str(model_file), "workers": 0,
                "onnx": {"layout": "NHWC", "scaling": "0-255", "resize": "stretch", "input_size": 224}}
        configs["cnn"] = load_config(overrides={"encoder": onnx, "scan": scan})
    return configs


def gate_configs() -> dict[str, GateConfig]:
    default = load_config().gate
    strict = default.model_copy(update={"max_near_duplicate": 0, "max_findings": {"label_error": 0}})
    every_model_kind = dict.fromkeys(("label_error", "ambiguous", "outlier", "class_overlap"), 0)
    return {"default": default, "strict": strict,
            "strict-all": strict.model_copy(update={"max_findings": every_model_kind})}


def cell(verdict: Verdict) -> str:
    """``pass`` or ``FAIL (rule observed, ...)``, plus the model-based findings on untouched images left out."""
    blocked = ", ".join(f"{rule.name.removeprefix('max_findings.').removeprefix('max_')} {rule.observed:g}"
                        for rule in verdict.failed_rules if rule.observed is not None)
    text = "pass" if verdict.passed else f"FAIL ({blocked})"
    return text + (f"; {len(verdict.untouched)} untouched" if verdict.untouched else "")


def run_pull_requests(base_template: Base, work: Path, configs: dict[str, AuditConfig],
                      seed: int) -> list[dict[str, Any]]:
    gates = gate_configs()
    baselines = {name: run_scan(base_template.root, config, work / f"base_{name}") for name, config in
                 configs.items()}
    rows: list[dict[str, Any]] = []
    for number, pr in enumerate(PULL_REQUESTS):
        # Each PR draws from a fresh copy of the spare photos with its own seed: PRs are independent.
        base = Base(base_template.root, {k: list(v) for k, v in base_template.spare.items()},
                    random.Random(seed * 1000 + number))
        root = work / f"pr{number:02d}"
        shutil.copytree(base.root, root)
        pr.change(base, root)
        row: dict[str, Any] = {"pr": pr.name, "clean": pr.clean}
        for name, config in configs.items():
            started = time.perf_counter()
            run_scan(root, config, work / f"pr{number:02d}_{name}")
            current = load_results(work / f"pr{number:02d}_{name}")
            baseline = load_results(baselines[name].out_dir)
            for gate_name, gate in gates.items():
                row[(name, gate_name)] = evaluate(current, gate, baseline)
            print(f"  {pr.name} / {name}: scanned in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        rows.append(row)
        shutil.rmtree(root)
    return rows


def print_table(rows: list[dict[str, Any]], encoders: list[str]) -> None:
    columns = [(encoder, gate) for encoder in encoders for gate in gate_configs()]
    print("| PR | expected | " + " | ".join(f"{e} {g}" for e, g in columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for row in rows:
        expected = "pass" if row["clean"] else "fail"
        print(f"| {row['pr']} | {expected} | " + " | ".join(cell(row[column]) for column in columns) + " |")
    print()
    for encoder in encoders:
        parts = []
        for gate in gate_configs():
            clean = [row for row in rows if row["clean"]]
            bad = [row for row in rows if not row["clean"]]
            blocked = sum(not row[(encoder, gate)].passed for row in clean)
            caught = sum(not row[(encoder, gate)].passed for row in bad)
            parts.append(f"{gate}: clean blocked {blocked}/{len(clean)}, bad caught {caught}/{len(bad)}")
        print(f"summary {encoder}: " + "; ".join(parts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, help="photos in <class>/file layout (e.g. Oxford 17 flowers)")
    parser.add_argument("--per-class", type=int, default=30, help="base images per class (60/20/20 split)")
    parser.add_argument("--model-file", type=Path, help="a real CNN for --encoder onnx (NHWC, 0-255, 224 px)")
    parser.add_argument("--workdir", type=Path, help="default: a temporary folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="generated pictures, built-in encoder only")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="auditor-pr-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.smoke:
        args.source, args.per_class, args.model_file = generate_source(work / "source"), 12, None
    if args.source is None:
        parser.error("--source is required (or --smoke)")
    started = time.perf_counter()
    configs = encoder_configs(work / "cache", args.model_file)
    excluded = natural_copies(args.source, configs, work)
    base = build_base(args.source, work / "base", args.per_class, excluded, args.seed)
    size = sum(len(base.files(split)) for split in SPLITS)
    print(f"source {args.source}: {len(excluded)} images in natural copies left out; base {size} images, "
          f"{len(base.spare)} classes; encoders {', '.join(configs)}")
    rows = run_pull_requests(base, work, configs, args.seed)
    print(f"\n{len(rows)} pull requests in {time.perf_counter() - started:.0f} s\n")
    print_table(rows, list(configs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
