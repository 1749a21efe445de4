"""Zero-shot class prompts: when they are computed, what run.json records, and the text tower itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from auditor.core.config import load_config
from auditor.embed.encoders import EncoderInfo
from auditor.embed.encoders.builtin import BuiltinEncoder
from auditor.embed.zero_shot import ZeroShotParams, class_phrase, class_prompts, zero_shot_decision
from auditor.scan import run_scan
from tests.conftest import write_class_folder


@pytest.fixture(scope="module")
def untrained_clip():  # type: ignore[no-untyped-def]
    from auditor.embed.encoders.clip import ClipEncoder

    return ClipEncoder(None, model="ViT-B-32", device="cpu")


def _info(name: str, pretrained: bool) -> EncoderInfo:
    return EncoderInfo(name, name, f"{name}:test", 512, pretrained)


def test_decision_needs_a_text_tower_and_real_weights(untrained_clip) -> None:  # type: ignore[no-untyped-def]
    auto, off, always = ZeroShotParams(), ZeroShotParams(mode="off"), ZeroShotParams(mode="always")
    assert zero_shot_decision(BuiltinEncoder(), _info("builtin", False), always) == (
        False, "encoder builtin has no text tower")
    assert zero_shot_decision(untrained_clip, _info("clip", False), auto) == (False, "the encoder is not pretrained")
    used, reason = zero_shot_decision(untrained_clip, _info("clip", False), always)
    assert used and "not meaningful" in reason
    # Pretrained is what EncoderInfo records; the decision trusts it.
    assert zero_shot_decision(untrained_clip, _info("clip", True), auto)[0] is True
    assert zero_shot_decision(untrained_clip, _info("clip", True), off)[0] is False


@pytest.mark.slow
def test_class_prompts_are_unit_vectors_per_class(untrained_clip) -> None:  # type: ignore[no-untyped-def]
    assert class_phrase("golden_retriever") == "golden retriever"
    assert class_phrase("traffic-light") == "traffic light"
    params = ZeroShotParams(prompts=["a photo of a {}.", "a drawing of a {}."])
    prompts = class_prompts(untrained_clip, ["cat", "sea_lion"], params)
    assert prompts.classes == ["cat", "sea_lion"] and prompts.vectors.shape == (2, untrained_clip.dim)
    np.testing.assert_allclose(np.linalg.norm(prompts.vectors, axis=1), 1.0, rtol=1e-5)
    again = class_prompts(untrained_clip, ["cat", "sea_lion"], params)
    np.testing.assert_array_equal(prompts.vectors, again.vectors)
    # The average of the two prompt embeddings, renormalised.
    single = untrained_clip.embed_text(["a photo of a cat.", "a drawing of a cat."]).mean(axis=0)
    np.testing.assert_allclose(prompts.vectors[0], single / np.linalg.norm(single), atol=1e-5)


@pytest.mark.slow
def test_scan_records_whether_zero_shot_ran(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            untrained_clip) -> None:  # type: ignore[no-untyped-def]
    import auditor.scan.pipeline

    data = tmp_path / "data"
    write_class_folder(data, per_class=8)
    info = EncoderInfo("clip", "clip", untrained_clip.identity, untrained_clip.dim, False)
    monkeypatch.setattr(auditor.scan.pipeline, "build_encoder", lambda config: (untrained_clip, info))

    def scan(mode: str, out: str) -> dict:  # type: ignore[type-arg]
        config = load_config(overrides={"scan": {"cache_dir": str(tmp_path / "cache"), "workers": 0,
                                                 "checks": ["ambiguous"]},
                                        "encoder": {"workers": 0}, "zero_shot": {"mode": mode}})
        return run_scan(data, config, tmp_path / out).run

    auto = scan("auto", "auto")
    assert auto["zero_shot"] == {"used": False, "reason": "the encoder is not pretrained"}
    assert auto["checks"]["ambiguous"]["zero_shot"] is None
    always = scan("always", "always")
    assert always["zero_shot"]["used"] is True and "not meaningful" in always["zero_shot"]["reason"]
    assert always["zero_shot"]["classes"] == ["circle", "square", "triangle"]
    assert always["checks"]["ambiguous"]["zero_shot"]["bar_z"] > 0
