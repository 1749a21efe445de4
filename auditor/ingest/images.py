"""Safe image reading: hash the bytes, decode with guards, normalise orientation and colour mode.

Every failure becomes an ``ImageInfo`` with ``readable=False`` and a human reason; nothing here
raises for a bad file, because one odd file must never stop a scan of a hundred thousand.

Memory per image is bounded by its pixel count: Pillow keeps at most 4 bytes per decoded pixel, and
the conversion to 8-bit RGB (another 4 bytes per pixel in Pillow) runs in strips of about a million
pixels, so decoding holds at most ``MAX_BYTES_PER_PIXEL`` bytes per pixel plus a few MB, whatever the
bit depth; ``scan.max_image_pixels`` caps the pixels before anything is decoded.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import ExifTags, Image, ImageFile, UnidentifiedImageError

from auditor.ingest.properties import Pixels, pixel_properties

# Pillow's own bomb check compares against a process-global; we do our own comparison against the
# configured limit and disable the global so both checks cannot disagree.
Image.MAX_IMAGE_PIXELS = None
ImageFile.LOAD_TRUNCATED_IMAGES = False

# The raster formats auditor reads (Pillow plugin names; JPEG also opens cameras' multi-picture MPO).
# Pillow can identify many more, some of which run external programs (EPS runs Ghostscript), so
# every open names these: a file whose content is anything else is unreadable, whatever its name.
SUPPORTED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF")
# Decoded image (at most 4 bytes per pixel in Pillow) plus its RGB copy (4 bytes per pixel).
MAX_BYTES_PER_PIXEL = 8
_STRIP_PIXELS = 1 << 20
_HASH_CHUNK = 1 << 20
_HIGH_BIT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
# The levelled hash works on a grey copy this many pixels square (a box average: the quantile below
# costs nothing, and pHash/dHash shrink further anyway).
_LEVEL_SIZE = 64
# ...levelled at its own lower quartile: every tone at or above it becomes white, the rest is scaled
# by it. A brightness gain scales the quartile with the tones, so the levelled image is unchanged as
# long as what the gain saturates stays above the quartile (up to three quarters of the image may clip).
_LEVEL_QUANTILE = 0.25
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
# EXIF orientation -> the transpose that makes the image upright (as ImageOps.exif_transpose does).
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_NOT_REGULAR = "not a regular file (a pipe, socket or device)"
_OUTSIDE = "symlink points outside the dataset; not followed"


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What the read stage learns about one file."""

    sha256: str | None
    size_bytes: int | None
    readable: bool
    reason: str | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    mode: str | None = None
    pixel_sha256: str | None = None
    phash: str | None = None
    dhash: str | None = None
    # pHash + dHash of the image levelled to its own tones (``levelled_hash``): survives brightening.
    levelled_hash: str | None = None
    # pHash + dHash of the picture mirrored left to right: a flipped copy hashes like the original's mirror
    # (``Hashes`` says what every hash reads).
    mirror_hash: str | None = None
    # Pixel properties (``properties.PROPERTIES``) measured on the decoded image; empty when unreadable.
    properties: dict[str, float] = field(default_factory=dict)


class ImageDecodeError(Exception):
    """Raised by ``open_rgb`` with a reason fit for an ``unreadable`` finding."""


class FileRefused(Exception):
    """Raised by ``open_checked`` when a file must not be read (not regular, or leaves the dataset)."""


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _opened_path(fd: int, path: Path) -> str:
    """Where the open descriptor really points: /proc knows on Linux; elsewhere resolve and compare."""
    proc = f"/proc/self/fd/{fd}"
    if os.path.islink(proc):
        return os.readlink(proc)
    real = os.path.realpath(path)
    opened, named = os.fstat(fd), os.stat(real)
    if (opened.st_dev, opened.st_ino) != (named.st_dev, named.st_ino):
        raise FileRefused("file was replaced while being opened")
    return real


