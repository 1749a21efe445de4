"""Per-image pixel properties, computed once in the read workers from the pixels they already decoded.

Every property is one small function of a ``Pixels`` view (the image shrunk to at most ``ANALYSIS_SIDE``
pixels a side, as RGB and luminance in 0..1, plus the original size) and one line in ``PROPERTIES``;
each becomes a float column of ``images.parquet`` (NaN for an unreadable file). Measuring at one bounded
scale keeps the stage cheap and makes scale-dependent measures (sharpness) comparable between images of
different sizes. Checks (``image_quality``) decide what is unusual from these columns relative to the
dataset; nothing here holds a threshold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from PIL import Image

# Longest side the properties are measured at; larger images are shrunk (box filter) first.
ANALYSIS_SIDE = 256
# A border row/column is uniform when its pixels' standard deviation is at most this (0..1 scale, for an
# image using the full range; scaled down with the image's own luminance range) and its mean is within
# this of the outermost row/column's. Real bars are digital constants (about one 8-bit level of JPEG
# noise); a plain studio or sky background carries sensor noise above this.
_BORDER_TOLERANCE = 0.006
# Below this luminance a pixel is clipped black; above 1 minus it, clipped white (8-bit: 5 levels).
_CLIP = 0.02
# Bars must leave at least this share of each dimension to the picture between them.
_MIN_CONTENT = 0.2
# A row next to a bar is a picture's edge when nearly all of it (this share) differs from the bar by more than
# this luminance (0..1; about 25 8-bit levels); a frame's inner edge may fade over a few rows, so the picture's
# edge is looked for this many rows in (analysis scale).
_FRAME_EDGE_ROWS = 4
_FRAME_EDGE_SHARE = 0.9
_FRAME_CONTRAST = 0.1
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class Pixels:
    """One decoded image at analysis scale; derived arrays are computed on first use and shared."""

    rgb: np.ndarray  # float32, (h, w, 3), 0..1
    width: int  # original size, before shrinking
    height: int

    @classmethod
    def from_image(cls, image: Image.Image) -> Pixels:
        width, height = image.size
        scale = ANALYSIS_SIDE / max(width, height)
        if scale < 1.0:
            # One exact scale for every larger image, so per-pixel measures (sharpness) compare across sizes.
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = image.resize(size, Image.Resampling.BOX, reducing_gap=2.0)
        return cls(np.asarray(image, dtype=np.float32) / 255.0, width, height)

    @cached_property
    def luminance(self) -> np.ndarray:
        """Rec. 601 luma, as Pillow's "L" conversion."""
        return self.rgb @ _LUMA

    @cached_property
    def bars(self) -> tuple[int, int, int, int]:
        """Rows at the top and bottom, columns at the left and right, taken by uniform bars on opposite
        edges (see ``border_fraction``)."""
        lum = self.luminance
        low, high = _levels_percentiles(_histogram(lum), (1, 99))
        # Uniform means uniform for this image: a dim picture's own rows are nearly flat in absolute terms.
        tolerance = _BORDER_TOLERANCE * min(1.0, max(float(high - low), 0.1))
        return (*_bar_pair(lum, tolerance), *_bar_pair(lum.T, tolerance))

    @cached_property
    def content_box(self) -> tuple[int, int, int, int]:
        """The picture inside its frame as a (left, top, right, bottom) box of the original image (the whole
        image when it has none): a frame or letterbox shared by two unrelated photos must not make them
        look alike, so hashes and the built-in descriptor read only this. Only bars that end at a picture
        edge count (``_frames``): an object on a plain background is not cropped to the object, or two
        drawings of it at different places would become one."""
        top, bottom, left, right = self.bars
        rows, columns = self.rgb.shape[:2]
        # The picture inside every bar, away from its edges (a resized copy's soft edge must not decide): as flat
        # as a bar, it is a plain shape filling its bounding box on a plain background: nothing to crop to.
        edge = _FRAME_EDGE_ROWS
        inner = self.luminance[top + edge:rows - bottom - edge, left + edge:columns - right - edge]
        if top + bottom + left + right == 0 or inner.size == 0 or float(inner.std()) <= 2 * _BORDER_TOLERANCE:
            return 0, 0, self.width, self.height
        # Each pair of bars is judged along the picture between the other pair.
        framed_rows = _frames(self.luminance[:, left:columns - right], top, bottom)
        framed_columns = _frames(self.luminance[top:rows - bottom].T, left, right)
        top, bottom = (top, bottom) if framed_rows else (0, 0)
        left, right = (left, right) if framed_columns else (0, 0)
        if not (framed_rows or framed_columns):
            return 0, 0, self.width, self.height
        # A bar row at analysis scale is uniform over every original row it averages, so the box rounds
        # inwards only as far as the bars reach.
        x_scale, y_scale = self.width / columns, self.height / rows
        return (round(left * x_scale), round(top * y_scale), round((columns - right) * x_scale),
                round((rows - bottom) * y_scale))

    @cached_property
    def content_rgb(self) -> np.ndarray:
        """The picture inside its bars: exposure, sharpness and the rest describe it, not the letterbox."""
        top, bottom, left, right = self.bars
        height, width = self.rgb.shape[:2]
        inner = self.rgb[top:height - bottom, left:width - right]
        return inner if min(inner.shape[:2]) > 0 else self.rgb

    @cached_property
    def content(self) -> np.ndarray:
        """Luminance of ``content_rgb``."""
        return self.content_rgb @ _LUMA

    @cached_property
    def content_histogram(self) -> np.ndarray:
        """Counts of ``content`` at each of 256 8-bit levels: percentiles and entropy read it."""
        return _histogram(self.content)

    @cached_property
    def channel_max(self) -> np.ndarray:
        """Brightest channel of each ``content_rgb`` pixel (elementwise: a reduction over a last axis of 3
        is several times slower in numpy)."""
        rgb = self.content_rgb
        return np.asarray(np.maximum(np.maximum(rgb[..., 0], rgb[..., 1]), rgb[..., 2]))

    @cached_property
    def channel_min(self) -> np.ndarray:
        """Darkest channel of each ``content_rgb`` pixel."""
        rgb = self.content_rgb
        return np.asarray(np.minimum(np.minimum(rgb[..., 0], rgb[..., 1]), rgb[..., 2]))


