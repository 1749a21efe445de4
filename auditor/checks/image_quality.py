"""Image quality: dark, overexposed, blurry, low-information, odd aspect or size, greyscale, letterboxed.

Each kind reads one pixel property the read stage stored (``auditor/ingest/properties.py``). What is unusual
depends on the dataset -- a folder of night photos is dark throughout -- so an image is flagged only when
its property lies beyond a robust fence of this dataset (median +- ``robust_z`` x 1.4826 x MAD, on the
scale given below, with a minimum spread so a near-constant property does not make every small difference
an outlier) *and* past an absolute limit that says the defect is real whatever the dataset. Greyscale is
the exception: it is exact (no colour at all), and is reported only where most of the dataset has colour.

A class whose images carry one defect far more often than the rest of the dataset gets a
``quality_shortcut`` finding: a one-sided Fisher exact test (Bonferroni over classes and kinds) plus an
effect size, because a model learns "dark means class x" as readily as the objects themselves.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from auditor.checks.base import Check, CheckContext, CheckResult
from auditor.core.config import ConfigModel
from auditor.core.slow_imports import scipy_stats
from auditor.evidence.robust import median_spread
from auditor.results.findings import Finding, FindingKind, Severity, plain
from auditor.results.summaries import FenceSummary, ImageQualitySummary

IMAGE_KINDS = ("dark", "overexposed", "blurry", "low_information", "odd_aspect_ratio", "odd_size", "greyscale",
               "letterboxed")
SHORTCUT = "quality_shortcut"


class ImageQualityParams(ConfigModel):
    robust_z: float = Field(4.0, gt=0.0)
    min_images: int = Field(20, ge=3)
    dark_max_luminance: float = Field(0.25, ge=0.0, le=1.0)
    dark_min_spread: float = Field(0.2, gt=0.0)
    overexposed_min_brightness: float = Field(0.6, ge=0.0, le=1.0)
    overexposed_min_spread: float = Field(0.1, gt=0.0)
    overexposed_min_highlight: float = Field(0.1, ge=0.0, le=1.0)
    blurry_max_sharpness: float = Field(0.9, gt=0.0)
    blurry_min_spread: float = Field(0.2, gt=0.0)
    low_information_max_entropy: float = Field(4.0, ge=0.0, le=8.0)
    low_information_min_spread: float = Field(0.25, gt=0.0)
    blank_max_entropy: float = Field(2.0, ge=0.0, le=8.0)
    aspect_min_factor: float = Field(1.5, ge=1.0)
    aspect_min_spread: float = Field(0.05, gt=0.0)
    size_min_factor: float = Field(3.0, ge=1.0)
    size_min_spread: float = Field(0.1, gt=0.0)
    greyscale_max_colour_fraction: float = Field(0.005, ge=0.0, le=1.0)
    greyscale_max_share: float = Field(0.2, ge=0.0, le=1.0)
    letterbox_min_fraction: float = Field(0.1, ge=0.0, le=1.0)
    letterbox_min_spread: float = Field(0.02, gt=0.0)
    shortcut_alpha: float = Field(0.01, gt=0.0, lt=1.0)
    shortcut_min_rate: float = Field(0.2, gt=0.0, le=1.0)
    shortcut_min_ratio: float = Field(3.0, ge=1.0)
    shortcut_min_images: int = Field(3, ge=1)


@dataclass(frozen=True)
class Rule:
    """How one kind is judged: ``value`` reads the property from the images frame, ``scale`` maps it to
    where robust statistics are taken, ``side`` says which tail is the defect, ``beyond_limit`` is the
    absolute test (on the frame, the raw values and their median)."""

    kind: str
    describe: str
    value: Callable[[pd.DataFrame], pd.Series]
    scale: Scale
    side: Literal["low", "high", "both"]
    min_spread: Callable[[ImageQualityParams], float]
    beyond_limit: Callable[[pd.DataFrame, np.ndarray, float, ImageQualityParams], np.ndarray]


def _log(values: np.ndarray) -> np.ndarray:
    return np.asarray(np.log(np.maximum(values, 1e-6)), dtype=np.float64)


@dataclass(frozen=True)
class Scale:
    """Where a property's robust statistics are taken (``forward``), and back to its units (``inverse``)."""

    forward: Callable[[np.ndarray], np.ndarray]
    inverse: Callable[[float], float]


