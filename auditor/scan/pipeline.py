"""The scan pipeline, one function per stage: discover -> read & hash -> embed (cached) -> class prompts
-> checks -> outputs.

It owns the order of the stages and what run.json records; the stages' work lives in the modules they call.
The pipeline reports progress through an observer and never prints; the CLI decides how to show it.
"""

from __future__ import annotations

import platform
import time
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from auditor import __version__
from auditor.checks import PARAMS, REGISTRY, Check, CheckContext, Requirement, check_record
from auditor.core import library_warnings, progress, slow_imports
from auditor.core.config import AuditConfig, validate_checks
from auditor.core.encoder_facts import ClassPrompts
from auditor.embed.cache import EmbeddingCache, default_cache_dir
from auditor.embed.embedding import embed_files
from auditor.embed.encoders import Encoder, EncoderInfo, build_encoder
from auditor.embed.encoders.precomputed import PrecomputedEmbeddings
from auditor.embed.ray_engine import embed_files_ray, require_ray
from auditor.embed.zero_shot import class_prompts, zero_shot_decision
from auditor.evidence import Evidence
from auditor.evidence.reliability import ADVICE as RELIABILITY_ADVICE
from auditor.evidence.user_probabilities import UserProbabilities, load_user_probabilities
from auditor.ingest.dataset import Discovery, discover
from auditor.ingest.images import ImageInfo, read_discovered
from auditor.ingest.parallel import ordered_map
from auditor.ingest.properties import PROPERTY_COLUMNS
from auditor.results.decisions import Decision, apply_decisions, default_decisions_path, load_decisions, now_utc
from auditor.results.destinations import refuse_inside_dataset
from auditor.results.findings import (
    EMBEDDINGS_FILE,
    FINDINGS_FILE,
    IMAGES_BASE_SCHEMA,
    IMAGES_FILE,
    RESULT_SET_FILES,
    RUN_FILE,
    SCHEMA_VERSION,
    Finding,
    embeddings_schema,
    findings_table,
)
from auditor.results.outputs import StagedWrite, json_writer, new_run_id, parquet_writer, prepare_results_dir
from auditor.results.reading import sha_by_path
from auditor.results.summaries import Skipped, Summary, UnknownSummary, reliability_problem


class Observer(Protocol):
    def stage(self, name: str, total: int | None) -> None: ...
    def advance(self, count: int = 1) -> None: ...
    def done(self) -> None: ...
    # What the current stage is doing now, e.g. "label_errors: k-NN vote" while the checks run
    # (the checks' sub-steps, see progress.py). Optional: an observer without it gets no sub-steps.
    def step(self, text: str) -> None: ...
    # A warning that changes how the whole scan reads (the encoder fell back, the checks found their evidence
    # unreliable), told as soon as it is known rather than only in the result. Optional, like ``step``.
    def warn(self, text: str) -> None: ...


class SilentObserver:
    def stage(self, name: str, total: int | None) -> None:
        pass

    def advance(self, count: int = 1) -> None:
        pass

    def done(self) -> None:
        pass

    def step(self, text: str) -> None:
        pass

    def warn(self, text: str) -> None:
        pass


@dataclass
class ScanResult:
    out_dir: Path
    findings: list[Finding]
    images: pd.DataFrame
    run: dict[str, Any]
    encoder: EncoderInfo
    warnings: list[str] = field(default_factory=list)


def _check_out_dir(dataset: Path, out: Path) -> None:
    refuse_inside_dataset("--out", out, dataset)
    prepare_results_dir(out, RESULT_SET_FILES)


