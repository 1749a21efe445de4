"""Encoders: builtin determinism, the real open_clip path with untrained weights, offline resolution."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from auditor.core.config import EncoderConfig, load_config
from auditor.core.errors import EncoderUnavailable
from auditor.embed.cache import EmbeddingCache
from auditor.embed.embedding import embed_files
from auditor.embed.encoders import build_encoder
from auditor.embed.encoders.builtin import BuiltinEncoder
from auditor.ingest.images import sha256_file
from auditor.scan import run_scan
from tests.conftest import draw_shape, write_class_folder

LIMIT = 89_478_485


def test_builtin_is_deterministic_normalised_and_separates_shapes(tmp_path: Path) -> None:
    encoder = BuiltinEncoder()
    pre = encoder.preprocessor()
    batch = np.stack([pre(draw_shape(s, 100 * c + i)) for c, s in enumerate(("circle", "square")) for i in range(6)])
    first, second = encoder.embed(batch), encoder.embed(batch)
    np.testing.assert_array_equal(first, second)
    assert first.dtype == np.float32 and first.shape == (12, encoder.dim)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-5)
    # Nearest neighbour of every image (excluding itself) has the same shape.
    sims = first @ first.T
    np.fill_diagonal(sims, -1)
    nearest = sims.argmax(axis=1)
    assert ((nearest < 6) == (np.arange(12) < 6)).mean() >= 0.9


@pytest.fixture(scope="module")
def untrained_clip():  # type: ignore[no-untyped-def]
    from auditor.embed.encoders.clip import ClipEncoder

    return ClipEncoder(None, model="ViT-B-32", device="cpu")


@pytest.mark.slow
def test_open_clip_untrained_path_embeds_and_caches(tmp_path: Path, untrained_clip) -> None:  # type: ignore[no-untyped-def]
    assert untrained_clip.pretrained is False
    assert "untrained" in untrained_clip.identity
    files = {}
    for i, shape in enumerate(("circle", "square", "triangle")):
        path = tmp_path / f"{shape}.jpg"
        draw_shape(shape, i, size=300).save(path)
        files[sha256_file(path)[0]] = path  # keyed by content, as the embedding stage checks
    cache = EmbeddingCache(tmp_path / "cache")
    first = embed_files(files, untrained_clip, cache, batch_size=2, workers=0, max_pixels=LIMIT)
    assert (first.embedded, first.from_cache) == (3, 0)
    vectors = np.stack([first.vectors[k] for k in files])
    assert vectors.shape == (3, 512) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    second = embed_files(files, untrained_clip, cache, batch_size=2, workers=0, max_pixels=LIMIT)
    assert (second.embedded, second.from_cache) == (0, 3)


@pytest.mark.slow
def test_our_clip_preprocessing_matches_open_clip(untrained_clip) -> None:  # type: ignore[no-untyped-def]
    import open_clip
    import torch

    _, _, reference = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    image = draw_shape("triangle", 7, size=320).resize((320, 250))
    ours = torch.from_numpy(untrained_clip.preprocessor()(image))
    theirs = reference(image)
    assert ours.shape == theirs.shape == (3, 224, 224)
    assert torch.nn.functional.cosine_similarity(ours.flatten(), theirs.flatten(), dim=0) > 0.995
    embedded = untrained_clip.embed(np.stack([ours.numpy(), theirs.numpy()]))
    assert float(embedded[0] @ embedded[1]) > 0.99


def test_missing_weights_fail_fast_with_instructions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", "/nonexistent-hub-cache")
    started = time.perf_counter()
    with pytest.raises(EncoderUnavailable) as error:
        build_encoder(EncoderConfig(name="clip", download_timeout_s=2.0))
    assert time.perf_counter() - started < 60  # generous: "seconds, not minutes of retries"
    text = str(error.value)
    assert "weights_file" in text and "--encoder builtin" in text


def test_weights_file_missing_and_unknown_tag(tmp_path: Path) -> None:
    with pytest.raises(EncoderUnavailable, match="weights_file not found"):
        build_encoder(EncoderConfig(name="clip", weights_file=tmp_path / "none.safetensors"))
    with pytest.raises(EncoderUnavailable, match="no pretrained tag"):
        build_encoder(EncoderConfig(name="clip", pretrained="no-such-tag"))


@pytest.mark.slow
def test_local_weights_file_loads_through_open_clip(tmp_path: Path, untrained_clip) -> None:  # type: ignore[no-untyped-def]
    """The real loading path (open_clip reading a checkpoint file), with weights we made ourselves."""
    import open_clip
    import torch

    torch.manual_seed(1)
    model = open_clip.create_model("ViT-B-32", pretrained=None)
    checkpoint = tmp_path / "my_clip.bin"
    torch.save(model.state_dict(), checkpoint)
    encoder, info = build_encoder(EncoderConfig(name="clip", weights_file=checkpoint, device="cpu"))
    assert info.name == "clip" and info.identity.startswith("clip:ViT-B-32:file-")
    image = draw_shape("circle", 3, size=224)
    batch = np.stack([encoder.preprocessor()(image)])
    with torch.inference_mode():
        expected = model.encode_image(torch.from_numpy(batch), normalize=True).numpy()
    np.testing.assert_allclose(encoder.embed(batch), expected, atol=1e-4)


def test_precomputed_embeddings_drive_a_scan(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=3)
    paths = sorted(p.relative_to(data).as_posix() for p in data.rglob("*.png"))
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(paths), 16)).astype(np.float32)
    source = tmp_path / "emb.parquet"
    pd.DataFrame({"path": paths[:-1], "embedding": list(vectors[:-1])}).to_parquet(source)
    config = load_config(overrides={"encoder": {"name": "precomputed", "precomputed_file": str(source)},
                                    "scan": {"workers": 0}})
    result = run_scan(data, config, tmp_path / "out")
    assert result.encoder.name == "precomputed" and result.encoder.dim == 16
    assert result.run["embedding"]["from_precomputed"] == len(paths) - 1
    assert any("no precomputed embedding" in w for w in result.warnings)
    npz = tmp_path / "emb.npz"
    np.savez(npz, paths=np.array(paths), embeddings=vectors)
    config = load_config(overrides={"encoder": {"name": "precomputed", "precomputed_file": str(npz)},
                                    "scan": {"workers": 0}})
    assert run_scan(data, config, tmp_path / "out2").run["embedding"]["from_precomputed"] == len(paths)


@pytest.mark.slow
def test_auto_falls_back_without_importing_open_clip(tmp_path: Path) -> None:
    """With no checkpoint anywhere and no download possible, auto decides from files alone (no torch import)."""
    probe = (
        "import sys\n"
        "from auditor.core.config import EncoderConfig\n"
        "from auditor.embed.encoders import build_encoder\n"
        "_, info = build_encoder(EncoderConfig())\n"
        "print(info.name, 'open_clip' in sys.modules, 'torch' in sys.modules)\n"
        "print(info.fallback_reason)\n"
    )
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    first, reason = done.stdout.splitlines()[:2]
    assert first == "builtin False False"
    assert str(tmp_path / "hub") in reason and "weights_file" in reason
    # A checkpoint in the cache (any model) sends auto down the full open_clip path instead.
    snapshot = tmp_path / "hub" / "models--someone--some-clip" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_model.safetensors").write_bytes(b"")
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[0] == "builtin True True"