LINEAR = Scale(lambda v: v, lambda x: x)
LOG = Scale(_log, math.exp)
# Skewed towards 0 with a floor: a black frame's 0 must not dominate the spread.
LOG_DARK = Scale(lambda v: _log(v + 0.01), lambda x: math.exp(x) - 0.01)
# Each step is a halving of the room left to white.
LOG_BRIGHT = Scale(lambda v: -_log(1.01 - v), lambda x: 1.01 - math.exp(-x))


def _longest_side(frame: pd.DataFrame) -> pd.Series:
    return frame[["width", "height"]].astype("float64").max(axis=1)


RULES: tuple[Rule, ...] = (
    Rule("dark", "95th-percentile luminance", lambda f: f["luminance_p95"], LOG_DARK, "low",
         lambda p: p.dark_min_spread, lambda f, v, median, p: v <= p.dark_max_luminance),
    Rule("overexposed", "mean luminance", lambda f: f["brightness"], LOG_BRIGHT, "high",
         lambda p: p.overexposed_min_spread,
         # Bright is not overexposed until detail is lost: a high-key or snowy scene keeps its highlights.
         lambda f, v, median, p: (v >= p.overexposed_min_brightness)
         & (f["highlight_fraction"].to_numpy() >= p.overexposed_min_highlight)),
    Rule("blurry", "sharpness", lambda f: f["sharpness"], LOG, "low",
         lambda p: p.blurry_min_spread, lambda f, v, median, p: v <= p.blurry_max_sharpness),
    Rule("low_information", "luminance entropy (bits)", lambda f: f["entropy"], LINEAR, "low",
         lambda p: p.low_information_min_spread, lambda f, v, median, p: v <= p.low_information_max_entropy),
    Rule("odd_aspect_ratio", "aspect ratio (width/height)", lambda f: f["aspect_ratio"], LOG, "both",
         lambda p: p.aspect_min_spread,
         lambda f, v, median, p: np.abs(_log(v) - np.log(median)) >= np.log(p.aspect_min_factor)),
    Rule("odd_size", "longest side (px)", _longest_side, LOG, "both",
         lambda p: p.size_min_spread,
         lambda f, v, median, p: np.abs(_log(v) - np.log(median)) >= np.log(p.size_min_factor)),
    Rule("letterboxed", "share of the area in uniform border bars", lambda f: f["border_fraction"], LINEAR,
         "high", lambda p: p.letterbox_min_spread, lambda f, v, median, p: v >= p.letterbox_min_fraction),
)


@dataclass(frozen=True)
class Fence:
    """The robust fence of one property, in the property's own units (``spread`` on the rule's scale)."""

    median: float
    spread: float
    low: float
    high: float


def robust_z(scaled: np.ndarray, min_spread: float) -> tuple[np.ndarray, float, float]:
    """Robust z-scores of ``scaled`` (NaN stays NaN), its median and the spread used."""
    known = scaled[np.isfinite(scaled)]
    if known.size == 0:  # e.g. sharpness of a dataset of flat frames: nothing to compare
        return np.full_like(scaled, np.nan), float("nan"), min_spread
    median, spread = median_spread(known, min_spread)
    return (scaled - median) / spread, median, spread