def _images_frame(discovery: Discovery, infos: list[ImageInfo]) -> pd.DataFrame:
    rows = []
    for record, info in zip(discovery.records, infos, strict=True):
        rows.append(
            {
                "path": record.path,
                "label": record.label,
                "split": record.split,
                "sha256": info.sha256,
                "size_bytes": info.size_bytes,
                "width": info.width,
                "height": info.height,
                "format": info.format,
                "mode": info.mode,
                "readable": info.readable,
                "unreadable_reason": info.reason,
                "pixel_sha256": info.pixel_sha256,
                "phash": info.phash,
                "dhash": info.dhash,
                "levelled_hash": info.levelled_hash,
                "mirror_hash": info.mirror_hash,
                **{name: info.properties.get(name, np.nan) for name in PROPERTY_COLUMNS},
            }
        )
    frame = pd.DataFrame(rows, columns=[*IMAGES_BASE_SCHEMA.names, *PROPERTY_COLUMNS])
    for column in ("size_bytes", "width", "height"):
        frame[column] = frame[column].astype("Int64")
    frame["readable"] = frame["readable"].astype(bool)
    frame[list(PROPERTY_COLUMNS)] = frame[list(PROPERTY_COLUMNS)].astype("float64")
    return frame


def run_scan(
    dataset: Path,
    config: AuditConfig,
    out_dir: Path,
    manifest: Path | None = None,
    observer: Observer | None = None,
    pred_probs: Path | None = None,
) -> ScanResult:
    """Scan ``dataset`` with ``config`` and write findings, images, embeddings and run.json to ``out_dir``.

    ``pred_probs``: the user's out-of-sample class probabilities (Parquet, see user_probabilities.py), used
    instead of auditor's classifier. Warnings that libraries raise meanwhile never reach stderr: each kind
    becomes one line, with a count, among the scan's own warnings.
    """
    with library_warnings.collected() as noise:
        return _run_scan(dataset, config, out_dir, manifest, observer, noise, pred_probs)


@dataclass
class CheckStage:
    """What the check stage yields: findings, each check's run.json summary and seconds, the extra images
    columns, and the warnings it raised (library warnings collected, one line per kind)."""

    findings: list[Finding]
    summaries: dict[str, Summary]
    timings: dict[str, float]
    columns: dict[str, pd.Series]
    warnings: list[str]


def run_checks(
    context: CheckContext, observer: Observer | None = None, checks: Mapping[str, type[Check[Any]]] | None = None
) -> CheckStage:
    """The check stage alone, exactly as ``run_scan`` runs it, on a context the caller built.

    For callers that already hold the vectors and image facts in memory: ``benchmarks/scale.py`` runs the
    checks on a million synthetic vectors, where writing and reading a million image files would cost more
    than the checks it measures. ``checks``: the registry to run from (``auditor.checks.build_registry``);
    default, every registered check.
    """
    registry = REGISTRY if checks is None else checks
    validate_checks(context.config, {name: check.Params for name, check in registry.items()})
    warnings: list[str] = list(context.config.deprecations)
    with library_warnings.collected() as noise:
        findings, summaries, timings, columns = _run_checks(
            context, context.config, observer or SilentObserver(), warnings, registry
        )
    warnings.extend(library_warnings.PREFIX + line for line in noise.summary())
    return CheckStage(findings, summaries, timings, columns, warnings)


def _run_scan(
    dataset: Path,
    config: AuditConfig,
    out_dir: Path,
    manifest: Path | None,
    observer: Observer | None,
    noise: library_warnings.Collected,
    pred_probs: Path | None,
) -> ScanResult:
    observer = observer or SilentObserver()
    dataset, out_dir = Path(dataset), Path(out_dir)
    validate_checks(config, PARAMS)
    if config.engine.name == "ray":
        require_ray()
    _check_out_dir(dataset, out_dir)
    state = _State(dataset, manifest, config, observer, noise)
    # Old config keys still load, for one release; each says which key replaces it.
    state.warnings.extend(config.deprecations)
    decisions = _load_decisions_file(state)
    discovery = _discover(state)
    images = _read(state, discovery)
    # Before the (slow) embedding, so a malformed probabilities file fails in seconds.
    user_probs = _user_probabilities(pred_probs, images[images["readable"] & images["label"].notna()])
    encoder, encoder_info = _load_encoder(state)
    vectors, embed_stats = _embed_stage(state, images, discovery, encoder, encoder_info)
    prompts, zero_shot = _prompts_stage(state, images, encoder, encoder_info)
    # One evidence object per scan, from the [evidence] settings: every check reads the same verdicts.
    evidence = Evidence(images, vectors, config, prompts, user_probs)
    context = CheckContext(
        images=images,
        embeddings=vectors,
        classes=discovery.classes,
        splits=discovery.splits,
        empty_classes=discovery.empty_classes,
        encoder=encoder_info,
        config=config,
        searches=evidence.searches,
        evidence=evidence,
    )
    probabilities = _probabilities_record(user_probs, evidence.embedded, state.warnings)
    findings, check_summaries, check_timings, extra_columns = _run_checks(context, config, observer, state.warnings,
                                                                          REGISTRY)
    state.timings["checks"] = check_timings
    findings = _decisions_stage(state, images, findings, decisions)
    output_images = images.drop(columns=["embedding_row"])
    for name, column in extra_columns.items():
        output_images[name] = column
    embedded = _Embedded(vectors, encoder_info, embed_stats)
    checked = _Checked(findings, check_summaries, zero_shot, probabilities, context.searches.records)
    run = _write_outputs(state, out_dir, discovery, images, output_images, embedded, checked)
    return ScanResult(out_dir, findings, output_images, run, encoder_info, state.warnings)


