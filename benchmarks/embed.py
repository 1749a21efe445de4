"""Embedding throughput: auditor's embedding stage against the model's ceiling and a naive loop.

Generates N photo-like 640x480 JPEGs (gradients, shapes, sensor-like noise, quality 90) and, in one
run, measures with the same OpenCLIP model (untrained weights, the same compute as the pretrained
ones) and the same batch size:

  (a) model only: already-preprocessed tensors through the model (the ceiling),
  (b) naive loop: PIL open + open_clip's own preprocess transform + encode, batch by batch,
  (c) auditor: ``auditor.embed.embedding.embed_files`` with no cache and the default workers,

and the opt-in faster precisions (model only, plus end to end for each), with their cosine
similarity to the fp32 embeddings. Measurements are interleaved (a, b, c, ... per round) and
medians reported, because the machine may be shared; the load average is printed alongside.

    python benchmarks/embed.py [--images 128] [--rounds 3] [--batch-size 32] [--precisions bf16,int8]
    python benchmarks/embed.py --smoke   # 4 images, one round, ViT-S-32: the same code path in seconds (CI)

The files are keyed by their content hash, as a scan keys them (``content_keyed``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from auditor.embed.embedding import EmbeddingResult, embed_files
from auditor.ingest.images import open_rgb, sha256_file

WIDTH, HEIGHT = 640, 480


def photo_like(seed: int) -> Image.Image:
    """Smooth lighting, a few blurred objects and sensor noise: compresses and decodes like a photo."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xs / WIDTH + np.sin(angle) * ys / HEIGHT + 1.0) / 2.0
    low, high = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    base = low + ramp[..., None] * (high - low)
    image = Image.fromarray(base.astype(np.uint8))
    pen = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(4, 10))):
        x0, y0 = rng.uniform(-100, WIDTH), rng.uniform(-100, HEIGHT)
        box = (x0, y0, x0 + rng.uniform(40, 320), y0 + rng.uniform(40, 240))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (pen.ellipse if rng.random() < 0.5 else pen.rectangle)(box, fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 2.5))))
    noisy = np.asarray(image, dtype=np.float32) + rng.normal(0, 6, (HEIGHT, WIDTH, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def generate(root: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        path = root / f"img_{i:04d}.jpg"
        photo_like(i).save(path, quality=90)
        paths.append(path)
    return paths


def batches(items: list[Path], size: int) -> list[list[Path]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def timed(function: Callable[[], np.ndarray]) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    vectors = function()
    return time.perf_counter() - started, vectors


def content_keyed(paths: list[Path]) -> dict[str, Path]:
    """Each file under its sha256, as a scan keys them: the embedding stage re-hashes a file before decoding
    it and refuses one whose bytes differ from its key."""
    files = {sha256_file(path)[0]: path for path in paths}
    if len(files) != len(paths):
        raise SystemExit("generated images are not all distinct: the benchmark would embed fewer than asked")
    return files


def every_vector(result: EmbeddingResult, files: dict[str, Path]) -> np.ndarray:
    """The vectors in ``files`` order; a file the stage refused ends the run (a figure on fewer images misleads)."""
    if result.failures:
        raise SystemExit(f"the embedding stage refused {len(result.failures)} file(s): "
                         f"{next(iter(result.failures.values()))}")
    return np.stack([result.vectors[key] for key in files])


def main() -> None:
    # Imported here: spawned loader workers re-import this script, and should pay for light modules only.
    from auditor.core.config import EncoderConfig, ScanConfig

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=EncoderConfig().batch_size)
    parser.add_argument("--workers", type=int, default=EncoderConfig().workers)
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--precisions", default="bf16,int8", help="comma-separated; empty for none")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes (4 images, 1 round, batch 4, ViT-S-32, int8): checks the code path runs")
    args = parser.parse_args()
    if args.smoke:
        args.images, args.rounds, args.batch_size, args.model, args.precisions = 4, 1, 4, "ViT-S-32", "int8"

    import torch
    from open_clip.transform import PreprocessCfg, image_transform_v2

    from auditor.embed.encoders.base import l2_normalise
    from auditor.embed.encoders.clip import ClipEncoder

    max_pixels = ScanConfig().max_image_pixels
    encoder = ClipEncoder(None, model=args.model, device="cpu")
    others = {p: ClipEncoder(None, model=args.model, device="cpu", precision=p)
              for p in args.precisions.split(",") if p}
    naive_transform = image_transform_v2(PreprocessCfg(**encoder.visual.preprocess_cfg), is_train=False)

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        paths = generate(Path(tmp), args.images)
        mean_kb = sum(p.stat().st_size for p in paths) / len(paths) / 1024
        print(f"generated {len(paths)} {WIDTH}x{HEIGHT} JPEGs (mean {mean_kb:.0f} kB) "
              f"in {time.perf_counter() - started:.1f} s")
        files = content_keyed(paths)
        preprocess = encoder.preprocessor()
        inputs = [
            np.stack([preprocess(open_rgb(p, max_pixels, preprocess.draft_size)[0]) for p in group])
            for group in batches(paths, args.batch_size)
        ]

        def model_only(model: ClipEncoder) -> Callable[[], np.ndarray]:
            return lambda: np.concatenate([model.embed(batch) for batch in inputs])

        def naive() -> np.ndarray:
            out = []
            for group in batches(paths, args.batch_size):
                tensor = torch.stack([naive_transform(Image.open(p)) for p in group])
                with torch.no_grad():
                    out.append(l2_normalise(encoder.visual(tensor).numpy()))
            return np.concatenate(out)

        def auditor(model: ClipEncoder) -> Callable[[], np.ndarray]:
            def run() -> np.ndarray:
                return every_vector(embed_files(files, model, None, args.batch_size, args.workers, max_pixels),
                                    files)
            return run

        plans: dict[str, Callable[[], np.ndarray]] = {
            "a: model only": model_only(encoder), "b: naive loop": naive, "c: auditor": auditor(encoder),
        }
        for name, model in others.items():
            plans[f"a: model only {name}"] = model_only(model)
            plans[f"c: auditor {name}"] = auditor(model)
        for model in [encoder, *others.values()]:  # warm-up: first calls build kernels
            model.embed(inputs[0][: min(8, len(inputs[0]))])
        naive_transform(Image.open(paths[0]))

        seconds: dict[str, list[float]] = {name: [] for name in plans}
        vectors: dict[str, np.ndarray] = {}
        loads = []
        for round_ in range(args.rounds):
            for name, plan in plans.items():
                elapsed, vectors[name] = timed(plan)
                seconds[name].append(elapsed)
            loads.append(os.getloadavg()[0])
            print(f"round {round_ + 1} (img/s): "
                  + ", ".join(f"{name} {len(paths) / times[-1]:.2f}" for name, times in seconds.items())
                  + f"; load {loads[-1]:.2f}", flush=True)

    rate = {name: len(paths) / statistics.median(times) for name, times in seconds.items()}
    print(f"\n{args.model}, batch {args.batch_size}, {args.workers} loader workers, {len(paths)} images, "
          f"{args.rounds} rounds, torch threads {torch.get_num_threads()}, cores {os.cpu_count()}, "
          f"load average per round {', '.join(f'{x:.2f}' for x in loads)}")
    for name, value in rate.items():
        print(f"  {name:<24} {value:7.2f} img/s (median)")

    def ratio(faster: str, slower: str) -> str:
        """Throughput ratio: of medians, and per round (each round's pair ran back to back)."""
        rounds = [t_slow / t_fast for t_fast, t_slow in zip(seconds[faster], seconds[slower], strict=True)]
        return (f"{rate[faster] / rate[slower]:.3f} (rounds: {', '.join(f'{r:.2f}' for r in rounds)}; "
                f"median {statistics.median(rounds):.3f})")

    print(f"  c/a = {ratio('c: auditor', 'a: model only')}   target >= 0.85")
    print(f"  c/b = {ratio('c: auditor', 'b: naive loop')}   target >= 1.3")
    reference = vectors["c: auditor"]
    naive_cos = np.sum(vectors["b: naive loop"] * reference, axis=1)
    print(f"  cosine auditor vs naive preprocessing (fp32): "
          f"mean {naive_cos.mean():.5f}, min {naive_cos.min():.5f}")
    for name in others:
        cos = np.sum(vectors[f"c: auditor {name}"] * reference, axis=1)
        print(f"  {name}: model-only speedup {ratio(f'a: model only {name}', 'a: model only')}")
        print(f"  {name}: end-to-end speedup {ratio(f'c: auditor {name}', 'c: auditor')}   target >= 1.3")
        print(f"  {name}: end to end vs naive fp32 loop {ratio(f'c: auditor {name}', 'b: naive loop')}")
        print(f"  {name}: cosine to fp32 mean {cos.mean():.5f}, min {cos.min():.5f}   target >= 0.99")


if __name__ == "__main__":
    main()
