"""Typed configuration: defaults live on the models, `configs/default.toml` mirrors them with comments.

A typo in a TOML file is an error (``extra="forbid"``), never a silently ignored setting, because a
CI gate that quietly runs with default thresholds is worse than one that refuses to start.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from auditor.core.errors import ConfigError
from auditor.core.model_input import check_input_shape
from auditor.core.toml_files import read_toml


def _types_in(annotation: Any) -> set[Any]:
    """``annotation`` and every type inside it (``Annotated``, unions, tuple and list items)."""
    found = {annotation}
    for arg in get_args(annotation):
        found |= _types_in(arg)
    return found


def _holds_bool(value: Any) -> bool:
    return isinstance(value, bool) or (isinstance(value, list | tuple) and any(isinstance(v, bool) for v in value))


class ConfigModel(BaseModel):
    """Base of every config section and check's params: an unknown key is an error (``extra="forbid"``), and so
    is true/false where a number is expected. pydantic reads TOML ``threshold = true`` as 1 otherwise: a typo
    that silently sets a threshold (the gate's rules are strict types; this covers every other section).
    So are TOML's ``nan`` and ``inf`` (``allow_inf_nan=False``): no setting is meant to take either, a ``nan``
    threshold breaks the arithmetic and one of ``-inf`` passes every comparison (near duplicates from any pair)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        types_in = _types_in(field.annotation) if field is not None else set()
        if _holds_bool(value) and types_in & {int, float} and bool not in types_in:
            got = str(value).lower() if isinstance(value, bool) else "a list with true/false in it"
            raise ValueError(f"expected a number, got {got}")
        return value


class StrictModel(ConfigModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class OnnxConfig(StrictModel):
    """How to feed an ONNX image model (``encoder.name = "onnx"``); see configs/default.toml."""

    # None: the model's fixed input height (when its input shape has one), else 224.
    input_size: int | None = Field(None, ge=8)
    # auto: NHWC when the input shape ends in 3 channels, else NCHW.
    layout: Literal["auto", "NCHW", "NHWC"] = "auto"
    scaling: Literal["0-255", "0-1", "mean_std"] = "mean_std"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    resize: Literal["stretch", "crop"] = "crop"
    # None: the model's first output.
    output: str | None = None

    @field_validator("input_size")
    @classmethod
    def _input_size_fits(cls, value: int | None) -> int | None:
        if value is not None:
            check_input_shape(value, value)
        return value


class EncoderConfig(StrictModel):
    name: Literal["auto", "clip", "builtin", "precomputed", "onnx"] = "auto"
    model: str = "ViT-B-32"
    pretrained: str = "laion2b_s34b_b79k"
    weights_file: Path | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    batch_size: int = Field(32, ge=1, le=4096)
    workers: int = Field(2, ge=0, le=64)
    precision: Literal["fp32", "bf16", "fp16", "int8"] = "fp32"
    allow_download: bool = True
    download_timeout_s: float = Field(5.0, gt=0)
    precomputed_file: Path | None = None
    model_file: Path | None = None
    onnx: OnnxConfig = Field(default_factory=OnnxConfig)


class ScanConfig(StrictModel):
    max_image_pixels: int = Field(89_478_485, ge=1)
    max_file_bytes: int = Field(512 * 1024 * 1024, ge=1)
    workers: int = Field(2, ge=0, le=64)
    cache_dir: Path | None = None
    use_cache: bool = True
    # None runs every registered check; each check named once.
    checks: list[str] | None = None
    # Reviewed decisions (``audit review``) applied to the findings; None: audit-decisions.toml beside the
    # dataset folder when it exists. A file named here must exist.
    decisions_file: Path | None = None

    @field_validator("checks")
    @classmethod
    def _each_check_once(cls, names: list[str] | None) -> list[str] | None:
        """A check named twice would run twice and report every finding twice (and the gate count it twice)."""
        if names is None:
            return None
        repeated = [name for name, count in Counter(names).items() if count > 1]
        if repeated:
            shown = ", ".join(repr(name) for name in repeated[:5]) + (" and more" if len(repeated) > 5 else "")
            subject = f"check {shown} is" if len(repeated) == 1 else f"checks {shown} are"
            raise ValueError(f"{subject} named more than once; name each check once")
        return names


class EngineConfig(StrictModel):
    """Where the decode + embed stage runs (``auditor/embed/ray_engine.py`` for ``ray``); checks always run here."""

    # local: worker processes on this machine; ray: Ray Data actors (needs `pip install 'auditor[ray]'`).
    name: Literal["local", "ray"] = "local"
    # Ray cluster to connect to ("ray://host:10001", "host:6379", "auto"); None: $RAY_ADDRESS, else a local
    # Ray instance started for the scan and stopped after it.
    address: str | None = None
    # Model-holding actors; None: one per GPU of the cluster, else one per CPU.
    actors: int | None = Field(None, ge=1, le=4096)
    # Object store size of a local Ray instance, in MiB (batches stream through it; it never holds the dataset).
    local_object_store_mb: int = Field(512, ge=80)


class ProbabilityParams(ConfigModel):
    # Shrinkage of the classifier's within-class covariance towards its diagonal (0: trust every estimated
    # correlation between dimensions, 1: ignore them all). Unset (None): chosen per dataset by held-out
    # log-loss, never below the dataset's own least sensible shrinkage (Schaefer-Strimmer), since too little
    # fits the noise of the estimate (and the wrong labels) and too much double-counts correlated dimensions.
    shrinkage: float | None = Field(None, gt=0.0, le=1.0)
    # Neighbours in the k-NN vote blended with the classifier (0: classifier only).
    knn_neighbours: int = Field(10, ge=0, le=200)
    # Share of the k-NN vote in the blended probabilities (0..1).
    knn_weight: float = Field(0.5, ge=0.0, le=1.0)
    # An image's closeness to a class is its mean cosine similarity to this many nearest members of the
    # class (ambiguity and outliers read it): enough that a few near-copies or a small junk cluster cannot
    # make a class look close, few enough that small classes still have that many.
    class_neighbours: int = Field(7, ge=1, le=100)


class SearchParams(ConfigModel):
    """Nearest-neighbour searches shared by the checks (k-NN vote, class closeness, duplicates).

    A search is exact while it is small (see ``exact_max_vectors``); beyond, a cell join of k-means cells
    (``similarity.nearest``) whose recall against exact search is measured on a sample of queries every
    time: the join searches the fewest cells per query that reach ``min_recall``, or the search falls back to
    exact. run.json ``searches`` records each search, its parameters and measured
    recall. (``nprobe``, the first cells an inverted-file index probed, is gone: a join's recall at every
    number of cells is known from one exact search of the sample, so it takes the cheapest that suffices.)
    """

    # A search is exact while queries x indexed vectors is at most this squared (every image against every
    # image: up to this many images; O(N^2 d) in all); beyond, approximate.
    exact_max_vectors: int = Field(20_000, ge=2)
    # Recall@k against exact search an approximate search must reach on the measured sample of queries.
    min_recall: float = Field(0.99, gt=0.0, le=1.0)
    # Queries in that sample (exact search for them costs sample x N x d).
    recall_queries: int = Field(1000, ge=10)


class ZeroShotParams(ConfigModel):
    # auto: when the encoder has a text tower and real pretrained weights; off: never; always: whenever
    # the encoder has a text tower, even untrained (for tests; the findings are then not meaningful).
    mode: Literal["auto", "off", "always"] = "auto"
    # Prompt templates; "{}" becomes the class name (folder name with _ and - as spaces). Each class's
    # prompt embeddings are averaged, as in CLIP's prompt ensembling.
    prompts: list[str] = Field(
        default_factory=lambda: ["a photo of a {}.", "a photo of the {}.", "an image of a {}.", "a picture of a {}."],
        min_length=1,
    )


class ReliabilityParams(ConfigModel):
    """How the model-based checks judge their own evidence (``auditor/evidence/reliability.py``)."""

    # Assess the model-based checks' reliability (false: always trust them).
    enabled: bool = True
    # Confidence level of the bounds recorded beside the verdict (run.json figures).
    confidence: float = Field(0.95, gt=0.5, lt=1.0)
    # The checks are trusted unless their label-error flags are expected to be mostly wrong: the mean over
    # the flags of the fitted share of disagreements at each flag's confidence that are label noise rather
    # than the classifier's own mistakes, with its upper bound at `confidence`, below this (0.5: noise as
    # likely as a mistake). A class whose own flags are below it is marked even when the rest are trusted.
    min_expected_flag_precision: float = Field(0.5, ge=0.0, le=1.0)
    # And never when the classifier's chance-corrected cross-validated balanced accuracy, (BA - 1/K) / (1 - 1/K),
    # is below this (0.5: closer to chance than to perfect; there the noise floor cannot be told apart).
    min_chance_corrected_accuracy: float = Field(0.5, ge=0.0, le=1.0)


FilterBy = Literal[
    "prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given",
    "low_normalized_margin", "low_self_confidence",
]


class LabelIssueParams(ConfigModel):
    """Which labels the shared evidence finds implausible (``Evidence.label_issues``): label_errors reports them,
    ambiguous and class_overlap set them apart, and the reliability verdict counts them."""

    # cleanlab's find_label_issues filter. "prune_by_noise_rate" (cleanlab's default) flags, per
    # pair of classes, as many images as the confident joint estimates are mislabelled, lowest margin
    # first; "both" also requires the per-class count to agree (fewer, surer flags);
    # "predicted_neq_given" flags every image whose top class is not its label (many, noisy flags).
    filter_by: FilterBy = "prune_by_noise_rate"
    # Classes with fewer embedded images than this are not judged by the classifier: a held-out model
    # saw at most this many minus one of them, too few to learn what the class looks like, so its
    # images would look mislabelled for want of examples. Label conflicts between copies are still
    # reported. The default matches class_imbalance's starved-class minimum.
    min_class_images: int = Field(5, ge=2)
    # Nor are classes with fewer embedded images than this fraction of the median class's: beside classes many
    # times larger, the few images of a starved class barely place its mean and its prior is small, so its own
    # images read as the big classes' (on sample_data both flags on the starved hexagon class were of that
    # kind). The default matches class_imbalance's starved-class fraction (``min_fraction_of_median``).
    min_class_fraction_of_median: float = Field(0.2, ge=0.0, le=1.0)
    # Also flag an image whose top class is not its label and whose given label gets no more probability than
    # that class gets, on average, on images labelled otherwise: confidently *not* its label, though no other
    # class reaches the mean probability of its own images, which is what confident learning's count needs
    # (``implausible_labels``). Asked of the blended probabilities and of the classifier's own: the k-NN vote
    # can dilute a clear verdict of the classifier when the neighbours disagree on which wrong class.
    unclaimed_images: bool = True


class AmbiguityParams(ConfigModel):
    """Which images the shared evidence finds split between classes (``Evidence.ambiguity``): the ambiguous
    check reports them, class_overlap counts them per class pair."""

    # A class is plausible for an image only when its calibrated probability is at least this fraction
    # of the top class's (a floor under the test below).
    min_relative_probability: float = Field(0.1, gt=0.0, le=1.0)
    # ...and when the image's log(class / top) probability ratio is improbably high for a clean image of
    # either class: against the images of the two classes the classifier gets right (median and MAD of
    # the same ratio), beyond the Bonferroni bar for this many chance flags over the whole dataset. So
    # the bar scales with how confident the classifier is on this dataset and this pair of classes.
    false_alarms: float = Field(0.05, gt=0.0)
    # A class pair with fewer correctly classified images than this is judged against every correctly
    # classified image's runner-up ratio (too few to estimate the pair's own spread).
    min_reference_images: int = Field(8, ge=3)
    # Share of class closeness (mean similarity to each class's nearest members) in the evidence; the
    # rest is the cross-validated regression (0: regression only, 1: closeness only).
    closeness_weight: float = Field(0.5, ge=0.0, le=1.0)
    # Also flag images whose zero-shot evidence alone (similarity to CLIP class prompts, temperature fitted
    # to the labels) is split by the same rule, the given label among the plausible classes; only when the
    # scan computed class prompts ([zero_shot]). Unmeasured here: no pretrained weights on these machines.
    zero_shot: bool = True
    # Temperature-scale the evidence to the dataset first (off: use it as the models gave it).
    calibrate: bool = True


class EvidenceConfig(ConfigModel):
    """The evidence several checks share, computed once per scan (``auditor.evidence.Evidence``)."""

    # Nearest neighbours searched per image by the one embedding search the k-NN vote ([probabilities]
    # knn_neighbours) and the duplicates check share, and per image by the duplicates' hash searches: at
    # least the duplicates' reference_neighbour + the largest copy group expected.
    neighbours: int = Field(20, ge=2, le=1000)
    label_issues: LabelIssueParams = Field(default_factory=LabelIssueParams)
    ambiguity: AmbiguityParams = Field(default_factory=AmbiguityParams)


# Settings that moved from a check's section to [evidence]: (check, old key) -> path under [evidence]. The old
# keys still load, for one release, with a deprecation warning naming the new key.
MOVED_TO_EVIDENCE: dict[tuple[str, str], tuple[str, ...]] = {
    **{("label_errors", key): ("label_issues", key) for key in LabelIssueParams.model_fields},
    **{("ambiguous", key): ("ambiguity", key) for key in AmbiguityParams.model_fields},
    ("duplicates", "top_k"): ("neighbours",),
}


def moved_settings(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``data`` (a whole config, as written) with the settings of ``MOVED_TO_EVIDENCE`` under their new keys, and
    one deprecation warning per old key found. A new key that is also set wins over the old one."""
    checks = data.get("checks")
    if not isinstance(checks, Mapping):
        return dict(data), []
    moved: dict[str, Any] = {}
    kept: dict[str, Any] = {}
    notes: list[str] = []
    for name, values in checks.items():
        if not isinstance(values, Mapping):
            kept[name] = values
            continue
        kept[name] = {key: value for key, value in values.items() if (name, key) not in MOVED_TO_EVIDENCE}
        for key in values.keys() - kept[name].keys():
            path = MOVED_TO_EVIDENCE[(name, key)]
            node = moved
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = values[key]
            notes.append(f"config key [checks.{name}] {key} is deprecated and will be removed in the next release; "
                         f"set [{'.'.join(('evidence', *path[:-1]))}] {path[-1]} instead")
    evidence = data.get("evidence", {})
    merged = _deep_merge(moved, dict(evidence)) if isinstance(evidence, Mapping) else evidence
    result = {**data, "checks": kept}
    if moved:
        result["evidence"] = merged
    return result, sorted(notes)


# Count rules with a dedicated config key: key -> finding check name.
COUNT_RULES = {
    "max_unreadable": "unreadable",
    "max_split_leakage": "split_leakage",
    "max_exact_duplicate": "exact_duplicate",
    "max_near_duplicate": "near_duplicate",
}


# Strict: TOML `true` is not a count of 1, nor a rate of 100%.
Count = Annotated[int, Field(ge=0, strict=True)]
Rate = Annotated[float, Field(ge=0.0, le=1.0, strict=True)]


class GateConfig(BaseModel):
    """Gate rules; ``None`` turns a rule off (never ``inf``: refused, as ``nan`` is). Counts are of findings (a
    copy pair gives one per image)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
    # Most (new) `unreadable` findings allowed.
    max_unreadable: Count | None = 0
    # Most (new) `split_leakage` findings allowed (an image with a copy in another split).
    max_split_leakage: Count | None = 0
    # Most (new) `exact_duplicate` findings allowed.
    max_exact_duplicate: Count | None = 0
    # Most (new) `near_duplicate` findings allowed.
    max_near_duplicate: Count | None = None
    # Largest share of labelled readable images with a (new) `label_error` finding, e.g. 0.02 = 2%.
    max_label_error_rate: Rate | None = None
    # The same, within each class (denominator: the class's labelled readable images).
    max_label_error_rate_per_class: Rate | None = None
    # Largest/smallest class ratio allowed in any split (from the class_imbalance check).
    max_imbalance_ratio: Annotated[float, Field(ge=1.0, strict=True)] | None = None
    # Any finding check -> most (new) findings allowed, e.g. {outlier = 10}.
    # Kinds the results' run.json does not know are an error (exit 2), so a typo never passes a gate.
    max_findings: dict[str, Count] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _no_double_rules(self) -> GateConfig:
        """One limit per check, so a verdict never depends on which of two limits a reader looked at."""
        clashes = sorted(set(self.max_findings) & set(COUNT_RULES.values()))
        if clashes:
            keys = ", ".join(f"max_{name}" for name in clashes)
            raise ValueError(f"max_findings repeats {', '.join(clashes)}; set {keys} instead")
        return self


class AuditConfig(StrictModel):
    scan: ScanConfig = Field(default_factory=ScanConfig)
    encoder: EncoderConfig = Field(default_factory=EncoderConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    probabilities: ProbabilityParams = Field(default_factory=ProbabilityParams)
    search: SearchParams = Field(default_factory=SearchParams)
    zero_shot: ZeroShotParams = Field(default_factory=ZeroShotParams)
    reliability: ReliabilityParams = Field(default_factory=ReliabilityParams)
    evidence: EvidenceConfig = Field(default_factory=EvidenceConfig)
    # Check name -> its params as written; each check validates its own (``auditor.checks.check_params``).
    checks: dict[str, dict[str, Any]] = Field(default_factory=dict)
    gate: GateConfig = Field(default_factory=GateConfig)
    # One warning per deprecated key the config was written with (``moved_settings``); the scan reports them.
    _deprecations: list[str] = PrivateAttr(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _moved_keys(cls, data: Any, handler: ModelWrapValidatorHandler[AuditConfig]) -> AuditConfig:
        """Settings written under their old keys load under the new ones, remembered for a warning."""
        notes: list[str] = []
        if isinstance(data, Mapping):
            data, notes = moved_settings(data)
        config = handler(data)
        if notes:
            config._deprecations = notes
        return config

    @property
    def deprecations(self) -> list[str]:
        """Deprecation warnings for the old keys this config was written with."""
        return list(self._deprecations)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def did_you_mean(name: str, choices: Sequence[str]) -> str:
    """' (did you mean X?)' for a near miss among ``choices``, else ''."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _fields_at(model: type[BaseModel], location: Sequence[int | str]) -> list[str]:
    """The keys a config table at ``location`` accepts (for a did-you-mean on an unknown key)."""
    for part in location:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _holds(data: Mapping[str, Any], location: Sequence[int | str]) -> bool:
    """Whether ``data`` has a value at ``location`` (keys of tables, indices of arrays)."""
    node: Any = data
    for part in location:
        if isinstance(node, Mapping) and str(part) in node:
            node = node[str(part)]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return False
    return True


def _origin(location: Sequence[int | str], file_data: Mapping[str, Any], overrides: Mapping[str, Any],
            source: str) -> str:
    """Where a setting came from: a command-line option, the config file, or the defaults."""
    if _holds(overrides, location):
        return "a command-line option"
    if _holds(file_data, location):
        return source
    return "the defaults"


def _format_validation_error(
    source: str, error: ValidationError, file_data: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None, model: type[BaseModel] | None = None,
) -> str:
    """One line for one bad field; with several, a heading and one line per field."""
    head = "invalid configuration:" if file_data is not None else f"invalid configuration in {source}:"
    problems = []
    for item in error.errors():
        location = item["loc"]
        where = ".".join(str(part) for part in location) or "(top level)"
        hint = ""
        if item["type"] == "extra_forbidden" and model is not None and location:
            hint = did_you_mean(str(location[-1]), _fields_at(model, location[:-1]))
        origin = f" (from {_origin(location, file_data, overrides or {}, source)})" if file_data is not None else ""
        problems.append(f"{where}: {item['msg']}{hint}{origin}")
    if len(problems) == 1:
        return f"{head} {problems[0]}"
    return "\n".join([head, *(f"  {problem}" for problem in problems)])


def load_config(
    path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    check_params: Mapping[str, type[BaseModel]] | None = None,
) -> AuditConfig:
    """Load defaults, then ``path`` (TOML), then CLI ``overrides``.

    ``check_params`` (check name -> its params model, ``auditor.checks.PARAMS``) also validates the check
    names and [checks.*] sections; it is passed in because the checks sit above this module.
    """
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        data = read_toml(path, "config file")
    file_data = data
    if overrides:
        data = _deep_merge(data, overrides)
    try:
        config = AuditConfig.model_validate(data)
    except ValidationError as exc:
        # A setting under its old key is validated under its new one: say where it came from by the new key.
        origins = moved_settings(file_data)[0], moved_settings(overrides or {})[0]
        raise ConfigError(_format_validation_error(source, exc, *origins, AuditConfig)) from None
    if check_params is not None:
        flagged = (overrides or {}).get("scan", {}).get("checks")
        validate_checks(config, check_params, source, "--checks" if flagged is not None else source)
    return config


def validate_checks(
    config: AuditConfig, check_params: Mapping[str, type[BaseModel]], source: str = "config",
    checks_source: str | None = None,
) -> None:
    """Refuse unknown check names and invalid [checks.*] sections, naming where they came from.

    ``checks_source`` names where ``scan.checks`` came from (the ``--checks`` option or ``source``).
    """
    valid = sorted(check_params)
    named = [(name, checks_source or source) for name in config.scan.checks or []]
    named += [(name, f"{source} [checks.{name}]") for name in config.checks]
    for name, origin in named:
        if name not in check_params:
            raise ConfigError(
                f"unknown check {name!r} in {origin}{did_you_mean(name, valid)}; valid checks: {', '.join(valid)}"
            )
    for name, values in config.checks.items():
        try:
            check_params[name].model_validate(values)
        except ValidationError as exc:
            raise ConfigError(
                _format_validation_error(f"{source} [checks.{name}]", exc, model=check_params[name])
            ) from None
