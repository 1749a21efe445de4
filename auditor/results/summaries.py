"""Each check's dataset-level summary as a typed model: what run.json records under ``checks``.

The models live in the results layer because both sides need them: checks fill them, and the gate and
reports (which must not import the checks) read them back typed instead of by string path.

run.json keeps the JSON shape it always had: a model is written with ``as_json`` (only the fields the
check set), so a field an older scan never recorded is left out rather than written as null. Reading
is the reverse: every field has a default so that results folders from older scans, which lack fields
added since, still load; unknown fields (from a newer scan) are ignored.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, RootModel, ValidationError


class CheckSummary(BaseModel):
    """Base of every check's summary."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    def as_json(self) -> dict[str, Any]:
        """The summary as run.json records it: the fields the check set, in declaration order."""
        data: dict[str, Any] = self.model_dump(exclude_unset=True)
        return data


class Skipped(CheckSummary):
    """A check that did not produce results: a requirement was missing, or it declined (too few images)."""

    skipped: str


class JudgedSummary(CheckSummary):
    """A model-based check's summary: whether the classifier's evidence could be trusted.

    ``reliable`` is None when the check had no classifier to judge (fewer than two classes)."""

    reliable: bool | None = None
    reliability_reason: str | None = None
    reliability: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        """The check's own figures first, the reliability verdict last, as run.json always had them."""
        data = super().as_json()
        for key in ("reliable", "reliability_reason", "reliability"):
            if key in data:
                data[key] = data.pop(key)
        return data


class UnknownSummary(JudgedSummary):
    """A check this version has no model for (a newer or a plugin check): its fields are kept as read."""

    model_config = ConfigDict(extra="allow", frozen=True)


class UnreadableSummary(CheckSummary):
    count: int = 0


class SplitBalance(CheckSummary):
    """One split's labelled readable images per class; ``imbalance_ratio`` is None without any."""

    counts: dict[str, int] = {}
    median: int | float = 0
    imbalance_ratio: float | None = None


class ClassImbalanceSummary(RootModel[dict[str, SplitBalance]]):
    """Split name ("all" without splits) -> its balance."""

    model_config = ConfigDict(frozen=True)

    def as_json(self) -> dict[str, Any]:
        return {split: balance.as_json() for split, balance in self.root.items()}

    def ratios(self) -> dict[str, float]:
        """Imbalance ratio per split, for the splits that have one."""
        return {split: float(balance.imbalance_ratio) for split, balance in self.root.items()
                if balance.imbalance_ratio is not None}


class DuplicatesSummary(CheckSummary):
    """Pairs accepted per method, groups per finding kind; each method's search figures as it recorded
    them (``perceptual``, ``levelled``, ``mirrored``, ``semantic``: diagnostics that no reader interprets)."""

    pairs: dict[str, int] = {}
    groups: dict[str, int] = {}
    images_in_groups: int = 0
    label_conflict_groups: int = 0
    chain_links_dropped: int = 0
    perceptual: dict[str, Any] | None = None
    levelled: dict[str, Any] | None = None
    mirrored: dict[str, Any] | None = None
    semantic: dict[str, Any] | None = None


class ClassLabelErrors(CheckSummary):
    images: int = 0
    flagged: int = 0
    estimated_error_rate: float | None = None


class LabelErrorsSummary(JudgedSummary):
    filter_by: str = ""
    quality_method: str = ""
    label_errors: int = 0
    label_conflicts: int = 0
    not_judged_small_class: int = 0
    not_judged_unlearnt_classes: list[str] = []
    estimated_error_rate: float | None = None
    per_class: dict[str, ClassLabelErrors] = {}


class ClassOverlapSummary(JudgedSummary):
    """``top_pairs``: the most overlapping class pairs, each with its classes and overlap figures."""

    overlapping_pairs: int = 0
    top_pairs: list[dict[str, Any]] = []
    dataset_noise_mass: float | None = None


class ZeroShotAmbiguity(CheckSummary):
    typical_evenness: float | None = None
    bar_z: float | None = None
    flagged: int = 0
    flagged_only_by_zero_shot: int = 0


class ClassAmbiguity(CheckSummary):
    ambiguous: int = 0
    images: int = 0
    rate: float = 0.0


class AmbiguousPair(CheckSummary):
    classes: list[str] = []
    images: int = 0


class AmbiguousSummary(JudgedSummary):
    sharpness: float | None = None
    closeness_weight: float | None = None
    min_relative_probability: float | None = None
    typical_evenness: float | None = None
    bar_z: float | None = None
    false_alarms: float | None = None
    zero_shot: ZeroShotAmbiguity | None = None
    ambiguous: int = 0
    not_reported_label_errors: int = 0
    per_class: dict[str, ClassAmbiguity] = {}
    top_pairs: list[AmbiguousPair] = []


class OutliersSummary(JudgedSummary):
    """``per_class``: whether distances were measured to the image's own class (labelled data)."""

    outliers: int = 0
    class_neighbours: int | None = None
    per_class: bool = False
    typical_distance: float | None = None
    threshold_distance: float | None = None
    robust_z: float | None = None


class FenceSummary(CheckSummary):
    """Where an image-quality rule drew its line: the dataset median and the fences, in raw units."""

    median: float | None = None
    fence_low: float | None = None
    fence_high: float | None = None
    spread_on_scale: float | None = None


class ImageQualitySummary(CheckSummary):
    """``per_class``: class -> {"images": n, kind: images of that kind}."""

    thresholds: dict[str, FenceSummary] = {}
    counts: dict[str, int] = {}
    greyscale_share: float | None = None
    shortcuts: int = 0
    per_class: dict[str, dict[str, int]] = {}


# The summary a check may record; ``Skipped`` is possible for every check.
Summary = CheckSummary | ClassImbalanceSummary

SUMMARY_MODELS: dict[str, type[CheckSummary] | type[ClassImbalanceSummary]] = {
    "unreadable": UnreadableSummary,
    "class_imbalance": ClassImbalanceSummary,
    "duplicates": DuplicatesSummary,
    "label_errors": LabelErrorsSummary,
    "class_overlap": ClassOverlapSummary,
    "ambiguous": AmbiguousSummary,
    "outliers": OutliersSummary,
    "image_quality": ImageQualitySummary,
}


class SummaryError(ValueError):
    """A run.json summary does not match its check's model."""


def read_summary(check: str, data: Any) -> Summary:
    """Parse one run.json ``checks`` entry into its check's model (``Skipped`` when the check was skipped)."""
    if not isinstance(data, dict):
        raise SummaryError(f"the {check} summary must be a JSON object")
    try:
        if data.get("skipped"):
            return Skipped.model_validate(data)
        return SUMMARY_MODELS.get(check, UnknownSummary).model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise SummaryError(f"the {check} summary is malformed: {where}: {first['msg']}") from None


def read_summaries(checks: dict[str, Any]) -> dict[str, Summary]:
    """Every run.json ``checks`` entry parsed, in run order."""
    return {str(name): read_summary(str(name), data) for name, data in checks.items()}


def reliability_problem(summary: Summary) -> str | None:
    """Why a check's findings cannot be judged (its evidence was found unreliable), else None."""
    if isinstance(summary, JudgedSummary) and summary.reliable is False:
        return str(summary.reliability_reason)
    return None
