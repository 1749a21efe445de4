"""The ``ray`` engine: the decode + embed stage as Ray Data ``map_batches`` over model-holding actors.

Only images whose vectors are not in the cache travel, as (sha256, path) rows taken from the same discovery
list as the local engine. Each actor builds the encoder once, from its config, and refuses to work if that
encoder's identity differs from the driver's (another auditor version, model or weights on that node would
otherwise mix two embedding spaces in one matrix). Per file it does what the local engine's workers do:
check the bytes still hash to what the read stage recorded, decode, preprocess, embed. Files are read by
path, so every node must see the dataset at the same path. Vectors come back to the driver, which writes
the cache and orders them as the local engine does; hashing, image properties and the checks stay here.

Ray is an optional extra: this module imports it only when a scan asks for it.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from auditor.core.config import EncoderConfig, EngineConfig
from auditor.core.errors import ConfigError, EncoderUnavailable
from auditor.embed.cache import EmbeddingCache
from auditor.embed.embedding import EmbeddingResult, from_cache, load_for_embedding
from auditor.embed.encoders import build_encoder
from auditor.embed.encoders.base import Encoder

INSTALL_HINT = "--engine ray needs Ray, which is not installed here: pip install 'auditor[ray]'"


def require_ray() -> None:
    """Fail before any work when Ray is missing (cheap: finds the package without importing it)."""
    if find_spec("ray") is None:
        raise ConfigError(INSTALL_HINT)


class WorkerEncoderMismatch(RuntimeError):
    """An actor built a different encoder than the driver's; the driver reports it as a setup error."""


class EmbedActor:
    """One per Ray actor: holds the encoder for the actor's lifetime and embeds batches of (sha256, path)."""

    def __init__(self, encoder_config: EncoderConfig, identity: str, max_pixels: int) -> None:
        encoder, _ = build_encoder(encoder_config)
        if not isinstance(encoder, Encoder) or encoder.identity != identity:
            built = getattr(encoder, "identity", type(encoder).__name__)
            raise WorkerEncoderMismatch(f"a Ray worker built encoder {built!r}, the driver {identity!r}: install "
                                        "the same auditor version, model and weights on every node")
        self._encoder = encoder
        self._preprocess = encoder.preprocessor()
        self._max_pixels = max_pixels

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        shas = [str(sha) for sha in batch["sha256"]]
        reasons = [""] * len(shas)
        ok: list[int] = []
        inputs: list[np.ndarray] = []
        for i, (sha, path) in enumerate(zip(shas, batch["path"], strict=True)):
            _, array, reason = load_for_embedding(self._preprocess, self._max_pixels, (sha, Path(str(path))))
            if array is None:
                reasons[i] = reason or "unknown preprocessing failure"
            else:
                ok.append(i)
                inputs.append(array)
        vectors = np.zeros((len(shas), self._encoder.dim), dtype=np.float32)
        if inputs:
            vectors[ok] = self._encoder.embed(np.stack(inputs))
        return {
            "sha256": np.asarray(shas, dtype=object), "vector": vectors, "reason": np.asarray(reasons, dtype=object)
        }


def embed_files_ray(
    files: dict[str, Path],
    encoder: Encoder,
    encoder_name: str,
    encoder_config: EncoderConfig,
    engine: EngineConfig,
    cache: EmbeddingCache | None,
    max_pixels: int,
    on_progress: Callable[[int], None] = lambda n: None,
) -> tuple[EmbeddingResult, dict[str, Any]]:
    """``embedding.embed_files`` on a Ray cluster: same cache, same result, same order of vectors.

    ``encoder_name``: the encoder the driver resolved (``auto`` may have fallen back to ``builtin``); the
    actors build that one. Returns the result and what run.json records about the engine.
    """
    result, todo = from_cache(files, encoder, cache)
    on_progress(result.from_cache)
    record: dict[str, Any] = {"name": "ray"}
    if not todo:
        record.update(used=False, reason="every image's vector was in the cache")
        return result, record
    fresh: dict[str, np.ndarray] = {}
    with _connected(engine, record) as ray:
        resources = ray.cluster_resources()
        cpus, gpus = int(resources.get("CPU", 0)), int(resources.get("GPU", 0))
        # The builtin encoder is numpy on the CPU; a GPU actor would hold a GPU it never uses.
        use_gpu = gpus > 0 and encoder_name != "builtin" and encoder_config.device != "cpu"
        batch_size = encoder_config.batch_size
        actors = engine.actors or max(1, gpus if use_gpu else cpus)
        actors = min(actors, math.ceil(len(todo) / batch_size))  # an actor with no batch only costs start-up
        record.update(used=True, actors=actors, device="gpu" if use_gpu else "cpu", cluster_cpus=cpus,
                      cluster_gpus=gpus, ray_version=ray.__version__)
        actor_config = encoder_config.model_copy(
            update={"name": encoder_name, "device": encoder_config.device if use_gpu else "cpu"}
        )
        for out in _mismatch_as_setup_error(
            ray, _run(ray, todo, actors, use_gpu, batch_size, (actor_config, encoder.identity, max_pixels))
        ):
            batch: dict[str, np.ndarray] = {}
            for sha, vector, reason in zip(out["sha256"], out["vector"], out["reason"], strict=True):
                if reason:
                    result.failures[str(sha)] = str(reason)
                    on_progress(1)
                else:
                    batch[str(sha)] = np.array(vector, dtype=np.float32)
            if cache is not None and batch:
                cache.put_many(batch, encoder.identity)  # per batch: an interrupted scan resumes from here
            fresh.update(batch)
            result.embedded += len(batch)
            on_progress(len(batch))
    for sha, _ in todo:  # discovery order, as the local engine produces them
        if sha in fresh:
            result.vectors[sha] = fresh[sha]
    return result, record