@dataclass(frozen=True)
class _Embedded:
    """What the embed stage yields for the outputs: the vectors (``images.embedding_row`` indexes them), the
    encoder's facts and the embedding stats (run.json "embedding")."""

    vectors: np.ndarray
    encoder: EncoderInfo
    stats: dict[str, Any]


@dataclass(frozen=True)
class _Checked:
    """What the evidence and checks yield for the outputs: findings (decisions applied), each check's summary,
    and run.json's records of zero-shot prompts, whose probabilities were read, and every neighbour search."""

    findings: list[Finding]
    summaries: dict[str, Summary]
    zero_shot: dict[str, Any]
    probabilities: dict[str, Any]
    searches: list[dict[str, Any]]


@dataclass
class _State:
    """What every stage shares: the inputs, the progress observer, and what the run record collects."""

    dataset: Path
    manifest: Path | None
    config: AuditConfig
    observer: Observer
    noise: library_warnings.Collected
    timings: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    decisions: dict[str, Any] = field(default_factory=dict)
    # Where the decode + embed stage ran (run.json "engine").
    engine: dict[str, Any] = field(default_factory=dict)


def _discover(state: _State) -> Discovery:
    started = time.perf_counter()
    discovery = discover(state.dataset, state.manifest)
    state.warnings.extend(discovery.notes)
    state.timings["discover"] = time.perf_counter() - started
    return discovery


def _read(state: _State, discovery: Discovery) -> pd.DataFrame:
    """Every file is hashed and decoded once, in worker processes; one images row per discovered file.

    Once the workers are running, cleanlab and scipy load in a background thread (``slow_imports``) while this
    thread only waits on them; it imports nothing itself until that import is joined, because two threads
    importing one package tree at once can see half-made modules. A read in this process (``workers = 0``,
    a handful of files) imports them later, on first use, as usual.
    """
    started = time.perf_counter()
    scan = state.config.scan
    state.observer.stage("Reading & hashing", len(discovery.records))
    reader = partial(read_discovered, scan.max_image_pixels, scan.max_file_bytes, root=state.dataset)
    items = [(record.abs_path, record.problem) for record in discovery.records]
    infos: list[ImageInfo] = []
    try:
        with closing(ordered_map(reader, items, scan.workers, chunk_size=16,
                                 on_workers_started=slow_imports.start)) as read:
            for info in read:
                infos.append(info)
                state.observer.advance()
    finally:
        # Also on Ctrl-C or an error: whatever handles it may import, and must not race the import.
        waiting = time.perf_counter()
        slow_imports.wait()
        # Seconds the scan waited, after the read, for that import to finish (not part of "read").
        state.timings["wait_for_imports"] = time.perf_counter() - waiting
    state.observer.done()
    images = _images_frame(discovery, infos)
    state.timings["read"] = time.perf_counter() - started - state.timings["wait_for_imports"]
    return images


