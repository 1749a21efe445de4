"""The encoder protocol: every encoder turns decoded images into L2-normalised float32 vectors.

Preprocessing is split from embedding so that decoding and resizing can run in worker processes
while the main process runs the model; preprocessors are therefore small picklable objects.
"""

from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from auditor.core.encoder_facts import EncoderInfo

__all__ = ["Encoder", "EncoderInfo", "Preprocessor", "TextEncoder", "l2_normalise"]


class Preprocessor(Protocol):
    """Turns one decoded RGB image into the encoder's input array; must be picklable."""

    @property
    def draft_size(self) -> tuple[int, int] | None:
        """JPEG draft-mode target (skip detail the model never sees), or None for a full decode."""
        ...

    def __call__(self, image: Image.Image) -> np.ndarray: ...


@runtime_checkable
class Encoder(Protocol):
    # Stable string naming model, weights and preprocessing version; part of every cache key.
    identity: str
    dim: int
    # True only when real pretrained weights were loaded; outputs record it.
    pretrained: bool

    def preprocessor(self) -> Preprocessor: ...

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """Embed a stacked batch of preprocessed inputs; returns (n, dim) L2-normalised float32."""
        ...


@runtime_checkable
class TextEncoder(Protocol):
    """An encoder that also embeds text into its image space (CLIP): class prompts for zero-shot evidence."""

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) L2-normalised float32, comparable by cosine with ``embed`` outputs."""
        ...


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray((vectors / np.maximum(norms, 1e-12)).astype(np.float32))


def cpu_thread_cap() -> int | None:
    """How many threads a model may use on the CPU: an explicit OMP_NUM_THREADS, else this process's cores.

    Runtimes size their pools from the machine's physical cores, which over-subscribes a container
    pinned to fewer. None: nothing to go by (let the runtime decide).
    """
    explicit = os.environ.get("OMP_NUM_THREADS", "").strip()
    if explicit.isdigit() and int(explicit) > 0:
        return int(explicit)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return None
