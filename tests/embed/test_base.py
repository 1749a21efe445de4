"""unit_rows: every encoder's vectors are checked and L2-normalised by it, so bad rows are refused alike."""

from __future__ import annotations

import numpy as np
import pytest

from auditor.core.errors import EncoderUnavailable
from auditor.embed.encoders.base import unit_rows


def test_rows_become_unit_float32_vectors_integers_included() -> None:
    rows = unit_rows(np.array([[3, 4], [0, -2]], dtype=np.int64), "ints")
    assert rows.dtype == np.float32
    np.testing.assert_allclose(rows, [[0.6, 0.8], [0.0, -1.0]])


@pytest.mark.parametrize("scale", [1e30, 1e-30])
def test_rows_whose_float32_norm_over_or_underflows_still_become_unit_vectors(scale: float) -> None:
    rows = unit_rows(np.array([[3.0, 4.0]], dtype=np.float32) * np.float32(scale), "tiny or huge")
    np.testing.assert_allclose(rows, [[0.6, 0.8]], rtol=1e-6)


@pytest.mark.parametrize(("rows", "reason"), [
    (np.array([[1.0, 0.0], [np.nan, 1.0], [np.inf, 0.0]]), r"source: the embedding of 'b' has NaN or infinite "
                                                          r"values \(and 1 more\)"),
    (np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]), "source: the embedding of 'b' is all zeros"),
    (np.array([0.0, 0.0, 0.0]), r"expected one vector per image, got shape \(3,\)"),
    (np.array(1.5), r"expected one vector per image, got shape \(\)"),
    (np.zeros((3, 0)), r"got shape \(3, 0\)"),
    (np.array([["a", "b"]] * 3), "must be real numbers"),
])
def test_bad_rows_are_refused_naming_the_first(rows: np.ndarray, reason: str) -> None:
    with pytest.raises(EncoderUnavailable, match=reason):
        unit_rows(rows, "source", ["a", "b", "c"])


def test_without_names_a_refused_row_is_named_by_position() -> None:
    with pytest.raises(EncoderUnavailable, match="the embedding of row 1 is all zeros"):
        unit_rows(np.array([[1, 0], [0, 0]]), "source")
