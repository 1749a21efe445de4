"""The shared robust statistics: median/MAD scaled to a normal's standard deviation, and Bonferroni bars."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from auditor.evidence.robust import MAD_TO_SIGMA, bonferroni_bar, bonferroni_z, median_spread


def test_median_spread_estimates_a_normal_standard_deviation() -> None:
    values = np.random.default_rng(0).normal(3.0, 2.0, 200_000)
    centre, spread = median_spread(values)
    assert centre == pytest.approx(3.0, abs=0.02)
    assert spread == pytest.approx(2.0, rel=0.02)


def test_median_spread_ignores_a_minority_of_outliers() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 1e9])
    centre, spread = median_spread(values)
    assert centre == 3.5
    assert spread == MAD_TO_SIGMA * 1.5


def test_median_spread_is_floored_at_min_spread() -> None:
    assert median_spread(np.full(10, 7.0), 0.05) == (7.0, 0.05)
    assert median_spread(np.full(10, 7.0)) == (7.0, 0.0)


def test_bonferroni_z_divides_the_tail_among_the_looks() -> None:
    assert bonferroni_z(1.5, 1) == 1.5
    z = bonferroni_z(1.5, 2)
    assert stats.norm.sf(z) == pytest.approx(stats.norm.sf(1.5) / 2)
    assert z > 1.5


def test_bonferroni_bar_spreads_false_alarms_over_the_tests() -> None:
    assert bonferroni_bar(0.05, 1000) == pytest.approx(stats.norm.isf(0.05 / 1000))
    # More false alarms allowed than tests: the bar stops at z = 0 (half of clean results pass).
    assert bonferroni_bar(5.0, 2) == 0.0
    assert bonferroni_bar(0.05, 0) == pytest.approx(stats.norm.isf(0.05))