class ImageQualityCheck(Check[ImageQualityParams]):
    name = "image_quality"
    description = "dark, overexposed, blurry, low-information, odd-sized, greyscale or letterboxed images"
    produces = frozenset({*IMAGE_KINDS, SHORTCUT})
    Params = ImageQualityParams
    kinds = {
        SHORTCUT: FindingKind(
            "Quality shortcuts",
            "Classes where an image defect is far more common than in the others: a cue a model learns "
            "instead of the content (see the per-class table).",
            layout="classes", order=9,
        ),
        "low_information": FindingKind(
            "Low-information images",
            "Nearly blank images: little in them to learn from, unusually so for this dataset.",
            layout="images", order=10,
        ),
        "dark": FindingKind(
            "Dark images", "Images much darker than this dataset's typical image, and dark in absolute terms.",
            layout="images", order=11,
        ),
        "overexposed": FindingKind(
            "Overexposed images",
            "Images much brighter than this dataset's typical image, with blown-out highlights.",
            layout="images", order=12,
        ),
        "blurry": FindingKind(
            "Blurry images", "Images whose strongest edges are much softer than this dataset's typical image.",
            layout="images", order=13,
        ),
        "letterboxed": FindingKind(
            "Letterboxed images",
            "Images with large uniform bars on opposite edges (letterbox, pillarbox, padding).",
            layout="images", order=14,
        ),
        "odd_size": FindingKind(
            "Odd image sizes", "Images far smaller or larger than this dataset's typical size.",
            layout="images", order=15,
        ),
        "odd_aspect_ratio": FindingKind(
            "Odd aspect ratios", "Images far wider or taller than this dataset's typical shape.",
            layout="images", order=16,
        ),
        "greyscale": FindingKind(
            "Greyscale images", "Greyscale images in a dataset that is mostly in colour.",
            layout="images", order=17,
        ),
    }

    def run(self, ctx: CheckContext) -> CheckResult:
        params = self.params
        images = ctx.images[ctx.images["readable"] & ctx.images["entropy"].notna()]
        if len(images) < params.min_images:
            return CheckResult(skipped=f"needs at least {params.min_images} readable images to know what is "
                                       f"typical (found {len(images)})")
        found: dict[str, dict[Any, Finding]] = {}
        thresholds: dict[str, FenceSummary] = {}
        for rule in RULES:
            found[rule.kind], fence = self._judge(rule, images, params)
            thresholds[rule.kind] = FenceSummary(median=fence.median, fence_low=fence.low,
                                                 fence_high=fence.high, spread_on_scale=fence.spread)
        found["greyscale"], greyscale_share = self._greyscale(images, params)
        # Exposure squeezes the histogram: a dark or blown-out image is also low-information only when
        # it is nearly blank; and its crushed or blown edge rows are not a letterbox.
        exposed = found["dark"].keys() | found["overexposed"].keys()
        entropy = images["entropy"]
        found["low_information"] = {index: finding for index, finding in found["low_information"].items()
                                    if index not in exposed or entropy[index] <= params.blank_max_entropy}
        found["letterboxed"] = {index: finding for index, finding in found["letterboxed"].items()
                                if index not in exposed}
        flags = pd.DataFrame({kind: images.index.isin(list(found[kind])) for kind in IMAGE_KINDS},
                             index=images.index)
        shortcuts, table = self._shortcuts(images, flags, params)
        summary = ImageQualitySummary(thresholds=thresholds, counts={kind: len(found[kind]) for kind in IMAGE_KINDS},
                                      greyscale_share=greyscale_share, shortcuts=len(shortcuts), per_class=table)
        findings = [finding for kind in IMAGE_KINDS for finding in found[kind].values()]
        return CheckResult(findings=findings + shortcuts, summary=summary)

    @staticmethod
    def _judge(rule: Rule, images: pd.DataFrame, params: ImageQualityParams) -> tuple[dict[Any, Finding], Fence]:
        """The findings of one rule by ``images`` index, and the fence it used."""
        raw = rule.value(images).to_numpy(dtype=np.float64)
        scaled = rule.scale.forward(raw)
        z, median, spread = robust_z(scaled, rule.min_spread(params))
        raw_median = float(np.median(raw[np.isfinite(raw)])) if np.isfinite(raw).any() else float("nan")
        limit = rule.beyond_limit(images, raw, raw_median, params) & np.isfinite(z)
        low = z <= -params.robust_z
        high = z >= params.robust_z
        outside = {"low": low, "high": high, "both": low | high}[rule.side] & limit
        fence = Fence(raw_median, spread, _inverse(rule.scale, median - params.robust_z * spread),
                      _inverse(rule.scale, median + params.robust_z * spread))
        found: dict[Any, Finding] = {}
        for position in np.flatnonzero(outside):
            row = images.iloc[position]
            direction = "below" if z[position] < 0 else "above"
            found[images.index[position]] = _image_finding(
                rule.kind, row, abs(float(z[position])),
                f"{_what(rule.kind, direction)}: {rule.describe} {_fmt(raw[position])}, dataset median "
                f"{_fmt(raw_median)} ({abs(float(z[position])):.1f} robust SD {direction})",
                {"value": raw[position], "dataset_median": raw_median, "robust_z": float(z[position])},
            )
        return found, fence

    @staticmethod
    def _greyscale(images: pd.DataFrame, params: ImageQualityParams) -> tuple[dict[Any, Finding], float]:
        """The greyscale findings, and the dataset's greyscale share (for the summary)."""
        colour = images["colour_fraction"].to_numpy(dtype=np.float64)
        grey = colour <= params.greyscale_max_colour_fraction
        share = float(grey.mean())
        if share > params.greyscale_max_share:
            return {}, share  # a greyscale or mixed dataset: grey images are not odd here
        found = {}
        for position in np.flatnonzero(grey):
            row = images.iloc[position]
            found[images.index[position]] = _image_finding(
                "greyscale", row, 1.0 - share,
                f"greyscale image ({colour[position]:.1%} of pixels coloured) in a dataset where {1 - share:.0%} "
                "of images have colour",
                {"value": colour[position], "dataset_greyscale_share": share},
            )
        return found, share

    @staticmethod
    def _shortcuts(
        images: pd.DataFrame, flags: pd.DataFrame, params: ImageQualityParams
    ) -> tuple[list[Finding], dict[str, dict[str, Any]]]:
        """Classes where one defect is far more common than in the other classes."""
        labels = images["label"]
        labelled = labels.notna()
        classes = sorted(labels[labelled].unique().tolist())
        table: dict[str, dict[str, Any]] = {}
        for name in classes:
            members = labels == name
            table[str(name)] = {"images": int(members.sum()),
                                **{kind: int(flags.loc[members, kind].sum()) for kind in IMAGE_KINDS}}
        if len(classes) < 2:
            return [], table
        tests = len(classes) * len(IMAGE_KINDS)
        total = int(labelled.sum())
        findings = []
        for kind in IMAGE_KINDS:
            flagged_all = int(flags.loc[labelled, kind].sum())
            for name in classes:
                n = table[str(name)]["images"]
                k = table[str(name)][kind]
                rest_n, rest_k = total - n, flagged_all - k
                if k < params.shortcut_min_images or rest_n == 0:
                    continue
                rate, rest_rate = k / n, rest_k / rest_n
                ratio = rate / max(rest_rate, 1.0 / rest_n)
                if rate < params.shortcut_min_rate or ratio < params.shortcut_min_ratio:
                    continue
                _, p_value = scipy_stats.fisher_exact([[k, n - k], [rest_k, rest_n - rest_k]], alternative="greater")
                adjusted = min(1.0, float(p_value) * tests)
                if adjusted >= params.shortcut_alpha:
                    continue
                findings.append(Finding(
                    check=SHORTCUT,
                    severity=Severity.WARNING,
                    message=(f"{rate:.0%} of class {name!r} is {kind.replace('_', ' ')} ({k} of {n}) against "
                             f"{rest_rate:.0%} of the other classes ({rest_k} of {rest_n}); a model can learn "
                             f"this as a cue for {name!r} (Fisher p = {adjusted:.2g}, Bonferroni over {tests})"),
                    label=str(name),
                    classes=(str(name),),
                    score=float(-np.log10(max(adjusted, 1e-300))),
                    details={"kind": kind, "class_rate": rate, "other_rate": rest_rate, "rate_ratio": ratio,
                             "flagged": k, "images": n, "p_value": adjusted},
                ))
        return findings, table


def _image_finding(kind: str, row: pd.Series, score: float, message: str, details: dict[str, Any]) -> Finding:
    return Finding(
        check=kind,
        severity=Severity.WARNING if kind == "low_information" else Severity.INFO,
        message=message,
        path=row["path"],
        label=plain(row["label"]),
        split=plain(row["split"]),
        sha256=plain(row["sha256"]),
        score=score,
        details=details,
    )


def _what(kind: str, direction: str) -> str:
    if kind == "odd_size":
        return "unusually small" if direction == "below" else "unusually large"
    if kind == "odd_aspect_ratio":
        return "unusually tall" if direction == "below" else "unusually wide"
    return {"dark": "dark", "overexposed": "overexposed", "blurry": "blurry", "low_information":
            "little visual information", "letterboxed": "letterboxed"}[kind]


def _inverse(scale: Scale, value: float) -> float:
    try:
        return float(scale.inverse(value))
    except OverflowError:
        return math.inf


def _fmt(value: float) -> str:
    return f"{value:.3g}"