def _histogram(lum: np.ndarray) -> np.ndarray:
    return np.bincount(np.clip(lum * 255.0 + 0.5, 0, 255).astype(np.uint8).ravel(), minlength=256)


def _levels_percentiles(histogram: np.ndarray, quantiles: tuple[float, ...]) -> tuple[float, ...]:
    """Percentiles (0..100) of 8-bit levels from their histogram, in 0..1: exact to one level."""
    cumulative = np.cumsum(histogram)
    ranks = np.asarray(quantiles, dtype=np.float64) / 100.0 * (cumulative[-1] - 1)
    return tuple(float(level) / 255.0 for level in np.searchsorted(cumulative, ranks, side="right"))


def luminance_p05(pixels: Pixels) -> float:
    """5th percentile of luminance: high only when even the darkest parts are bright (overexposure)."""
    return _levels_percentiles(pixels.content_histogram, (5,))[0]


def luminance_p95(pixels: Pixels) -> float:
    """95th percentile of luminance: low only when even the brightest parts are dark (underexposure)."""
    return _levels_percentiles(pixels.content_histogram, (95,))[0]


def brightness(pixels: Pixels) -> float:
    """Mean luminance."""
    return float(pixels.content.mean())


def highlight_fraction(pixels: Pixels) -> float:
    """Share of pixels with a channel blown to white: detail lost to overexposure (sensors clip per channel,
    so a saturated bright colour is blown before its luminance reaches white)."""
    return float(np.mean(pixels.channel_max >= 1.0 - _CLIP))


def shadow_fraction(pixels: Pixels) -> float:
    """Share of pixels crushed to black in every channel: detail lost to underexposure."""
    return float(np.mean(pixels.channel_max <= _CLIP))


def sharpness(pixels: Pixels) -> float:
    """How abrupt the image's strongest edges are: mean absolute Laplacian over mean gradient magnitude of
    luminance at its 5% strongest-gradient pixels (about 1/edge width, per pixel at analysis scale). Blur
    widens every edge, so it falls; measured at the edges, it ignores flat regions, noise elsewhere,
    contrast and brightness, so a dim or soft-backgrounded sharp photo is not called blurry."""
    lum = pixels.content
    if min(lum.shape) < 3:
        return float("nan")
    gy, gx = np.gradient(lum)
    gradient = np.hypot(gx, gy)[1:-1, 1:-1]
    laplacian = np.abs(lum[1:-1, :-2] + lum[1:-1, 2:] + lum[:-2, 1:-1] + lum[2:, 1:-1] - 4.0 * lum[1:-1, 1:-1])
    flat = gradient.ravel()
    k = int(0.95 * (flat.size - 1))
    strongest = gradient >= np.partition(flat, k)[k]
    edge = float(gradient[strongest].mean())
    if edge < 1e-4:
        return float("nan")  # a flat image has no edges to be sharp or blurred
    return float(laplacian[strongest].mean() / edge)


