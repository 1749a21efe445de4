"""Safe image reading: hash the bytes, decode with guards, normalise orientation and colour mode.

Every failure becomes an ``ImageInfo`` with ``readable=False`` and a human reason; nothing here
raises for a bad file, because one odd file must never stop a scan of a hundred thousand.
"""

from __future__ import annotations

import hashlib
import stat
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from auditor.properties import image_properties

# Pillow's own bomb check compares against a process-global; we do our own comparison against the
# configured limit and disable the global so both checks cannot disagree.
Image.MAX_IMAGE_PIXELS = None
ImageFile.LOAD_TRUNCATED_IMAGES = False

_HASH_CHUNK = 1 << 20


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
    # Pixel properties (``properties.PROPERTIES``) measured on the decoded image; empty when unreadable.
    properties: dict[str, float] = field(default_factory=dict)


class ImageDecodeError(Exception):
    """Raised by ``open_rgb`` with a reason fit for an ``unreadable`` finding."""


def sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; high-bit-depth greys are rescaled, not clipped."""
    if image.mode == "RGB":
        return image
    if image.mode in {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}:
        array = np.asarray(image, dtype=np.float64)
        low, high = float(array.min()), float(array.max())
        scaled = (array - low) / (high - low) * 255.0 if high > low else np.zeros_like(array)
        return Image.fromarray(scaled.astype(np.uint8)).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in {"RGBA", "LA", "PA", "RGBa", "La"}:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def open_rgb(
    path: Path, max_pixels: int, draft_size: tuple[int, int] | None = None
) -> tuple[Image.Image, str | None, str]:
    """Decode ``path`` to an upright RGB image; returns (image, format, original mode).

    ``draft_size`` lets JPEG decoding skip detail the caller will discard (Pillow's draft mode).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image: Image.Image = Image.open(path)
            width, height = image.size
            if width <= 0 or height <= 0:
                raise ImageDecodeError(f"invalid dimensions {width}x{height}")
            if width * height > max_pixels:
                raise ImageDecodeError(
                    f"decompression bomb guard: {width}x{height} = {width * height:,} pixels "
                    f"exceeds the limit of {max_pixels:,} (scan.max_image_pixels)"
                )
            fmt, mode = image.format, image.mode
            if draft_size is not None and fmt == "JPEG":
                image.draft("RGB", draft_size)
            image.load()
            try:
                image = ImageOps.exif_transpose(image)
            except Exception:  # noqa: BLE001 - a corrupt EXIF block must not lose a decodable image
                pass
            return _to_rgb(image), fmt, mode
    except ImageDecodeError:
        raise
    except UnidentifiedImageError:
        raise ImageDecodeError("not an image Pillow can identify (wrong extension or corrupt header)") from None
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(f"decompression bomb: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, struct.error) as exc:
        message = str(exc) or type(exc).__name__
        raise ImageDecodeError(f"decode failed: {message}") from None


def read_discovered(max_pixels: int, max_file_bytes: int, item: tuple[Path, str | None]) -> ImageInfo:
    """Read a discovered (path, problem) pair; a problem found at discovery is reported as is."""
    path, problem = item
    if problem is not None:
        return ImageInfo(None, None, False, problem)
    return read_image(path, max_pixels, max_file_bytes)


def read_image(path: Path, max_pixels: int, max_file_bytes: int) -> ImageInfo:
    """Hash, decode and fingerprint one file; never raises for a bad file."""
    try:
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):
            # Opening a FIFO or a device would block or never end; only regular files are read.
            return ImageInfo(None, None, False, "not a regular file (a pipe, socket or device)")
        size_on_disk = status.st_size
        if size_on_disk > max_file_bytes:
            return ImageInfo(None, size_on_disk, False, f"file is {size_on_disk:,} bytes, over scan.max_file_bytes")
        sha, size = sha256_file(path)
    except OSError as exc:
        return ImageInfo(None, None, False, f"cannot read file: {exc.strerror or exc}")
    if size == 0:
        return ImageInfo(sha, 0, False, "empty file (0 bytes)")
    try:
        image, fmt, mode = open_rgb(path, max_pixels)
    except ImageDecodeError as exc:
        return ImageInfo(sha, size, False, str(exc))
    except Exception as exc:  # noqa: BLE001 - Pillow plugins raise odd types on hostile input
        return ImageInfo(sha, size, False, f"decode failed: {type(exc).__name__}: {exc}")
    import imagehash  # imported on use: it pulls in scipy, which every spawned worker would pay for

    pixels = np.asarray(image)
    pixel_digest = hashlib.sha256(f"{image.width}x{image.height}".encode() + pixels.tobytes()).hexdigest()
    return ImageInfo(
        sha256=sha,
        size_bytes=size,
        readable=True,
        width=image.width,
        height=image.height,
        format=fmt,
        mode=mode,
        pixel_sha256=pixel_digest,
        phash=str(imagehash.phash(image)),
        dhash=str(imagehash.dhash(image)),
        properties=image_properties(image),
    )
