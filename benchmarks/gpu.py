"""End-to-end embedding throughput on a GPU (or the CPU): auditor's embedding path beside a tuned loop.

Generates N photo-like JPEGs (smooth random colour fields, blurred shapes, sensor-like noise; 256-640 px a side,
deterministic per index, written by parallel workers) and, in one run, measures for each precision:

  auditor   ``auditor.embed.embedding.embed_files`` (no cache) with ``ClipEncoder``: worker processes re-hash,
            decode (``open_rgb``, JPEG draft) and preprocess to float32 in numpy; the main process stacks a
            batch, copies it to the device and runs the model, batch after batch.
  tuned     the same decode and the same resize/crop in torch DataLoader workers, but handed over as uint8
            (a quarter of the bytes) in pinned memory, copied on a side CUDA stream while the previous batch
            computes, normalised on the device; vectors stay on the device until the end (no sync per batch).
  model     the model alone on preprocessed batches already on the device: the ceiling both paths approach.
  builtin   auditor's weights-free encoder through ``embed_files``, for comparison (CPU only).

The CLIP model is open_clip ViT-B-32 built with ``pretrained=None``: the same compute as the released weights,
no download. Per-image stage costs (read+hash, decode, preprocess) are measured on one core on a sample; the
model time is the model-only rate. fp16 runs on CUDA, bf16 where the device supports it.

    python benchmarks/gpu.py --device cuda            # 20,000 images, the GPU run (meant to fit in 5 minutes)
    python benchmarks/gpu.py --device cpu --images 256 --precisions fp32
    python benchmarks/gpu.py --smoke                  # CPU, 24 tiny images, ViT-S-32: the code path in seconds (CI)
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from embed import content_keyed, every_vector  # benchmarks/embed.py: files keyed as a scan keys them
from PIL import Image, ImageDraw, ImageFilter

from auditor.embed.embedding import embed_files
from auditor.ingest.images import open_rgb, sha256_file

NOISE_SIDE = 704  # the shared noise tile: larger than any generated image


def _noise_tile() -> np.ndarray:
    """One fixed tile of sensor-like noise; each image adds a crop of it at its own offset (cheaper than drawing
    fresh noise per image, and still deterministic)."""
    return np.random.default_rng(12345).normal(0, 6, (NOISE_SIDE, NOISE_SIDE, 3)).astype(np.int16)


_NOISE: np.ndarray | None = None


def photo_like(index: int, low: int, high: int) -> Image.Image:
    """A smooth colour field, a few blurred shapes and noise: compresses and decodes like a photo."""
    global _NOISE
    if _NOISE is None:
        _NOISE = _noise_tile()
    rng = np.random.default_rng(index)
    width, height = (int(x) for x in rng.integers(low, high + 1, 2))
    coarse = rng.uniform(0, 255, (int(rng.integers(2, 6)), int(rng.integers(2, 6)), 3)).astype(np.uint8)
    image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
    pen = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 9))):
        x0, y0 = rng.uniform(-0.2, 1.0) * width, rng.uniform(-0.2, 1.0) * height
        box = (x0, y0, x0 + rng.uniform(0.1, 0.6) * width, y0 + rng.uniform(0.1, 0.6) * height)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (pen.ellipse if rng.random() < 0.5 else pen.rectangle)(box, fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 2.0))))
    top, left = (int(x) for x in rng.integers(0, NOISE_SIDE - max(width, height) + 1, 2))
    noisy = np.asarray(image, dtype=np.int16) + _NOISE[top : top + height, left : left + width]
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def _write_one(job: tuple[Path, int, int, int]) -> Path:
    root, index, low, high = job
    path = root / f"img_{index:06d}.jpg"
    photo_like(index, low, high).save(path, quality=88)
    return path


def generate(root: Path, count: int, low: int, high: int, workers: int) -> list[Path]:
    jobs = [(root, i, low, high) for i in range(count)]
    if workers <= 1:
        return [_write_one(job) for job in jobs]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        return pool.map(_write_one, jobs, chunksize=64)


class Uint8Crops:
    """The tuned loader's dataset: auditor's decode and resize/crop, returned as uint8 CHW (normalised later,
    on the device). Module level so DataLoader workers can pickle it."""

    def __init__(self, paths: list[Path], size: int, max_pixels: int) -> None:
        self.paths, self.size, self.max_pixels = paths, size, max_pixels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Any:
        import torch

        image = open_rgb(self.paths[index], self.max_pixels, (self.size, self.size))[0]
        return torch.from_numpy(np.ascontiguousarray(uint8_crop(image, self.size).transpose(2, 0, 1)))


def uint8_crop(image: Image.Image, size: int) -> np.ndarray:
    """ClipPreprocessor's shortest-side bicubic resize and centre crop, without the float conversion."""
    width, height = image.size
    scale = size / min(width, height)
    new_size = (max(size, round(width * scale)), max(size, round(height * scale)))
    image = image.resize(new_size, Image.Resampling.BICUBIC)
    left, top = (new_size[0] - size) // 2, (new_size[1] - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)))


