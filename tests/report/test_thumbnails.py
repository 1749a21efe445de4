"""HTML report thumbnails: small WebP data URIs of dataset images, within a byte budget, never of files outside
the dataset."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image

from auditor.report.thumbnails import MAX_THUMB_BYTES, THUMB_PX, Thumbnailer
from tests.conftest import draw_shape

MAX_PIXELS = 50_000_000


def _dataset(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    draw_shape("circle", 1, size=400).save(root / "a.png")
    draw_shape("square", 2, size=64).save(root / "b.png")
    return root


def _decoded(uri: str) -> Image.Image:
    prefix = "data:image/webp;base64,"
    assert uri.startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(uri[len(prefix):])))


def test_a_readable_image_becomes_a_small_webp_data_uri(tmp_path: Path) -> None:
    thumbs = Thumbnailer(_dataset(tmp_path), {"a.png": True}, MAX_PIXELS)
    uri = thumbs.uri("a.png")
    assert uri is not None and len(uri) <= MAX_THUMB_BYTES * 4 // 3 + 30
    image = _decoded(uri)
    assert image.format == "WEBP" and max(image.size) <= THUMB_PX
    assert thumbs.used == len(uri)


def test_no_thumbnail_without_a_root_or_for_unreadable_missing_or_outside_files(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    draw_shape("triangle", 3).save(tmp_path / "secret.png")
    (root / "link.png").symlink_to(tmp_path / "secret.png")
    readable = {"a.png": True, "b.png": False, "gone.png": True, "link.png": True, "../secret.png": True}
    thumbs = Thumbnailer(root, readable, MAX_PIXELS)
    refused = ("b.png", "gone.png", "link.png", "../secret.png", "unknown.png", None)
    assert [thumbs.uri(path) for path in refused] == [None] * len(refused)
    assert Thumbnailer(None, readable, MAX_PIXELS).uri("a.png") is None
    assert thumbs.used == 0


def test_each_use_is_charged_and_the_budget_runs_out(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    size = len(Thumbnailer(root, {"a.png": True}, MAX_PIXELS).uri("a.png") or "")
    thumbs = Thumbnailer(root, {"a.png": True}, MAX_PIXELS, budget_bytes=2 * size)
    assert thumbs.uri("a.png") is not None and thumbs.uri("a.png") is not None
    assert thumbs.uri("a.png") is None
    assert (thumbs.used, thumbs.omitted) == (2 * size, 1)
    thumbs.restart(size)
    assert thumbs.uri("a.png") is not None and (thumbs.used, thumbs.omitted) == (size, 0)
