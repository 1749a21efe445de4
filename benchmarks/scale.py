"""Time per scan stage as the dataset grows, so users can predict the cost of a scan.

For each size N, generates N small images (48-px PNGs of random blocks, 10 class folders, so every
perceptual hash differs like photos do) with 512-d precomputed embeddings (class clusters, 1% of
images carrying another class's vector, 0.5% near-copies), runs the whole scan with those
embeddings and prints run.json's time per stage and per check. Separately measures, on a sample of
640x480 photo-like JPEGs, the read stage's cost per image and the CLIP embedding stage's throughput
(ViT-B-32, untrained weights, fp32 and int8), and extrapolates both to each N.

    python benchmarks/scale.py [--sizes 1000,10000] [--sample 64] [--workdir DIR]

``--vectors`` (the checks at scale, side by side with cleanlab's Datalab; see ``vectors.py`` here):

    nice python benchmarks/scale.py --vectors 1000,20000,100000 --datalab 1000,20000,100000 \
        --datalab-label 1000,20000
    nice python benchmarks/scale.py --vectors 1000000 --datalab 1000000 --datalab-timeout 900

``--smoke``: the scan timings at tiny sizes in seconds (150 images, 4 photos through ViT-S-32), so the code
path is checked; ``--vectors`` is ``vectors.py``'s comparison, whose own ``--smoke`` covers it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = 10
DIM = 512


def generate(root: Path, count: int, seed: int) -> Path:
    """Writes the images and returns the .npz of their embeddings keyed by dataset-relative path."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CLASSES, DIM))
    paths, vectors = [], []
    for i in range(count):
        label = i % CLASSES
        relative = f"class_{label}/img_{i:06d}.png"
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        blocks = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(blocks).resize((48, 48), Image.Resampling.NEAREST).save(root / relative)
        source = int(rng.integers(CLASSES)) if rng.random() < 0.01 else label
        if vectors and rng.random() < 0.005:
            vector = vectors[-1] + rng.normal(scale=0.01, size=DIM)
        else:
            vector = centres[source] + rng.normal(scale=1.2, size=DIM)
        paths.append(relative)
        vectors.append(vector)
    embeddings = root.parent / f"embeddings_{count}.npz"
    np.savez(embeddings, paths=np.array(paths), embeddings=np.asarray(vectors, dtype=np.float32))
    return embeddings


def scan_timings(work: Path, count: int) -> dict[str, float]:
    from auditor.core.config import load_config
    from auditor.scan import run_scan

    dataset = work / f"data_{count}"
    dataset.mkdir()
    started = time.perf_counter()
    embeddings = generate(dataset, count, seed=count)
    print(f"  generated {count} images in {time.perf_counter() - started:.1f} s", flush=True)
    config = load_config(overrides={
        "encoder": {"name": "precomputed", "precomputed_file": str(embeddings)},
        "scan": {"use_cache": False},
    })
    started = time.perf_counter()
    result = run_scan(dataset, config, work / f"out_{count}")
    total = time.perf_counter() - started
    timings = dict(result.run["timings_s"])
    checks = timings.pop("checks")
    flat = {k: float(v) for k, v in timings.items()} | {f"check {k}": float(v) for k, v in checks.items()}
    flat["total"] = total
    return flat