def synchronise(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def autocast(device: str, precision: str) -> Any:
    import contextlib

    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def tuned_embed(encoder: Any, paths: list[Path], batch_size: int, workers: int, max_pixels: int) -> np.ndarray:
    """Parallel uint8 decode, pinned memory, copy on a side stream overlapping the previous batch's compute."""
    import torch
    from torch.utils.data import DataLoader

    device = encoder.device
    cuda = device == "cuda"
    loader = DataLoader(Uint8Crops(paths, encoder.size, max_pixels), batch_size=batch_size, num_workers=workers,
                        pin_memory=cuda, prefetch_factor=4 if workers else None,
                        multiprocessing_context="fork" if workers else None)
    mean = torch.tensor(encoder.mean, device=device).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(encoder.std, device=device).view(1, 3, 1, 1) * 255.0
    copy_stream = torch.cuda.Stream() if cuda else None
    out = torch.empty((len(paths), encoder.dim), device=device)

    def staged(batches: Iterator[Any]) -> Iterator[Any]:
        """Yield each batch on the device, the next one's copy already queued on the side stream."""
        pending = None
        for batch in batches:
            if copy_stream is None:
                yield batch
                continue
            with torch.cuda.stream(copy_stream):
                moved = batch.to(device, non_blocking=True)
            if pending is not None:
                yield pending
            torch.cuda.current_stream().wait_stream(copy_stream)
            moved.record_stream(torch.cuda.current_stream())
            pending = moved
        if pending is not None:
            yield pending

    row = 0
    with torch.inference_mode():
        for batch in staged(iter(loader)):
            inputs = (batch.float() - mean) / std
            with autocast(device, encoder.precision):
                features = encoder.visual(inputs)
            out[row : row + len(features)] = features.float()
            row += len(features)
    vectors = out.cpu().numpy()
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def model_only_rate(encoder: Any, batch: np.ndarray, batches: int) -> float:
    """Images/s of the model on one preprocessed batch already on the device, repeated."""
    import torch

    tensor = torch.from_numpy(batch).to(encoder.device)
    with torch.inference_mode(), autocast(encoder.device, encoder.precision):
        encoder.visual(tensor)
        synchronise(encoder.device)
        started = time.perf_counter()
        for _ in range(batches):
            encoder.visual(tensor)
        synchronise(encoder.device)
    return batches * len(batch) / (time.perf_counter() - started)


def stage_costs(paths: list[Path], size: int, preprocess: Callable[[Image.Image], np.ndarray],
                max_pixels: int) -> dict[str, float]:
    """Milliseconds per image on one core: read+hash, decode (draft), auditor preprocess, tuned uint8 crop."""
    totals = dict.fromkeys(("read+hash", "decode", "preprocess auditor", "preprocess tuned"), 0.0)
    for path in paths:
        started = time.perf_counter()
        sha256_file(path)
        decoding = time.perf_counter()
        image = open_rgb(path, max_pixels, (size, size))[0]
        preprocessing = time.perf_counter()
        preprocess(image)
        cropping = time.perf_counter()
        uint8_crop(image, size)
        done = time.perf_counter()
        totals["read+hash"] += decoding - started
        totals["decode"] += preprocessing - decoding
        totals["preprocess auditor"] += cropping - preprocessing
        totals["preprocess tuned"] += done - cropping
    return {name: 1000 * total / len(paths) for name, total in totals.items()}


def precisions_for(device: str, asked: str) -> list[str]:
    import torch

    if asked != "auto":
        return [p for p in asked.split(",") if p]
    if device != "cuda":
        return ["fp32"]
    return ["fp32", "fp16"] + (["bf16"] if torch.cuda.is_bf16_supported() else [])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--min-side", type=int, default=256)
    parser.add_argument("--max-side", type=int, default=640)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--precisions", default="auto",
                        help="comma-separated fp32,fp16,bf16; auto: fp32 plus fp16 and bf16 where the device has them")
    parser.add_argument("--batch-size", type=int, default=0, help="0: 256 on CUDA, 32 on the CPU")
    parser.add_argument("--workers", type=int, default=0, help="loader workers for both paths; 0: the cores - 1")
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved auditor/tuned runs; medians reported")
    parser.add_argument("--sample", type=int, default=200, help="images for the one-core stage costs")
    parser.add_argument("--no-builtin", action="store_true", help="skip the builtin encoder's run")
    parser.add_argument("--smoke", action="store_true",
                        help="CPU, 24 images of 48-96 px, ViT-S-32, batch 8, 2 workers: checks the code path runs")
    args = parser.parse_args()
    if args.smoke:
        args.images, args.min_side, args.max_side, args.device, args.precisions = 24, 48, 96, "cpu", "fp32"
        args.batch_size, args.workers, args.model, args.sample = 8, 2, "ViT-S-32", 8
    return args


