"""The embedding stage: look up the cache, embed what is missing in batches, store each batch.

Work is keyed by content hash, so byte-identical files are embedded once, and a renamed file is a
cache hit.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from auditor.embed.cache import EmbeddingCache
from auditor.embed.encoders.base import Encoder, Preprocessor
from auditor.ingest.images import FileRefused, ImageDecodeError, open_checked, open_rgb, sha256_handle
from auditor.ingest.parallel import ordered_map


@dataclass
class EmbeddingResult:
    vectors: dict[str, np.ndarray]
    embedded: int = 0
    from_cache: int = 0
    # sha256 -> reason, for files that read fine earlier but failed to preprocess now.
    failures: dict[str, str] = field(default_factory=dict)


def load_for_embedding(
    preprocess: Preprocessor, max_pixels: int, item: tuple[str, Path]
) -> tuple[str, np.ndarray | None, str | None]:
    """Decode and preprocess one file, if it still holds the bytes the read stage hashed.

    A file replaced since then (by other content, or by a symlink leaving the dataset) is refused,
    so the vector stored under ``sha`` always comes from content with that hash.
    """
    sha, path = item
    try:
        with open_checked(path) as handle:
            if sha256_handle(handle)[0] != sha:
                return sha, None, "file changed during the scan (its content differs from when it was read)"
            handle.seek(0)
            image, _, _ = open_rgb(handle, max_pixels, preprocess.draft_size)
        return sha, preprocess(image), None
    except (ImageDecodeError, FileRefused) as exc:
        return sha, None, str(exc)
    except OSError as exc:
        return sha, None, f"cannot read file: {exc.strerror or exc}"
    except Exception as exc:  # noqa: BLE001 - hostile files: report, never crash the stage
        return sha, None, f"preprocessing failed: {type(exc).__name__}: {exc}"


def from_cache(
    files: dict[str, Path], encoder: Encoder, cache: EmbeddingCache | None
) -> tuple[EmbeddingResult, list[tuple[str, Path]]]:
    """The cached vectors (the result's first rows, in every engine) and the files left to embed, in order."""
    vectors: dict[str, np.ndarray] = {}
    if cache is not None:
        vectors.update(cache.get_many(files, encoder.identity, encoder.dim))
    todo = [(sha, path) for sha, path in files.items() if sha not in vectors]
    return EmbeddingResult(vectors, from_cache=len(vectors)), todo


def embed_files(
    files: dict[str, Path],
    encoder: Encoder,
    cache: EmbeddingCache | None,
    batch_size: int,
    workers: int,
    max_pixels: int,
    on_progress: Callable[[int], None] = lambda n: None,
) -> EmbeddingResult:
    """Embed ``files`` (sha256 -> one path holding those bytes); cache hits are not decoded at all."""
    result, todo = from_cache(files, encoder, cache)
    on_progress(result.from_cache)
    vectors = result.vectors
    loader = partial(load_for_embedding, encoder.preprocessor(), max_pixels)
    batch_keys: list[str] = []
    batch_inputs: list[np.ndarray] = []

    def flush() -> None:
        embedded = encoder.embed(np.stack(batch_inputs))
        fresh = dict(zip(batch_keys, embedded, strict=True))
        if cache is not None:
            cache.put_many(fresh, encoder.identity)
        vectors.update(fresh)
        result.embedded += len(fresh)
        on_progress(len(fresh))
        batch_keys.clear()
        batch_inputs.clear()

    window = max(2, (2 * batch_size) // 8)
    with closing(ordered_map(loader, todo, workers, chunk_size=8, window=window)) as loaded:
        for sha, array, reason in loaded:
            if array is None:
                result.failures[sha] = reason or "unknown preprocessing failure"
                on_progress(1)
                continue
            batch_keys.append(sha)
            batch_inputs.append(array)
            if len(batch_keys) >= batch_size:
                flush()
    if batch_keys:
        flush()
    return result