def _load_encoder(state: _State) -> tuple[Encoder | PrecomputedEmbeddings, EncoderInfo]:
    started = time.perf_counter()
    encoder, encoder_info = build_encoder(state.config.encoder)
    warning = None
    if encoder_info.fallback_reason:
        warning = ("CLIP weights unavailable, fell back to the built-in descriptor (lower quality): "
                   f"{encoder_info.fallback_reason}")
    elif not encoder_info.pretrained and encoder_info.name == "clip":
        warning = "the CLIP model is untrained (random weights); findings are not meaningful"
    if warning is not None:
        state.warnings.insert(0, warning)
        _warn(state.observer, warning)
    state.timings["load_encoder"] = time.perf_counter() - started
    return encoder, encoder_info


def _embed_stage(
    state: _State,
    images: pd.DataFrame,
    discovery: Discovery,
    encoder: Encoder | PrecomputedEmbeddings,
    encoder_info: EncoderInfo,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Adds ``embedding_row`` to ``images`` (-1: not embedded); returns the vectors and the embedding stats."""
    started = time.perf_counter()
    embedding_rows, vectors, embed_stats = _embed(
        images, state.dataset, discovery, encoder, encoder_info.name, state.config, state.observer, state.warnings
    )
    state.engine = embed_stats.pop("engine")
    images["embedding_row"] = embedding_rows
    state.timings["embed"] = time.perf_counter() - started
    return vectors, embed_stats


@dataclass(frozen=True)
class _DecisionsFile:
    """The reviewed decisions the scan applies: where they are read from, whether that file is there, and them."""

    path: Path
    present: bool
    decisions: list[Decision]


def _load_decisions_file(state: _State) -> _DecisionsFile:
    """Read before any image, so a missing or malformed decisions file fails in seconds, not after embedding."""
    configured = state.config.scan.decisions_file
    path = Path(configured) if configured is not None else default_decisions_path(state.dataset)
    present = configured is not None or path.is_file()
    # A configured file that is missing is an error; the default one is optional.
    return _DecisionsFile(path, present, load_decisions(path) if present else [])


def _decisions_stage(
    state: _State, images: pd.DataFrame, findings: list[Finding], loaded: _DecisionsFile
) -> list[Finding]:
    """Waive the findings that reviewed ``accept`` decisions cover; stale and expired decisions become
    run.json warnings (and are listed under run.json ``decisions``), so nobody relies on them unknowingly."""
    kinds = {kind for check in REGISTRY.values() for kind in check.produces}
    applied = apply_decisions(findings, loaded.decisions, sha_by_path(images), now_utc().date(), kinds)
    state.decisions = applied.record(loaded.path, loaded.present, len(loaded.decisions))
    state.warnings.extend(applied.warnings(loaded.path))
    return applied.findings


def _prompts_stage(
    state: _State, images: pd.DataFrame, encoder: Encoder | PrecomputedEmbeddings, encoder_info: EncoderInfo
) -> tuple[ClassPrompts | None, dict[str, Any]]:
    started = time.perf_counter()
    labelled_classes = sorted(images.loc[images["embedding_row"] >= 0, "label"].dropna().unique().tolist())
    prompts, zero_shot = _class_prompts(encoder, encoder_info, labelled_classes, state.config, state.warnings)
    if prompts is not None:
        state.timings["zero_shot_prompts"] = time.perf_counter() - started
    return prompts, zero_shot


def _write_outputs(
    state: _State,
    out_dir: Path,
    discovery: Discovery,
    images: pd.DataFrame,
    output_images: pd.DataFrame,
    embedded_stage: _Embedded,
    checked: _Checked,
) -> dict[str, Any]:
    """Staged beside their targets, then renamed into place together, so an interrupted scan leaves the
    previous result set whole (never new findings beside old images). Returns the run record."""
    started = time.perf_counter()
    embedded = images[images["embedding_row"] >= 0]
    with StagedWrite(new_run_id()) as staged:
        staged.add(out_dir / FINDINGS_FILE, parquet_writer(findings_table(checked.findings)))
        staged.add(out_dir / IMAGES_FILE, parquet_writer(_images_table(output_images)))
        staged.add(
            out_dir / EMBEDDINGS_FILE,
            parquet_writer(pa.Table.from_pydict(
                {
                    "path": embedded["path"].tolist(),
                    "sha256": embedded["sha256"].tolist(),
                    "embedding": pa.FixedSizeListArray.from_arrays(
                        pa.array(_rows_of(embedded_stage.vectors, embedded["embedding_row"].to_numpy()).ravel(),
                                 pa.float32()),
                        embedded_stage.encoder.dim,
                    ),
                },
                schema=embeddings_schema(embedded_stage.encoder.dim, embedded_stage.encoder.identity),
            )),
        )
        state.timings["write"] = time.perf_counter() - started
        state.warnings.extend(library_warnings.PREFIX + line for line in state.noise.summary())
        run = _run_record(state, discovery, images, embedded_stage, checked)
        run["engine"] = state.engine
        run["zero_shot"] = checked.zero_shot
        run["probabilities"] = checked.probabilities
        run["decisions"] = state.decisions
        # Each neighbour search: exact or approximate, its parameters and recall measured against exact.
        run["searches"] = checked.searches
        staged.add(out_dir / RUN_FILE, json_writer(run))
        staged.commit()
    return run


def _rows_of(matrix: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``matrix[rows]``, without copying the matrix when that is every row in order (1M x 512: 2 GB saved)."""
    if len(rows) == len(matrix) and np.array_equal(rows, np.arange(len(rows))):
        return matrix
    return np.asarray(matrix[rows])


def _user_probabilities(source: Path | None, labelled: pd.DataFrame) -> UserProbabilities | None:
    if source is None:
        return None
    return load_user_probabilities(source, sorted(labelled["label"].unique().tolist()), labelled["path"].tolist())


def _probabilities_record(
    user_probs: UserProbabilities | None, embedded: pd.DataFrame, warnings: list[str]
) -> dict[str, Any]:
    """Whose class probabilities label_errors, class_overlap and ambiguous read, for run.json."""
    if user_probs is None:
        return {"source": "auditor"}
    record = user_probs.record(embedded.loc[embedded["label"].notna(), "path"].tolist())
    if record["images_without_row"]:
        warnings.append(
            f"{record['images_without_row']} labelled image(s) have no row in {user_probs.source}: "
            "label_errors, class_overlap and ambiguous leave them out (other checks still cover them)"
        )
    if record["rows_not_in_dataset"]:
        warnings.append(f"{record['rows_not_in_dataset']} row(s) of {user_probs.source} name no embedded image "
                        "of this dataset and are ignored")
    return record


def _embed(
    images: pd.DataFrame,
    dataset: Path,
    discovery: Discovery,
    encoder: Any,
    encoder_name: str,
    config: AuditConfig,
    observer: Observer,
    warnings: list[str],
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Embed readable images; returns each image's row in the vector matrix (-1: none) and the matrix."""
    readable = images[images["readable"]]
    rows = np.full(len(images), -1, dtype=np.int64)
    stats: dict[str, Any] = {"embedded": 0, "from_cache": 0, "unique_contents": 0, "cache": None}
    if isinstance(encoder, PrecomputedEmbeddings):
        found = [(i, encoder.lookup(images.at[i, "path"])) for i in readable.index]
        present = [(i, v) for i, v in found if v is not None]
        if len(present) < len(found):
            warnings.append(f"{len(found) - len(present)} readable image(s) have no precomputed embedding "
                            "and are left out of embedding-based checks")
        for row, (i, _) in enumerate(present):
            rows[i] = row
        matrix = np.stack([v for _, v in present]) if present else np.zeros((0, encoder.dim), np.float32)
        stats["from_precomputed"] = len(present)
        stats["engine"] = {"name": config.engine.name, "used": False, "reason": "precomputed embeddings"}
        return rows, matrix, stats

    files: dict[str, Path] = {}
    for i in readable.index:
        files.setdefault(images.at[i, "sha256"], discovery.records[i].abs_path)
    stats["unique_contents"] = len(files)
    cache = None
    if config.scan.use_cache:
        cache = EmbeddingCache(config.scan.cache_dir or default_cache_dir())
        stats["cache"] = str(cache.path)
        if cache.rebuilt_reason:
            warnings.append(cache.rebuilt_reason)
    observer.stage("Embedding", len(files))
    try:
        if config.engine.name == "ray":
            result, stats["engine"] = embed_files_ray(
                files, encoder, encoder_name, config.encoder, config.engine, cache, config.scan.max_image_pixels,
                on_progress=observer.advance,
            )
        else:
            result = embed_files(
                files, encoder, cache, config.encoder.batch_size, config.encoder.workers,
                config.scan.max_image_pixels, on_progress=observer.advance,
            )
            stats["engine"] = {"name": "local", "used": True, "workers": config.encoder.workers}
    finally:
        observer.done()
        if cache is not None:
            cache.close()
    stats["embedded"], stats["from_cache"] = result.embedded, result.from_cache
    for sha, reason in result.failures.items():
        mask = images["sha256"] == sha
        images.loc[mask, "readable"] = False
        images.loc[mask, "unreadable_reason"] = reason
    order = {sha: n for n, sha in enumerate(result.vectors)}
    matrix = (np.stack(list(result.vectors.values())) if order
              else np.zeros((0, encoder.dim), dtype=np.float32))
    for i in images.index[images["readable"]]:
        rows[i] = order[images.at[i, "sha256"]]
    return rows, matrix, stats


def _run_checks(
    context: CheckContext, config: AuditConfig, observer: Observer, warnings: list[str],
    registry: Mapping[str, type[Check[Any]]],
) -> tuple[list[Finding], dict[str, Summary], dict[str, float], dict[str, pd.Series]]:
    names = config.scan.checks if config.scan.checks is not None else list(registry)
    findings: list[Finding] = []
    summaries: dict[str, Summary] = {}
    timings: dict[str, float] = {}
    columns: dict[str, pd.Series] = {}
    labelled = context.evidence.embedded["label"].dropna().nunique()
    observer.stage("Running checks", len(names))
    # Observers written before sub-steps existed lack ``step``; they still get the stage and its count.
    show_step = getattr(observer, "step", None)
    for name in names:
        check_type = registry[name]
        started = time.perf_counter()
        if show_step is not None:
            show_step(name)
        missing = []
        if Requirement.EMBEDDINGS in check_type.requires and len(context.evidence.embedded) == 0:
            missing.append("no embedded images")
        if Requirement.LABELS in check_type.requires and labelled < 2:
            missing.append(f"needs at least two classes with readable images (found {labelled})")
        if missing:
            summaries[name] = Skipped(skipped="; ".join(missing))
            warnings.append(f"check {name} skipped: {'; '.join(missing)}")
        else:
            with progress.reporting(partial(_sub_step, show_step, name)):
                result = check_type(check_type.Params.model_validate(config.checks.get(name, {}))).run(context)
            stray = {f.check for f in result.findings} - check_type.produces
            if stray:
                raise RuntimeError(f"check {name} emitted undeclared finding kinds {sorted(stray)}")
            findings.extend(result.findings)
            columns.update(result.columns)
            summaries[name] = result.summary or UnknownSummary()
            if result.skipped:
                summaries[name] = Skipped(skipped=result.skipped)
                warnings.append(f"check {name} skipped: {result.skipped}")
        timings[name] = time.perf_counter() - started
        observer.advance()
    observer.done()
    problems = {name: problem for name, summary in summaries.items()
                if (problem := reliability_problem(summary)) is not None}
    unreliable = list(problems)
    if unreliable:
        # One line, first: it changes how every model-based finding should be read.
        reason = problems[unreliable[0]]
        warnings.insert(0, f"{', '.join(unreliable)} findings are unreliable and shown as info: {reason}. "
                           f"To judge labels, {RELIABILITY_ADVICE}")
        _warn(observer, warnings[0])
    return findings, summaries, timings, columns


def _warn(observer: Observer, text: str) -> None:
    # Observers written before warnings were told early lack ``warn``; the result still carries every warning.
    show_warning = getattr(observer, "warn", None)
    if show_warning is not None:
        show_warning(text)


def _sub_step(show_step: Callable[[str], None] | None, check: str, text: str) -> None:
    if show_step is not None:
        show_step(f"{check}: {text}")


def _images_table(frame: pd.DataFrame) -> pa.Table:
    base = pa.Table.from_pandas(frame[IMAGES_BASE_SCHEMA.names], schema=IMAGES_BASE_SCHEMA, preserve_index=False)
    for name in frame.columns:
        if name not in IMAGES_BASE_SCHEMA.names:
            # A check's text column may hold NaN for rows it skipped; that is a null, not a type error.
            column = frame[name]
            if not (isinstance(column.dtype, np.dtype) and column.dtype.kind == "f"):  # NaN stays NaN
                column = column.astype(object).where(column.notna(), None)
            base = base.append_column(name, pa.array(column.tolist()))
    return base.replace_schema_metadata({"auditor_schema_version": SCHEMA_VERSION, "auditor_table": "images"})


def _class_prompts(
    encoder: Any, info: EncoderInfo, classes: list[str], config: AuditConfig, warnings: list[str]
) -> tuple[ClassPrompts | None, dict[str, Any]]:
    """Class prompt embeddings for zero-shot evidence, and what run.json records about them."""
    use, reason = zero_shot_decision(encoder, info, config.zero_shot)
    if use and len(classes) < 2:
        use, reason = False, "fewer than two classes"
    record: dict[str, Any] = {"used": False, "reason": reason}
    if not use:
        return None, record
    try:
        prompts = class_prompts(encoder, classes, config.zero_shot)
    except Exception as exc:  # noqa: BLE001 - zero-shot is extra evidence; the scan goes on without it
        warnings.append(f"zero-shot class prompts failed, continuing without them: {type(exc).__name__}: {exc}")
        return None, {"used": False, "reason": f"failed: {type(exc).__name__}: {exc}"}
    record.update(used=True, prompts=prompts.prompts, classes=prompts.classes)
    return prompts, record


def _run_record(
    state: _State, discovery: Discovery, images: pd.DataFrame, embedded: _Embedded, checked: _Checked
) -> dict[str, Any]:
    dataset, manifest, encoder, findings = state.dataset, state.manifest, embedded.encoder, checked.findings
    readable = images[images["readable"]]
    per_split: dict[str, dict[str, int]] = {}
    for (split, label), count in readable.groupby(
        [readable["split"].fillna("all"), readable["label"].fillna("(none)")]
    ).size().items():
        per_split.setdefault(str(split), {})[str(label)] = int(count)
    severities = Counter((f.check, str(f.severity)) for f in findings)
    per_check: dict[str, dict[str, int]] = {}
    for (check, severity), count in sorted(severities.items()):
        per_check.setdefault(check, {})[severity] = count
    return {
        "tool": "auditor",
        "tool_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "dataset": {
            "root": str(dataset.resolve()),
            "manifest": str(manifest) if manifest else None,
            "layout": discovery.layout,
            "classes": discovery.classes,
            "splits": discovery.splits,
            "files": len(images),
            "readable": int(images["readable"].sum()),
            "unreadable": int((~images["readable"]).sum()),
            "counts": per_split,
            "empty_classes": {str(k or "all"): v for k, v in discovery.empty_classes.items()},
        },
        "encoder": {
            "requested": encoder.requested,
            "name": encoder.name,
            "identity": encoder.identity,
            "dim": encoder.dim,
            "pretrained": encoder.pretrained,
            "fallback_reason": encoder.fallback_reason,
        },
        "embedding": embedded.stats,
        "config": state.config.model_dump(mode="json"),
        "timings_s": state.timings,
        "findings_per_check": per_check,
        "checks": {name: summary.as_json() for name, summary in checked.summaries.items()},
        # Every registered check's description, finding kinds and report metadata: gate and reports read it.
        "check_info": check_record(),
        "warnings": state.warnings,
    }