def main() -> None:
    # Imported here: spawned workers re-import this script and should pay for light modules only.
    import torch

    from auditor.core.config import ScanConfig
    from auditor.embed.encoders.builtin import BuiltinEncoder
    from auditor.embed.encoders.clip import ClipEncoder, pick_device

    args = parse_args()
    device = pick_device(args.device)
    batch_size = args.batch_size or (256 if device == "cuda" else 32)
    workers = args.workers or max(1, (os.cpu_count() or 2) - 1)
    max_pixels = ScanConfig().max_image_pixels
    begun = time.perf_counter()
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {os.cpu_count()} cores"
    print(f"device {device} ({name}), torch {torch.__version__}, {args.model} pretrained=None, "
          f"batch {batch_size}, {workers} loader workers, load average {os.getloadavg()[0]:.2f}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        paths = generate(Path(tmp), args.images, args.min_side, args.max_side, workers + 1)
        mean_kb = sum(p.stat().st_size for p in paths) / len(paths) / 1024
        print(f"generated {len(paths)} JPEGs of {args.min_side}-{args.max_side} px (mean {mean_kb:.0f} kB) "
              f"in {time.perf_counter() - started:.1f} s", flush=True)
        files = content_keyed(paths)
        ordered = list(files.values())

        rows: list[tuple[str, str, float, float]] = []  # path, precision, images/s, model-only images/s
        cosines: dict[str, float] = {}
        costs: dict[str, float] = {}
        for precision in precisions_for(device, args.precisions):
            encoder = ClipEncoder(None, model=args.model, device=device, precision=precision)
            preprocess = encoder.preprocessor()
            if not costs:
                costs = stage_costs(ordered[: args.sample], encoder.size, preprocess, max_pixels)
            batch = np.stack([preprocess(open_rgb(p, max_pixels, preprocess.draft_size)[0])
                              for p in ordered[:batch_size]])
            ceiling = model_only_rate(encoder, batch, max(3, min(20, len(paths) // batch_size)))
            tuned_embed(encoder, ordered[:batch_size], batch_size, 0, max_pixels)  # warm-up: kernels, allocator

            seconds: dict[str, list[float]] = {"auditor": [], "tuned": []}
            for _ in range(args.rounds):  # interleaved, medians kept: the machine may be shared
                started = time.perf_counter()
                auditor = every_vector(embed_files(files, encoder, None, batch_size, workers, max_pixels), files)
                seconds["auditor"].append(time.perf_counter() - started)
                started = time.perf_counter()
                tuned = tuned_embed(encoder, ordered, batch_size, workers, max_pixels)
                seconds["tuned"].append(time.perf_counter() - started)
            for path, times in seconds.items():
                rows.append((path, precision, len(paths) / statistics.median(times), ceiling))
            cosines[precision] = float(np.min(np.sum(auditor * tuned, axis=1)))
            print(f"  {precision}: auditor {rows[-2][2]:.1f} img/s, tuned {rows[-1][2]:.1f} img/s, "
                  f"model only {ceiling:.1f} img/s; load {os.getloadavg()[0]:.2f}", flush=True)
            del encoder
            if device == "cuda":
                torch.cuda.empty_cache()

        if not args.no_builtin:
            builtin = BuiltinEncoder()
            started = time.perf_counter()
            every_vector(embed_files(files, builtin, None, 64, workers, max_pixels), files)
            rows.append(("builtin", "fp32", len(paths) / (time.perf_counter() - started), float("nan")))

    print(f"\n{len(paths)} images, {device} ({name}), batch {batch_size}, {workers} loader workers, "
          f"load average {os.getloadavg()[0]:.2f}, whole run {time.perf_counter() - begun:.0f} s")
    print("one core, ms per image: " + ", ".join(f"{stage} {ms:.2f}" for stage, ms in costs.items()))
    cpu_side = {"auditor": costs["read+hash"] + costs["decode"] + costs["preprocess auditor"],
                "tuned": costs["decode"] + costs["preprocess tuned"]}
    print(f"loader ceiling ({workers} workers x one-core cost): "
          + ", ".join(f"{path} {workers * 1000 / ms:.0f} img/s" for path, ms in cpu_side.items()))
    print(f"{'path':<8} {'precision':<9} {'images/s':>9} {'model only':>10} {'model ms':>8} {'of model':>8}")
    for path, precision, rate, ceiling in rows:
        if ceiling == ceiling:  # not NaN: a CLIP row
            print(f"{path:<8} {precision:<9} {rate:9.1f} {ceiling:10.1f} {1000 / ceiling:8.3f} {rate / ceiling:8.2f}")
        else:
            print(f"{path:<8} {precision:<9} {rate:9.1f} {'-':>10} {'-':>8} {'-':>8}")
    rate_of = {(path, precision): rate for path, precision, rate, _ in rows}
    ratios = {p: rate_of[("tuned", p)] / rate_of[("auditor", p)] for p in cosines}
    print("tuned / auditor: " + ", ".join(f"{p} {r:.2f}x (min cosine {cosines[p]:.5f})" for p, r in ratios.items()))
    print(f"median tuned / auditor: {statistics.median(ratios.values()):.2f}x")


if __name__ == "__main__":
    main()