@contextmanager
def open_checked(path: Path, root: Path | None = None) -> Iterator[BinaryIO]:
    """Open a regular file for reading; with ``root``, refuse it unless the opened file lies inside.

    The check runs on the opened descriptor, not the name, so a file swapped for a symlink after
    discovery cannot lead the scan outside the dataset. Non-blocking open: a FIFO never hangs.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FileRefused(_NOT_REGULAR)
        if root is not None and not _within(_opened_path(fd, path), os.path.realpath(root)):
            raise FileRefused(_OUTSIDE)
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle


def sha256_handle(handle: BinaryIO) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := handle.read(_HASH_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def sha256_file(path: Path) -> tuple[str, int]:
    with open(path, "rb") as handle:
        return sha256_handle(handle)


def _strip_to_rgb(strip: Image.Image, extrema: tuple[float, float] | None) -> Image.Image:
    """One strip in RGB; high-bit-depth greys are rescaled by the whole image's range, not clipped."""
    if extrema is not None:
        low, high = extrema
        array = np.asarray(strip, dtype=np.float64)
        scaled = (array - low) / (high - low) * 255.0 if high > low else np.zeros_like(array)
        return Image.fromarray(scaled.astype(np.uint8)).convert("RGB")
    if strip.mode == "P" and "transparency" in strip.info:
        strip = strip.convert("RGBA")
    if strip.mode in _ALPHA_MODES:
        rgba = strip.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return strip.convert("RGB")


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, a strip at a time so no full-size temporary exists."""
    if image.mode == "RGB":
        return image
    extrema = None
    if image.mode in _HIGH_BIT_MODES:
        low, high = image.getextrema()
        extrema = (float(low), float(high))  # type: ignore[arg-type]
    width, height = image.size
    rows = max(1, _STRIP_PIXELS // width)
    if height <= rows:
        return _strip_to_rgb(image, extrema)
    rgb = Image.new("RGB", image.size)
    for top in range(0, height, rows):
        box = (0, top, width, min(height, top + rows))
        rgb.paste(_strip_to_rgb(image.crop(box), extrema), box[:2])
    return rgb


def _orientation(image: Image.Image) -> int | None:
    try:
        value = image.getexif().get(ExifTags.Base.Orientation)
    except Exception:  # noqa: BLE001 - a corrupt EXIF block must not lose a decodable image
        return None
    return value if isinstance(value, int) else None


def open_rgb(
    path: Path | BinaryIO, max_pixels: int, draft_size: tuple[int, int] | None = None
) -> tuple[Image.Image, str | None, str]:
    """Decode ``path`` (or an open binary file) to an upright RGB image; returns (image, format, mode).

    ``draft_size`` lets JPEG decoding skip detail the caller will discard (Pillow's draft mode).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image: Image.Image = Image.open(path, formats=SUPPORTED_FORMATS)
            width, height = image.size
            if width <= 0 or height <= 0:
                raise ImageDecodeError(f"invalid dimensions {width}x{height}")
            if width * height > max_pixels:
                raise ImageDecodeError(
                    f"decompression bomb guard: {width}x{height} = {width * height:,} pixels "
                    f"exceeds the limit of {max_pixels:,} (scan.max_image_pixels)"
                )
            fmt, mode = image.format, image.mode
            if draft_size is not None and fmt in {"JPEG", "MPO"}:
                image.draft("RGB", draft_size)
            image.load()
            orientation = _orientation(image)
            rgb = _to_rgb(image)
            del image  # the decoded original goes before the transpose makes a second RGB copy
            if orientation in _ORIENTATION:
                rgb = rgb.transpose(_ORIENTATION[orientation])
            return rgb, fmt, mode
    except ImageDecodeError:
        raise
    except UnidentifiedImageError:
        raise ImageDecodeError(
            "not an image auditor reads: the content is not JPEG, PNG, GIF, BMP, WebP or TIFF "
            "(wrong extension, another format, or a corrupt header)"
        ) from None
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(f"decompression bomb: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, struct.error) as exc:
        message = str(exc) or type(exc).__name__
        raise ImageDecodeError(f"decode failed: {message}") from None


def read_discovered(
    max_pixels: int, max_file_bytes: int, item: tuple[Path, str | None], root: Path | None = None
) -> ImageInfo:
    """Read a discovered (path, problem) pair; a problem found at discovery is reported as is."""
    path, problem = item
    if problem is not None:
        return ImageInfo(None, None, False, problem)
    return read_image(path, max_pixels, max_file_bytes, root)


def _pixel_sha256(image: Image.Image) -> str:
    """Hash of the size and RGB bytes, a strip at a time (no full-size copy of the pixels)."""
    digest = hashlib.sha256(f"{image.width}x{image.height}".encode())
    rows = max(1, _STRIP_PIXELS // image.width)
    for top in range(0, image.height, rows):
        digest.update(image.crop((0, top, image.width, min(image.height, top + rows))).tobytes())
    return digest.hexdigest()


def levelled_hash(image: Image.Image) -> str:
    """pHash + dHash (32 hex digits) of ``image`` levelled to its own tones (see ``_LEVEL_QUANTILE``).

    Plain perceptual hashes move when a copy is brightened and light tones clip to white (a low-resolution
    scan's anti-aliased strokes vanish into the background), so a brightened copy hashes like a stranger.
    Levelling divides the gain out and clips both images at the same tone, which the duplicates check
    compares as a second pixel-based distance.
    """
    import imagehash  # imported on use, as in read_image

    grey = np.asarray(image.convert("L").resize((_LEVEL_SIZE, _LEVEL_SIZE), Image.Resampling.BOX), np.float64)
    level = max(float(np.quantile(grey, _LEVEL_QUANTILE)), 1.0)
    levelled = Image.fromarray(np.round(np.minimum(grey, level) * (255.0 / level)).astype(np.uint8))
    return f"{imagehash.phash(levelled)}{imagehash.dhash(levelled)}"


@dataclass(frozen=True, slots=True)
class Hashes:
    """An image's perceptual hashes, read from the picture inside any uniform frame or letterbox (``Pixels.
    content_box``): two unrelated photos sharing a black frame must not hash alike, while a photo with and
    without its frame still does. The mirror hashes read the same picture flipped left to right, the most
    common augmentation, so the duplicates check can compare each image with the other's mirror (pHash +
    dHash: the levelled hash answers brightening, which a mirrored copy seldom adds)."""

    phash: str
    dhash: str
    levelled: str
    mirror: str

    @classmethod
    def of(cls, image: Image.Image, box: tuple[int, int, int, int]) -> Hashes:
        import imagehash  # imported on use: it pulls in scipy, which every spawned worker would pay for

        picture = image if box == (0, 0, image.width, image.height) else image.crop(box)
        mirrored = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return cls(str(imagehash.phash(picture)), str(imagehash.dhash(picture)), levelled_hash(picture),
                   f"{imagehash.phash(mirrored)}{imagehash.dhash(mirrored)}")


def read_image(path: Path, max_pixels: int, max_file_bytes: int, root: Path | None = None) -> ImageInfo:
    """Hash, decode and fingerprint one file; never raises for a bad file.

    With ``root`` (the dataset folder) the opened file must lie inside it, however its name resolves.
    Bytes are hashed and decoded from one open descriptor, so the hash describes the decoded content.
    """
    try:
        with open_checked(path, root) as handle:
            size_on_disk = os.fstat(handle.fileno()).st_size
            if size_on_disk > max_file_bytes:
                return ImageInfo(None, size_on_disk, False,
                                 f"file is {size_on_disk:,} bytes, over scan.max_file_bytes")
            sha, size = sha256_handle(handle)
            if size == 0:
                return ImageInfo(sha, 0, False, "empty file (0 bytes)")
            handle.seek(0)
            try:
                image, fmt, mode = open_rgb(handle, max_pixels)
            except ImageDecodeError as exc:
                return ImageInfo(sha, size, False, str(exc))
            except Exception as exc:  # noqa: BLE001 - Pillow plugins raise odd types on hostile input
                return ImageInfo(sha, size, False, f"decode failed: {type(exc).__name__}: {exc}")
    except FileRefused as exc:
        return ImageInfo(None, None, False, str(exc))
    except OSError as exc:
        return ImageInfo(None, None, False, f"cannot read file: {exc.strerror or exc}")
    pixels = Pixels.from_image(image)
    hashes = Hashes.of(image, pixels.content_box)
    return ImageInfo(
        sha256=sha,
        size_bytes=size,
        readable=True,
        width=image.width,
        height=image.height,
        format=fmt,
        mode=mode,
        pixel_sha256=_pixel_sha256(image),
        phash=hashes.phash,
        dhash=hashes.dhash,
        levelled_hash=hashes.levelled,
        mirror_hash=hashes.mirror,
        properties=pixel_properties(pixels),
    )
