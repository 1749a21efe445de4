"""Precomputed embeddings: looked up by dataset-relative path, normalised, and refused with a clear reason when
the file cannot serve as embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from auditor.core.errors import EncoderUnavailable
from auditor.embed.encoders.precomputed import PrecomputedEmbeddings


def _vector(encoder: PrecomputedEmbeddings, path: str) -> np.ndarray:
    vector = encoder.lookup(path)
    assert vector is not None, path
    return vector


def test_npz_vectors_are_looked_up_by_path_and_normalised(tmp_path: Path) -> None:
    source = tmp_path / "vectors.npz"
    np.savez(source, paths=np.array(["cat/a.png", "dog\\b.png"]), embeddings=np.array([[3.0, 4.0], [0.0, 2.0]]))
    encoder = PrecomputedEmbeddings(source)
    assert encoder.dim == 2 and encoder.identity.startswith("precomputed:vectors.npz:")
    np.testing.assert_allclose(_vector(encoder, "cat/a.png"), [0.6, 0.8], rtol=1e-6)
    np.testing.assert_allclose(_vector(encoder, "dog/b.png"), [0.0, 1.0])
    assert encoder.lookup("fox/c.png") is None


def test_parquet_vectors_and_identity_follow_the_file_content(tmp_path: Path) -> None:
    source = tmp_path / "vectors.parquet"
    pq.write_table(pa.table({"path": ["a.png"], "vector": [[1.0, 0.0, 0.0]]}), source)
    first = PrecomputedEmbeddings(source)
    assert first.dim == 3
    np.testing.assert_allclose(_vector(first, "a.png"), [1.0, 0.0, 0.0])
    pq.write_table(pa.table({"path": ["a.png"], "vector": [[0.0, 1.0, 0.0]]}), source)
    assert PrecomputedEmbeddings(source).identity != first.identity


@pytest.mark.parametrize(
    ("name", "write", "reason"),
    [
        ("missing.npz", None, "file not found"),
        ("vectors.csv", lambda path: path.write_text("path,x\n"), "must be .parquet or .npz"),
        ("vectors.npz", lambda path: np.savez(path, names=np.array(["a"])), "needs arrays 'paths' and 'embeddings'"),
        ("vectors.parquet", lambda path: pq.write_table(pa.table({"path": ["a"]}), path),
         "needs columns 'path' and 'embedding'"),
        ("vectors.npz", lambda path: np.savez(path, paths=np.array(["a", "b"]), embeddings=np.ones((1, 2))),
         "expected one vector per path"),
        ("vectors.npz", lambda path: np.savez(path, paths=np.array(["a"]), embeddings=np.array([[np.nan, 1.0]])),
         "NaN or infinite"),
        ("vectors.npz", lambda path: np.savez(path, paths=np.array(["a", "b"]), embeddings=np.array([[1, 0], [0, 0]])),
         "the embedding of 'b' is all zeros"),
        ("vectors.parquet", lambda path: pq.write_table(
            pa.table({"path": ["cat/a.png", "cat/b.png", "cat\\a.png"],
                      "embedding": [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]}), path),
         "path 'cat/a.png' appears more than once"),
        ("vectors.parquet", lambda path: path.write_bytes(b"not parquet"), "cannot read precomputed embeddings"),
    ],
)
def test_unusable_files_are_refused_with_the_reason(tmp_path: Path, name: str, write: object, reason: str) -> None:
    source = tmp_path / name
    if callable(write):
        write(source)
    with pytest.raises(EncoderUnavailable, match=reason):
        PrecomputedEmbeddings(source)