def photo_sample_rates(work: Path, sample: int, model: str = "ViT-B-32") -> dict[str, float]:
    """Seconds per image of the read and embedding stages, run as the scan runs them (default workers)."""
    from functools import partial

    from embed import generate as generate_photos  # benchmarks/embed.py, next to this script

    from auditor.core.config import EncoderConfig, ScanConfig
    from auditor.embed.embedding import embed_files
    from auditor.embed.encoders.clip import ClipEncoder
    from auditor.ingest.images import read_discovered, sha256_file
    from auditor.ingest.parallel import ordered_map

    folder = work / "photos"
    folder.mkdir()
    paths = generate_photos(folder, sample)
    limits = ScanConfig()
    reader = partial(read_discovered, limits.max_image_pixels, limits.max_file_bytes)
    started = time.perf_counter()
    list(ordered_map(reader, [(path, None) for path in paths], limits.workers, chunk_size=16))
    rates = {"read & hash": (time.perf_counter() - started) / sample}
    files = {sha256_file(p)[0]: p for p in paths}  # keyed as a scan keys them: the stage re-hashes each file
    defaults = EncoderConfig()
    for precision in ("fp32", "int8"):
        encoder = ClipEncoder(None, model=model, device="cpu", precision=precision)
        encoder.embed(np.stack([encoder.preprocessor()(Image.open(paths[0]).convert("RGB"))]))
        started = time.perf_counter()
        result = embed_files(files, encoder, None, defaults.batch_size, defaults.workers, limits.max_image_pixels)
        if result.embedded != len(files):
            raise SystemExit(f"the embedding stage embedded {result.embedded} of {len(files)} photos: "
                             f"{'; '.join(result.failures.values())}")
        rates[f"embed CLIP {model} {precision}"] = (time.perf_counter() - started) / sample
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--sample", type=int, default=64, help="photo-like JPEGs for the per-image rates")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--vectors", default=None,
                        help="sizes for the checks on in-memory vectors (no image files), e.g. 1000,20000,100000")
    parser.add_argument("--datalab", default="",
                        help="sizes (of --vectors) at which cleanlab's Datalab runs on the same vectors "
                             "(label + near_duplicate + outlier + class_imbalance)")
    parser.add_argument("--datalab-label", default="1000,20000",
                        help="sizes at which Datalab's label analysis alone runs too (issue 19's comparison)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per auditor run (--vectors)")
    parser.add_argument("--datalab-timeout", type=float, default=3600, help="seconds per Datalab run")
    parser.add_argument("--json", type=Path, default=None, help="also write the --vectors figures here")
    parser.add_argument("--data", choices=["modes", "isotropic"], default="modes", help="--vectors generator")
    parser.add_argument("--model", default="ViT-B-32", help="OpenCLIP model for the embedding rate (untrained)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes: 150 images, 4 photos, ViT-S-32 (checks the code path runs)")
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.sample, args.model = "150", 4, "ViT-S-32"
    if args.vectors:
        from vectors import compare  # benchmarks/vectors.py, next to this script

        compare([int(n) for n in args.vectors.split(",")], {int(n) for n in args.datalab.split(",") if n},
                {int(n) for n in args.datalab_label.split(",") if n}, args.timeout, args.datalab_timeout, args.json,
                args.data)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        measured = {}
        for count in sizes:
            print(f"N = {count}: load average {os.getloadavg()[0]:.2f}", flush=True)
            measured[count] = scan_timings(work, count)
        rates = photo_sample_rates(work, args.sample, args.model) if args.sample else {}
    stages = list(dict.fromkeys(k for timings in measured.values() for k in timings))
    print("\nmeasured, seconds (48-px PNGs, precomputed 512-d embeddings, default workers):")
    print(f"  {'stage':<28}" + "".join(f"{n:>12,}" for n in sizes))
    for stage in stages:
        print(f"  {stage:<28}" + "".join(f"{measured[n].get(stage, float('nan')):>12.2f}" for n in sizes))
    if rates:
        print(f"\nper-image cost on {args.sample} 640x480 photo-like JPEGs "
              f"(load average {os.getloadavg()[0]:.2f}), extrapolated linearly:")
        print(f"  {'stage':<28}{'ms/img':>10}" + "".join(f"{n:>12,}" for n in (1_000, 10_000, 100_000)))
        for stage, seconds in rates.items():
            print(f"  {stage:<28}{seconds * 1000:>10.1f}"
                  + "".join(f"{seconds * n:>11.0f}s" for n in (1_000, 10_000, 100_000)))


if __name__ == "__main__":
    main()
