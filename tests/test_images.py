from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from auditor.images import open_rgb, read_image
from tests.conftest import draw_shape

LIMIT = 89_478_485
MAX_BYTES = 1 << 30


def _bomb_png(side: int) -> bytes:
    import struct

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + (side + 7) // 8)
    idat = zlib.compress(row * side, 9)
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    "mode",
    ["RGB", "L", "P", "LA", "RGBA", "CMYK", "I;16", "I", "F", "1"],
)
def test_every_mode_becomes_rgb(tmp_path: Path, mode: str) -> None:
    base = draw_shape("circle", 1)
    if mode == "I;16":
        image = Image.fromarray(np.asarray(base.convert("L"), dtype=np.uint16) * 200)
    else:
        image = base.convert(mode)
    path = tmp_path / ("x.tif" if mode in {"CMYK", "I;16", "I", "F"} else "x.png")
    image.save(path)
    info = read_image(path, LIMIT, MAX_BYTES)
    assert info.readable, info.reason
    rgb, _, original_mode = open_rgb(path, LIMIT)
    assert rgb.mode == "RGB"
    assert rgb.size == (64, 64)
    # High-bit-depth greys are rescaled, not clipped to white.
    assert 0 < np.asarray(rgb).mean() < 255


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = Image.new("RGB", (40, 20), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif.tobytes())
    info = read_image(path, LIMIT, MAX_BYTES)
    assert (info.width, info.height) == (20, 40)


def test_transparent_palette_image(tmp_path: Path) -> None:
    image = draw_shape("square", 2).convert("P")
    image.info["transparency"] = 0
    path = tmp_path / "p.png"
    image.save(path, transparency=0)
    rgb, _, _ = open_rgb(path, LIMIT)
    assert rgb.mode == "RGB"


def test_hashes_are_stable_and_pixel_hash_ignores_container(tmp_path: Path) -> None:
    image = draw_shape("triangle", 3)
    image.save(tmp_path / "a.png")
    image.save(tmp_path / "b.png", compress_level=1)
    a, b = read_image(tmp_path / "a.png", LIMIT, MAX_BYTES), read_image(tmp_path / "b.png", LIMIT, MAX_BYTES)
    assert a.sha256 != b.sha256
    assert a.pixel_sha256 == b.pixel_sha256
    assert a.phash == b.phash and a.dhash == b.dhash


@pytest.mark.parametrize(
    ("name", "payload", "reason"),
    [
        ("zero.png", b"", "empty file"),
        ("text.jpg", b"hello, I am text\n" * 10, "not an image"),
        ("bomb.png", _bomb_png(10_000), "decompression bomb"),
    ],
    ids=["zero-byte", "text-as-jpg", "bomb"],
)
def test_bad_files_become_reasons(tmp_path: Path, name: str, payload: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(payload)
    info = read_image(path, LIMIT, MAX_BYTES)
    assert not info.readable
    assert info.reason is not None and reason in info.reason


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP", "TIFF"])
def test_truncated_files_are_unreadable(tmp_path: Path, fmt: str) -> None:
    buffer = io.BytesIO()
    draw_shape("circle", 4, size=128).save(buffer, format=fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    info = read_image(path, LIMIT, MAX_BYTES)
    assert not info.readable
    assert info.reason


def test_file_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    draw_shape("circle", 5).save(path)
    info = read_image(path, LIMIT, max_file_bytes=10)
    assert not info.readable and "max_file_bytes" in (info.reason or "")


def test_missing_file(tmp_path: Path) -> None:
    info = read_image(tmp_path / "gone.png", LIMIT, MAX_BYTES)
    assert not info.readable and "cannot read" in (info.reason or "")
