"""Embeddings a team already has, keyed by dataset-relative path (Parquet or .npz)."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np

from auditor.core.errors import EncoderUnavailable
from auditor.embed.encoders.base import unit_rows


class PrecomputedEmbeddings:
    """Looks vectors up by path instead of computing them; nothing to cache."""

    pretrained = False

    def __init__(self, source: Path) -> None:
        source = Path(source)
        if not source.is_file():
            raise EncoderUnavailable(f"precomputed embeddings file not found: {source}")
        try:
            paths, vectors = self._load(source)
        except EncoderUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - malformed files raise many types
            raise EncoderUnavailable(f"cannot read precomputed embeddings {source}: {exc}") from None
        if vectors.ndim != 2 or len(paths) != len(vectors) or len(vectors) == 0:
            raise EncoderUnavailable(f"{source}: expected one vector per path, got {vectors.shape} for {len(paths)}")
        paths = [p.replace("\\", "/") for p in paths]
        self._index = {p: i for i, p in enumerate(paths)}
        if len(self._index) < len(paths):
            # Otherwise the last row would silently win, and two rows for one image are a mistake in the file.
            repeated = next(p for p, count in Counter(paths).items() if count > 1)
            raise EncoderUnavailable(f"{source}: path {repeated!r} appears more than once")
        self._vectors = unit_rows(vectors, str(source), paths)
        self.dim = int(vectors.shape[1])
        digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
        self.identity = f"precomputed:{source.name}:{digest}"

    @staticmethod
    def _load(source: Path) -> tuple[list[str], np.ndarray]:
        suffix = source.suffix.lower()
        if suffix == ".parquet":
            import pyarrow.parquet as pq  # on use: loader workers import this package, keep them light

            table = pq.read_table(source)
            column = next((c for c in ("embedding", "vector", "embeddings") if c in table.column_names), None)
            if "path" not in table.column_names or column is None:
                raise EncoderUnavailable(f"{source}: needs columns 'path' and 'embedding'")
            vectors = np.asarray(table.column(column).to_pylist(), dtype=np.float32)
            return [str(p) for p in table.column("path").to_pylist()], vectors
        if suffix == ".npz":
            with np.load(source, allow_pickle=False) as archive:
                if "paths" not in archive or "embeddings" not in archive:
                    raise EncoderUnavailable(f"{source}: needs arrays 'paths' and 'embeddings'")
                return [str(p) for p in archive["paths"]], np.asarray(archive["embeddings"], dtype=np.float32)
        raise EncoderUnavailable(f"{source}: precomputed embeddings must be .parquet or .npz")

    def lookup(self, path: str) -> np.ndarray | None:
        index = self._index.get(path)
        return None if index is None else self._vectors[index]
