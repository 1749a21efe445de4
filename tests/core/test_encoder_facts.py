"""What the checks may know about the encoder: whether nearness in its space can be trusted."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from auditor.core.encoder_facts import ClassPrompts, EncoderInfo


@pytest.mark.parametrize(
    ("name", "pretrained", "trusted"),
    [
        ("clip", True, True),
        ("clip", False, False),  # random CLIP weights put unrelated images close together
        ("builtin", False, True),
        ("onnx", False, True),
        ("precomputed", False, True),
    ],
)
def test_only_an_untrained_clip_model_is_untrusted(name: str, pretrained: bool, trusted: bool) -> None:
    assert EncoderInfo(name, name, f"{name}:x", 8, pretrained).trusted is trusted


def test_encoder_facts_are_frozen_plain_data() -> None:
    info = EncoderInfo("clip", "builtin", "builtin:v2", 64, False, fallback_reason="no weights")
    assert dataclasses.asdict(info) == {"requested": "clip", "name": "builtin", "identity": "builtin:v2", "dim": 64,
                                        "pretrained": False, "fallback_reason": "no weights"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.dim = 3  # type: ignore[misc]
    prompts = ClassPrompts(["cat"], np.ones((1, 64), dtype=np.float32), ["a photo of a {}"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        prompts.classes = []  # type: ignore[misc]
