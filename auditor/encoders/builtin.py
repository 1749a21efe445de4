"""Weights-free, deterministic image descriptor: the offline fallback when CLIP weights are absent.

It captures layout (multi-scale colour and grey thumbnails), shape (histograms of gradient
orientation) and palette (hue/saturation/brightness histograms). It sees appearance, not meaning:
it separates classes that look different and is far weaker than CLIP on real photos.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from auditor.encoders.base import l2_normalise

VERSION = 1
_SIDE = 64
_ORIENTATION_BINS = 9


def _unit(block: np.ndarray) -> np.ndarray:
    flat = block.astype(np.float32).ravel()
    return flat / max(float(np.linalg.norm(flat)), 1e-6)


def _thumbnail(channels: np.ndarray, size: int) -> np.ndarray:
    """Block-average (H, W, C) down to (size, size, C)."""
    height, width, depth = channels.shape
    return channels.reshape(size, height // size, size, width // size, depth).mean(axis=(1, 3))


def _orientation_histograms(grey: np.ndarray, grid: int) -> np.ndarray:
    gy, gx = np.gradient(grey)
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), np.pi)
    bins = np.minimum((angle / np.pi * _ORIENTATION_BINS).astype(np.int64), _ORIENTATION_BINS - 1)
    cell = grey.shape[0] // grid
    cell_index = (np.arange(grey.shape[0]) // cell)[:, None] * grid + (np.arange(grey.shape[1]) // cell)[None, :]
    flat_index = cell_index * _ORIENTATION_BINS + bins
    hist = np.bincount(flat_index.ravel(), weights=magnitude.ravel(), minlength=grid * grid * _ORIENTATION_BINS)
    hist = hist.reshape(grid * grid, _ORIENTATION_BINS)
    hist = hist / np.maximum(np.linalg.norm(hist, axis=1, keepdims=True), 1e-6)
    return np.sqrt(hist).ravel()


def _palette(rgb: np.ndarray) -> np.ndarray:
    high = rgb.max(axis=2)
    low = rgb.min(axis=2)
    chroma = high - low
    saturation = np.where(high > 1e-6, chroma / np.maximum(high, 1e-6), 0.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    safe = np.maximum(chroma, 1e-6)
    hue = np.select(
        [high == r, high == g],
        [np.mod((g - b) / safe, 6.0), (b - r) / safe + 2.0],
        default=(r - g) / safe + 4.0,
    ) / 6.0
    hue_bins = np.minimum((hue * 12).astype(np.int64), 11)
    hue_hist = np.bincount(hue_bins.ravel(), weights=saturation.ravel(), minlength=12)
    value_hist = np.histogram(high, bins=8, range=(0.0, 1.0))[0].astype(np.float64)
    return np.concatenate([np.sqrt(hue_hist / max(hue_hist.sum(), 1e-6)), np.sqrt(value_hist / value_hist.sum())])


@dataclass(frozen=True)
class BuiltinPreprocessor:
    draft_size: tuple[int, int] | None = (_SIDE * 2, _SIDE * 2)

    def __call__(self, image: Image.Image) -> np.ndarray:
        small = image.convert("RGB").resize((_SIDE, _SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
        rgb = np.asarray(small, dtype=np.float32) / 255.0
        grey = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        opponent = np.stack(
            [grey, (rgb[..., 0] - rgb[..., 1]) / 2.0, (rgb[..., 0] + rgb[..., 1] - 2 * rgb[..., 2]) / 4.0], axis=2
        )
        grey16 = _thumbnail(grey[..., None], 16).ravel()
        blocks = [
            (_unit(_thumbnail(opponent, 4)), 1.0),
            (_unit(_thumbnail(opponent, 8)), 1.0),
            (_unit(grey16 - grey16.mean()), 1.0),
            (_unit(_orientation_histograms(grey, 4)), 1.5),
            (_unit(_orientation_histograms(grey, 2)), 1.0),
            (_unit(_orientation_histograms(grey, 1)), 1.0),
            (_unit(_palette(rgb)), 1.0),
        ]
        return np.concatenate([block * weight for block, weight in blocks]).astype(np.float32)


class BuiltinEncoder:
    """Deterministic hand-made descriptor; no weights, no network."""

    identity = f"builtin:v{VERSION}"
    pretrained = False

    def __init__(self) -> None:
        probe = BuiltinPreprocessor()(Image.new("RGB", (8, 8)))
        self.dim = int(probe.shape[0])

    def preprocessor(self) -> BuiltinPreprocessor:
        return BuiltinPreprocessor()

    def embed(self, batch: np.ndarray) -> np.ndarray:
        return l2_normalise(batch)
