"""Robust statistics the checks and the evidence share: median and MAD, and Bonferroni bars.

A dataset's own spread judges what is unusual in it; the median absolute deviation (MAD) is that spread
which a minority of unusual images cannot move. One place, so every check scales it the same way.
"""

from __future__ import annotations

import numpy as np

from auditor.core.slow_imports import scipy_stats

# 1.4826 x MAD estimates a normal distribution's standard deviation (1 / the normal's 0.75 quantile).
MAD_TO_SIGMA = 1.4826


def median_spread(values: np.ndarray, min_spread: float = 0.0) -> tuple[float, float]:
    """The median of ``values`` and their robust standard deviation (1.4826 x MAD), at least ``min_spread``."""
    centre = float(np.median(values))
    return centre, max(MAD_TO_SIGMA * float(np.median(np.abs(values - centre))), min_spread)


def bonferroni_z(z: float, looks: int) -> float:
    """The z whose one-sided normal tail is that of ``z`` divided among ``looks`` tests: each look is as
    improbable as one look alone would be."""
    return z if looks <= 1 else float(scipy_stats.norm.isf(scipy_stats.norm.sf(z) / looks))


def bonferroni_bar(false_alarms: float, tests: int) -> float:
    """The one-sided normal z that ``tests`` chance results pass ``false_alarms`` times in all (capped at z = 0,
    a tail of one half, when there are fewer tests than false alarms allowed)."""
    return float(scipy_stats.norm.isf(min(false_alarms / max(tests, 1), 0.5)))
