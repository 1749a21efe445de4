"""What the checks may know about the encoder that ran, without importing any encoder.

``EncoderInfo`` is also what run.json records about it; ``ClassPrompts`` are the class-prompt vectors a
text-capable encoder gave the scan. Both are plain data, so checks and evidence never load a model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EncoderInfo:
    """What the outputs record about the encoder that really ran."""

    requested: str
    name: str
    identity: str
    dim: int
    pretrained: bool
    fallback_reason: str | None = None

    @property
    def trusted(self) -> bool:
        """Whether nearness in its space means similar content: every encoder but a CLIP model without
        its pretrained weights, whose random projection puts unrelated images close together."""
        return self.pretrained or self.name != "clip"


@dataclass(frozen=True)
class ClassPrompts:
    """One unit vector per class, in the image embedding space."""

    classes: list[str]
    vectors: np.ndarray  # (len(classes), dim) float32
    prompts: list[str]
