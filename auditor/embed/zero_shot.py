"""Zero-shot class evidence: each class name, written into prompts, embedded by CLIP's text tower.

An image's cosine similarity to a class's prompt embedding is evidence that owes nothing to the
dataset's labels, so it cannot inherit their mistakes; an image that shows two classes is similar to
both prompts. It is only meaningful for an encoder with a text tower and real pretrained weights:
an untrained CLIP's text and image spaces are unrelated, and the built-in descriptor has no text at
all. ``mode = "always"`` overrides the pretrained requirement (tests, experiments) and the outputs say so.
"""

from __future__ import annotations

import re
from typing import Any

from auditor.core.config import ZeroShotParams
from auditor.core.encoder_facts import ClassPrompts, EncoderInfo
from auditor.embed.encoders.base import TextEncoder, l2_normalise

__all__ = ["ClassPrompts", "ZeroShotParams", "class_phrase", "class_prompts", "zero_shot_decision"]


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
