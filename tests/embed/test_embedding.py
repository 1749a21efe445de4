"""The fast embedding paths give the same answers as the plain ones: worker loader, draft decoding, int8."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from auditor.embed.embedding import embed_files
from tests.conftest import draw_shape

LIMIT = 89_478_485


@pytest.fixture(scope="module")
def untrained_clip():  # type: ignore[no-untyped-def]
    from auditor.embed.encoders.clip import ClipEncoder

    return ClipEncoder(None, model="ViT-B-32", device="cpu")


def _mixed_files(root: Path) -> tuple[dict[str, Path], str]:
    """More files than one loader chunk, mixed formats and sizes (draft-mode JPEGs included), one corrupt.

    Keyed by content hash, as the embedding stage requires (it refuses a file whose bytes changed);
    returns the files and the corrupt one's key.
    """
    from auditor.ingest.images import sha256_file

    files = {}
    for i in range(13):
        shape = ("circle", "square", "triangle")[i % 3]
        image = draw_shape(shape, i, size=96 + 40 * i).resize((96 + 40 * i, 80 + 30 * i))
        path = root / f"{i:02d}.{'jpg' if i % 2 else 'png'}"
        image.save(path)
        files[sha256_file(path)[0]] = path
    broken = root / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    broken_key = sha256_file(broken)[0]
    files[broken_key] = broken
    return files, broken_key


@pytest.mark.slow
def test_worker_loader_gives_the_same_embeddings_as_in_process(tmp_path: Path, untrained_clip) -> None:  # type: ignore[no-untyped-def]
    files, broken = _mixed_files(tmp_path)
    serial = embed_files(files, untrained_clip, None, batch_size=4, workers=0, max_pixels=LIMIT)
    pooled = embed_files(files, untrained_clip, None, batch_size=4, workers=2, max_pixels=LIMIT)
    assert list(serial.vectors) == list(pooled.vectors) == [k for k in files if k != broken]
    for key in serial.vectors:
        np.testing.assert_array_equal(serial.vectors[key], pooled.vectors[key])
    assert set(serial.failures) == set(pooled.failures) == {broken}
    assert serial.failures[broken] == pooled.failures[broken]
    assert (serial.embedded, pooled.embedded) == (13, 13)


@pytest.mark.slow
def test_draft_decoded_jpeg_embeds_like_open_clip_full_decode(tmp_path: Path, untrained_clip) -> None:  # type: ignore[no-untyped-def]
    """A 640x480 JPEG is decoded at half scale by draft mode; the embedding must not notice."""
    import open_clip

    from auditor.ingest.images import open_rgb

    path = tmp_path / "photo.jpg"
    draw_shape("triangle", 5, size=480).resize((640, 480)).save(path, quality=90)
    preprocess = untrained_clip.preprocessor()
    drafted, _, _ = open_rgb(path, LIMIT, preprocess.draft_size)
    assert drafted.size == (320, 240)  # draft mode really applied
    _, _, reference = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    theirs = reference(Image.open(path)).numpy()
    embedded = untrained_clip.embed(np.stack([preprocess(drafted), theirs]))
    assert float(embedded[0] @ embedded[1]) > 0.99


@pytest.mark.slow
def test_int8_precision_is_close_to_fp32_and_keyed_apart(tmp_path: Path, untrained_clip) -> None:  # type: ignore[no-untyped-def]
    from auditor.embed.encoders.clip import ClipEncoder

    quantised = ClipEncoder(None, model="ViT-B-32", device="cpu", precision="int8")
    assert quantised.identity != untrained_clip.identity and ":int8:" in quantised.identity
    files, broken = _mixed_files(tmp_path)
    del files[broken]
    reference = embed_files(files, untrained_clip, None, batch_size=8, workers=0, max_pixels=LIMIT).vectors
    fast = embed_files(files, quantised, None, batch_size=8, workers=0, max_pixels=LIMIT).vectors
    cosines = np.array([float(reference[k] @ fast[k]) for k in files])
    assert cosines.min() > 0.99
    first = next(iter(files))
    assert not np.array_equal(reference[first], fast[first])  # it really is a different computation


def test_cpu_threads_never_exceed_the_allowed_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import torch

    from auditor.embed.encoders import clip

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    try:
        torch.set_num_threads(2)
        clip._limit_cpu_threads()
        assert torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        torch.set_num_threads(2)
        clip._limit_cpu_threads()
        assert torch.get_num_threads() == 2  # the user's explicit choice wins
    finally:
        torch.set_num_threads(before)


def test_loader_worker_modules_stay_light() -> None:
    """A spawned loader worker imports these; pandas, pydantic or torch there cost ~0.5 s per worker."""
    code = (
        "import sys, pickle, auditor.embed.embedding, auditor.embed.encoders.clip\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "heavy = sorted(loaded & {'pandas', 'pydantic', 'torch', 'pyarrow'})\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