def _run(
    ray: Any, todo: list[tuple[str, Path]], actors: int, use_gpu: bool, batch_size: int,
    actor_args: tuple[EncoderConfig, str, int],
) -> Iterator[dict[str, np.ndarray]]:
    """Stream the embedded batches back as the actors finish them (the dataset is never materialised)."""
    # Several blocks per actor so that all of them work, few enough rows per block to stream.
    rows = min(batch_size * 8, max(batch_size, math.ceil(len(todo) / (actors * 4))))
    # Separate tables, not slices of one: a pickled slice may carry its parent's whole buffers.
    blocks = [
        pa.table({"sha256": [sha for sha, _ in chunk], "path": [str(path) for _, path in chunk]})
        for chunk in (todo[start : start + rows] for start in range(0, len(todo), rows))
    ]
    context = ray.data.DataContext.get_current()
    progress_bars, context.enable_progress_bars = context.enable_progress_bars, False
    try:
        dataset = ray.data.from_arrow(blocks).map_batches(
            EmbedActor,
            fn_constructor_args=actor_args,
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_gpus=1 if use_gpu else 0,
            num_cpus=0 if use_gpu else 1,
        )
        yield from dataset.iter_batches(batch_size=None, batch_format="numpy")
    finally:
        context.enable_progress_bars = progress_bars


def _mismatch_as_setup_error(ray: Any, batches: Iterator[dict[str, np.ndarray]]) -> Iterator[dict[str, np.ndarray]]:
    """An actor's WorkerEncoderMismatch reaches the driver as Ray's error text: make it one line, exit 2."""
    try:
        yield from batches
    except ray.exceptions.RayError as exc:
        marker = f"{WorkerEncoderMismatch.__name__}: "
        line = next((text for text in str(exc).splitlines() if marker in text), None)
        if line is None:
            raise
        raise EncoderUnavailable(line.split(marker, 1)[1]) from None


@contextmanager
def _connected(engine: EngineConfig, record: dict[str, Any]) -> Iterator[Any]:
    """Ray, connected: to ``engine.address`` or $RAY_ADDRESS, else to a local instance started (and stopped)
    here; a connection this process already has is used as it is and left open."""
    import ray
    import ray.data

    # Scan output is auditor's; Ray's own logs stay in its session folder (errors reach the scan as exceptions).
    logging.getLogger("ray").setLevel(logging.ERROR)
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)
    if ray.is_initialized():
        record.update(address=ray.get_runtime_context().gcs_address, cluster="connected before the scan")
        yield ray
        return
    address = engine.address or os.environ.get("RAY_ADDRESS") or None
    quiet: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    started = time.perf_counter()
    try:
        if address is not None:
            ray.init(address=address, **quiet)
            record["cluster"] = "existing cluster"
        else:
            # address="local": a fresh instance, never a cluster someone else started on this machine.
            ray.init(address="local", num_cpus=_cores(), include_dashboard=False,
                     object_store_memory=engine.local_object_store_mb * 1024 * 1024, **quiet)
            record["cluster"] = "local instance started for this scan"
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = f"Ray at {address}" if address is not None else "a local Ray instance"
        raise ConfigError(f"cannot connect to {where}: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
    record["address"] = address if address is not None else ray.get_runtime_context().gcs_address
    record["connect_s"] = round(time.perf_counter() - started, 3)  # part of timings_s.embed
    try:
        yield ray
    finally:
        ray.shutdown()


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