def entropy(pixels: Pixels) -> float:
    """Shannon entropy (bits, 0..8) of the 8-bit luminance histogram: near 0 for a blank frame."""
    counts = pixels.content_histogram
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0: a blank frame measures 0, not -0


def colourfulness(pixels: Pixels) -> float:
    """Hasler and Suesstrunk's colourfulness (0..1 scale): 0 for a greyscale image."""
    r, g, b = pixels.content_rgb[..., 0], pixels.content_rgb[..., 1], pixels.content_rgb[..., 2]
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def colour_fraction(pixels: Pixels) -> float:
    """Share of pixels whose channels differ by more than 3 of 255 levels: 0 for a greyscale image stored
    as RGB (JPEG rounding stays within that), and well above 0 for a colour picture however dim."""
    return float(np.mean((pixels.channel_max - pixels.channel_min) > 3.0 / 255.0))


def aspect_ratio(pixels: Pixels) -> float:
    """Width over height of the original image."""
    return pixels.width / pixels.height


def border_fraction(pixels: Pixels) -> float:
    """Share of the image area taken by uniform bars of one colour on two opposite edges (letterboxing,
    pillarboxing, centred padding). A bar must face a bar of the same colour, so a clear sky above a
    field is not a border; one-sided padding is not measured."""
    height, width = pixels.rgb.shape[:2]
    inner_height, inner_width = pixels.content_rgb.shape[:2]
    return 1.0 - float(inner_height * inner_width) / float(height * width)


def _bar_pair(lum: np.ndarray, tolerance: float) -> tuple[int, int]:
    """Leading and trailing rows of ``lum`` that are uniform bars of one brightness ((0, 0) unless both
    ends have one)."""
    means, spreads = lum.mean(axis=1), lum.std(axis=1)
    start = _uniform_run(means, spreads, tolerance)
    end = _uniform_run(means[::-1], spreads[::-1], tolerance)
    if start == 0 or end == 0 or abs(float(means[0] - means[-1])) > tolerance:
        return 0, 0
    if start + end > (1.0 - _MIN_CONTENT) * len(lum):
        return 0, 0  # a near-blank frame with a speck is blank, not a letterbox around the speck
    return start, end


def _frames(lum: np.ndarray, start: int, end: int) -> bool:
    """Whether bars of ``start`` leading and ``end`` trailing rows frame a picture: on each side, most of one of
    the ``_FRAME_EDGE_ROWS`` rows next to the bar differs from the bar (a picture edge), as a photo's edge does
    and a plain background around an object does not."""
    if start == 0 or end == 0:
        return False
    bar = float(lum[0].mean())
    inner = lum[start : len(lum) - end]
    differing = np.abs(inner - bar) > _FRAME_CONTRAST
    share = differing.mean(axis=1)
    edge = _FRAME_EDGE_ROWS
    return bool(min(share[:edge].max(), share[-edge:].max()) >= _FRAME_EDGE_SHARE)


def _uniform_run(means: np.ndarray, spreads: np.ndarray, tolerance: float) -> int:
    """How many leading rows are uniform and as bright as the first."""
    uniform = (spreads <= tolerance) & (np.abs(means - means[0]) <= tolerance)
    if not uniform[0]:
        return 0
    breaks = np.flatnonzero(~uniform)
    return int(breaks[0]) if len(breaks) else len(uniform)


@dataclass(frozen=True)
class Property:
    column: str
    compute: Callable[[Pixels], float]


# The registry: one line per property, in images.parquet column order.
PROPERTIES: tuple[Property, ...] = (
    Property("brightness", brightness),
    Property("luminance_p05", luminance_p05),
    Property("luminance_p95", luminance_p95),
    Property("highlight_fraction", highlight_fraction),
    Property("shadow_fraction", shadow_fraction),
    Property("sharpness", sharpness),
    Property("entropy", entropy),
    Property("colourfulness", colourfulness),
    Property("colour_fraction", colour_fraction),
    Property("aspect_ratio", aspect_ratio),
    Property("border_fraction", border_fraction),
)

PROPERTY_COLUMNS: tuple[str, ...] = tuple(p.column for p in PROPERTIES)


def pixel_properties(pixels: Pixels) -> dict[str, float]:
    """Every registered property of one image at analysis scale."""
    return {p.column: p.compute(pixels) for p in PROPERTIES}


def image_properties(image: Image.Image) -> dict[str, float]:
    """Every registered property of one decoded RGB image."""
    return pixel_properties(Pixels.from_image(image))


def content_box(image: Image.Image) -> tuple[int, int, int, int]:
    """``Pixels.content_box`` of one decoded RGB image."""
    return Pixels.from_image(image).content_box
