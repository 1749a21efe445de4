"""Weights-free, deterministic image descriptor: the offline fallback when CLIP weights are absent.

It captures layout (multi-scale colour and grey thumbnails), shape (histograms of gradient
orientation, and the rotation-invariant Fourier spectrum of the global orientation histogram over
colour edges), texture (rotation-invariant local binary patterns) and palette (hue/saturation/brightness
histograms). It sees appearance, not meaning:
it separates classes that look different and is far weaker than CLIP on real photos.

It describes the picture inside any uniform frame or letterbox (``properties.content_box``): a black photo
frame is a large share of a thumbnail, and two unrelated photos sharing one must not look alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from auditor.embed.encoders.base import unit_rows
from auditor.ingest.properties import content_box

VERSION = 3
_SIDE = 64
_ORIENTATION_BINS = 9


def _unit(block: np.ndarray) -> np.ndarray:
    flat = block.astype(np.float32).ravel()
    return flat / max(float(np.linalg.norm(flat)), 1e-6)


def _thumbnail(channels: np.ndarray, size: int) -> np.ndarray:
    """Block-average (H, W, C) down to (size, size, C)."""
    height, width, depth = channels.shape
    return np.asarray(channels.reshape(size, height // size, size, width // size, depth).mean(axis=(1, 3)))


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
    return np.asarray(np.sqrt(hist).ravel())


def _colour_gradients(opponent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the gradient of whichever opponent channel changes most (colour edges count too)."""
    gys, gxs = [], []
    for c in range(opponent.shape[2]):
        gy, gx = np.gradient(opponent[..., c] * (1.0 if c == 0 else 2.0))
        gys.append(gy)
        gxs.append(gx)
    gy, gx = np.stack(gys), np.stack(gxs)
    mag = np.hypot(gx, gy)
    best = mag.argmax(axis=0)[None]
    return np.take_along_axis(gx, best, 0)[0], np.take_along_axis(gy, best, 0)[0]


def _orientation_spectrum(gx: np.ndarray, gy: np.ndarray, bins: int = 36, harmonics: int = 12) -> np.ndarray:
    """Magnitudes of the Fourier series of the global orientation histogram: rotation invariant.

    A shape with k-fold symmetric edges (square: 2 orientations 90 deg apart) puts energy in harmonic k.
    """
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), np.pi)
    index = np.minimum((angle / np.pi * bins).astype(np.int64), bins - 1)
    hist = np.bincount(index.ravel(), weights=magnitude.ravel(), minlength=bins)
    spectrum = np.abs(np.fft.rfft(hist))
    return np.asarray(spectrum[1 : harmonics + 1] / max(spectrum[0], 1e-6))


def _lbp_histograms(grey: np.ndarray, radius: int) -> np.ndarray:
    """Rotation-invariant uniform local binary patterns (riu2, 8 neighbours): local texture."""
    h, w = grey.shape
    centre = grey[radius : h - radius, radius : w - radius]
    offsets = [(-radius, 0), (-radius, radius), (0, radius), (radius, radius), (radius, 0), (radius, -radius),
               (0, -radius), (-radius, -radius)]
    bits = np.stack([
        grey[radius + dy : h - radius + dy, radius + dx : w - radius + dx] >= centre + 0.02 for dy, dx in offsets
    ]).astype(np.int64)
    transitions = np.abs(np.diff(np.concatenate([bits, bits[:1]]), axis=0)).sum(axis=0)
    ones = bits.sum(axis=0)
    code = np.where(transitions <= 2, ones, 9)
    hist = np.bincount(code.ravel(), minlength=10).astype(np.float64)
    return np.asarray(np.sqrt(hist / hist.sum()))


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
        image = image.convert("RGB")
        box = content_box(image)
        if box != (0, 0, image.width, image.height):
            image = image.crop(box)
        small = image.resize((_SIDE, _SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
        rgb = np.asarray(small, dtype=np.float32) / 255.0
        grey = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        opponent = np.stack(
            [grey, (rgb[..., 0] - rgb[..., 1]) / 2.0, (rgb[..., 0] + rgb[..., 1] - 2 * rgb[..., 2]) / 4.0], axis=2
        )
        grey16 = _thumbnail(grey[..., None], 16).ravel()
        gx, gy = _colour_gradients(opponent)
        blocks = [
            (_unit(_thumbnail(opponent, 4)), 1.0),
            (_unit(_thumbnail(opponent, 8)), 1.0),
            (_unit(grey16 - grey16.mean()), 1.0),
            (_unit(_orientation_histograms(grey, 4)), 1.5),
            (_unit(_orientation_histograms(grey, 2)), 1.0),
            (_unit(_orientation_histograms(grey, 1)), 1.0),
            (_unit(_palette(rgb)), 1.0),
            (_unit(_orientation_spectrum(gx, gy)), 1.0),
            (_unit(np.concatenate([_lbp_histograms(grey, r) for r in (1, 2, 4)])), 1.0),
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
        return unit_rows(batch, "the builtin encoder")
