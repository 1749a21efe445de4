from __future__ import annotations

import io
import zlib
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageEnhance

from auditor.ingest.images import ImageInfo, levelled_hash, open_rgb, read_image
from tests.conftest import draw_photo, draw_shape, framed

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


def _grey16_png(path: Path, side: int) -> None:
    """A 16-bit greyscale PNG of side x side, streamed to disk (a few hundred kB for 36 M pixels)."""
    import struct

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = b"\x00" + bytes(range(256)) * (2 * side // 256) + b"\x00" * (2 * side % 256)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 16, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def test_decoding_memory_stays_within_the_documented_bound_per_pixel(tmp_path: Path) -> None:
    """A 16-bit image under the pixel limit once took ~20 bytes per pixel (float64 copies)."""
    import json
    import subprocess
    import sys

    from auditor.ingest.images import MAX_BYTES_PER_PIXEL

    side = 6000
    path = tmp_path / "deep.png"
    _grey16_png(path, side)
    assert path.stat().st_size < 2_000_000
    probe = (
        "import json, resource, sys\n"
        "from pathlib import Path\n"
        "import imagehash, numpy\n"
        "from auditor.ingest.images import read_image\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "info = read_image(Path(sys.argv[1]), 10**9, 1 << 30)\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(json.dumps({'readable': info.readable, 'reason': info.reason, 'grown': (after - before) * 1024}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)
    assert report["readable"], report["reason"]
    assert report["grown"] < side * side * MAX_BYTES_PER_PIXEL, report


def test_content_of_another_format_under_an_image_name_is_never_handed_to_pillow_plugins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EPS under a .png name would make Pillow run Ghostscript; only the supported rasters are tried."""
    from PIL import EpsImagePlugin

    calls: list[object] = []
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *args, **kwargs: calls.append(args))
    monkeypatch.setattr(EpsImagePlugin, "has_ghostscript", lambda: True)
    path = tmp_path / "vector.png"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n%%EndComments\n"
                     b"0 0 moveto 16 16 lineto stroke\nshowpage\n%%EOF\n")
    info = read_image(path, LIMIT, MAX_BYTES)
    assert not info.readable and info.format is None
    assert "not an image auditor reads" in (info.reason or "")
    assert calls == []


def _scan_8x8(seed: int) -> Image.Image:
    """A low-resolution scan: random dark strokes on white, 8x8, upscaled bicubic to 32 px (soft grey edges)."""
    cells = np.random.default_rng(seed).random((8, 8))
    ink = np.where(cells > 0.6, 255.0 * (cells - 0.6) / 0.4, 0.0)
    return Image.fromarray((255.0 - ink).astype(np.uint8)).resize((32, 32), Image.Resampling.BICUBIC).convert("RGB")


def _bits(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def test_levelled_hash_survives_brightening_that_clips_the_light_tones() -> None:
    """x1.3 brightness clips a scan's grey edges to white: the plain hashes move, the levelled one barely."""
    plain_moves, levelled_moves, strangers = [], [], []
    for seed in range(12):
        image = _scan_8x8(seed)
        bright = ImageEnhance.Brightness(image).enhance(1.3)
        assert (np.asarray(bright) == 255).mean() > (np.asarray(image) == 255).mean()  # light tones clipped
        plain_moves.append(_bits(str(imagehash.phash(image)) + str(imagehash.dhash(image)),
                                 str(imagehash.phash(bright)) + str(imagehash.dhash(bright))))
        levelled_moves.append(_bits(levelled_hash(image), levelled_hash(bright)))
        strangers.append(_bits(levelled_hash(image), levelled_hash(_scan_8x8(seed + 100))))
    assert np.median(levelled_moves) <= 4 < np.median(plain_moves)
    assert min(strangers) > max(levelled_moves)


def _read(path: Path) -> ImageInfo:
    return read_image(path, LIMIT, MAX_BYTES)


def test_a_shared_frame_does_not_make_unrelated_pictures_hash_alike(tmp_path: Path) -> None:
    framed(draw_photo(1)).save(tmp_path / "first_framed.png")
    framed(draw_photo(2)).save(tmp_path / "second_framed.png")
    draw_photo(1).save(tmp_path / "first.png")
    first, second, bare = (_read(tmp_path / f"{name}.png") for name in ("first_framed", "second_framed", "first"))
    assert first.phash is not None and first.dhash is not None and first.levelled_hash is not None
    # The same picture with and without its frame hashes alike; two pictures sharing a frame do not.
    assert first.phash + first.dhash == f"{bare.phash}{bare.dhash}"
    assert first.levelled_hash == bare.levelled_hash
    assert _bits(first.phash + first.dhash, f"{second.phash}{second.dhash}") >= 40


def test_the_mirror_hashes_are_the_hashes_of_the_mirrored_picture(tmp_path: Path) -> None:
    picture = draw_photo(3)
    picture.save(tmp_path / "picture.png")
    picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tmp_path / "mirrored.png")
    plain, mirrored = _read(tmp_path / "picture.png"), _read(tmp_path / "mirrored.png")
    assert plain.mirror_hash == f"{mirrored.phash}{mirrored.dhash}"
    assert mirrored.mirror_hash == f"{plain.phash}{plain.dhash}"
    # Plain hashes alone do not see a flipped copy.
    assert _bits(f"{plain.phash}{plain.dhash}", f"{mirrored.phash}{mirrored.dhash}") >= 30
