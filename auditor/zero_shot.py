"""Zero-shot class evidence: each class name, written into prompts, embedded by CLIP's text tower.

An image's cosine similarity to a class's prompt embedding is evidence that owes nothing to the
dataset's labels, so it cannot inherit their mistakes; an image that shows two classes is similar to
both prompts. It is only meaningful for an encoder with a text tower and real pretrained weights:
an untrained CLIP's text and image spaces are unrelated, and the built-in descriptor has no text at
all. ``mode = "always"`` overrides the pretrained requirement (tests, experiments) and the outputs say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from auditor.encoders.base import EncoderInfo, TextEncoder, l2_normalise


class ZeroShotParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # auto: when the encoder has a text tower and real pretrained weights; off: never; always: whenever
    # the encoder has a text tower, even untrained (for tests; the findings are then not meaningful).
    mode: Literal["auto", "off", "always"] = "auto"
    # Prompt templates; "{}" becomes the class name (folder name with _ and - as spaces). Each class's
    # prompt embeddings are averaged, as in CLIP's prompt ensembling.
    prompts: list[str] = Field(
        default_factory=lambda: ["a photo of a {}.", "a photo of the {}.", "an image of a {}.", "a picture of a {}."],
        min_length=1,
    )


@dataclass(frozen=True)
class ClassPrompts:
    """One unit vector per class, in the image embedding space."""

    classes: list[str]
    vectors: np.ndarray  # (len(classes), dim) float32
    prompts: list[str]


def class_phrase(name: str) -> str:
    """Folder names as words: ``golden_retriever`` -> ``golden retriever``."""
    return re.sub(r"[_\-]+", " ", name).strip()


def zero_shot_decision(encoder: Any, info: EncoderInfo, params: ZeroShotParams) -> tuple[bool, str]:
    """Whether to compute class prompts, and why (recorded in run.json)."""
    if params.mode == "off":
        return False, "zero_shot.mode is off"
    if not isinstance(encoder, TextEncoder):
        return False, f"encoder {info.name} has no text tower"
    if params.mode == "always":
        return True, "zero_shot.mode is always" + ("" if info.pretrained else " (untrained encoder: not meaningful)")
    if not info.pretrained:
        return False, "the encoder is not pretrained"
    return True, "pretrained encoder with a text tower"


def class_prompts(encoder: TextEncoder, classes: list[str], params: ZeroShotParams) -> ClassPrompts:
    texts = [template.format(class_phrase(name)) for name in classes for template in params.prompts]
    per_prompt = encoder.embed_text(texts).reshape(len(classes), len(params.prompts), -1)
    return ClassPrompts(list(classes), l2_normalise(per_prompt.mean(axis=1)), list(params.prompts))
