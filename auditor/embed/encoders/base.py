"""The encoder protocol: every encoder turns decoded images into L2-normalised float32 vectors.

Every encoder's vectors pass through ``unit_rows``, so a model's NaN, infinite or all-zero output is refused
the same way whatever produced it, rather than stored as a vector of norm 0 that the checks would misread.

Preprocessing is split from embedding so that decoding and resizing can run in worker processes
while the main process runs the model; preprocessors are therefore small picklable objects.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from auditor.core.encoder_facts import EncoderInfo
from auditor.core.errors import EncoderUnavailable

__all__ = ["Encoder", "EncoderInfo", "Preprocessor", "TextEncoder", "l2_normalise", "unit_rows"]


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


def unit_rows(vectors: np.ndarray, source: str, names: Sequence[str] | None = None) -> np.ndarray:
    """Check embedding rows and L2-normalise them: (n, d) real numbers, each row finite and not all zero.

    Integers are taken as float64; a float32 row whose norm over- or underflows (values past about 1e19 or
    under about 1e-23) is normalised in float64. A refused row is named by ``names[row]`` when given, else by
    its position. Raises EncoderUnavailable (one line starting with ``source``).
    """
    array = np.asarray(vectors)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
            or array.dtype == np.bool_):
        raise EncoderUnavailable(f"{source}: embeddings must be real numbers, got {array.dtype}")
    if array.ndim != 2 or array.shape[1] == 0:
        raise EncoderUnavailable(f"{source}: expected one vector per image, got shape {array.shape}")
    rows = array.astype(np.float32) if np.issubdtype(array.dtype, np.floating) else array.astype(np.float64)
    _refuse_rows(np.asarray(~np.isfinite(rows).all(axis=1)), "has NaN or infinite values", source, names)
    with np.errstate(over="ignore", under="ignore"):  # handled just below
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
    if not (np.isfinite(norms) & (norms > 0)).all():
        rows = rows.astype(np.float64)
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
    _refuse_rows(norms[:, 0] == 0, "is all zeros (no direction to compare)", source, names)
    return np.asarray((rows / norms).astype(np.float32))


def _refuse_rows(bad: np.ndarray, problem: str, source: str, names: Sequence[str] | None) -> None:
    if not bad.any():
        return
    first = int(np.argmax(bad))
    which = repr(names[first]) if names is not None else f"row {first}"
    others = int(bad.sum()) - 1
    more = f" (and {others} more)" if others else ""
    raise EncoderUnavailable(f"{source}: the embedding of {which} {problem}{more}")


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
