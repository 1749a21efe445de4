"""`--engine ray`: decode + embed on Ray Data actors gives the local engine's vectors and findings.

Tests marked ``ray`` start Ray on this machine (a minute or two here), so they are also ``slow``: the
everyday ``-m "not slow"`` leaves them out, .ci/run installs the extra and runs them with the slow tests.
They are skipped, with the install line as the reason, where ray is not installed. The others need no Ray.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from auditor.core.config import EncoderConfig, EngineConfig, load_config
from auditor.core.errors import EncoderUnavailable
from auditor.embed.embedding import embed_files
from auditor.embed.encoders.builtin import BuiltinEncoder
from auditor.embed.ray_engine import INSTALL_HINT, EmbedActor, WorkerEncoderMismatch, embed_files_ray
from auditor.scan import run_scan
from tests.conftest import write_split_shapes

needs_ray = pytest.mark.skipif(find_spec("ray") is None, reason="ray is not installed: pip install 'auditor[ray]'")


def _dataset(root: Path) -> Path:
    """Three shapes in train/test, plus what the embed stage must handle like the local engine: a
    byte-identical copy (embedded once), a file that does not decode (never embedded) and an exact
    cross-split copy (a split_leakage finding)."""
    write_split_shapes(root, train=10, test=4)
    circle = root / "train" / "circle" / "circle_000.png"
    (root / "train" / "circle" / "copy.png").write_bytes(circle.read_bytes())
    (root / "test" / "circle" / "leak.png").write_bytes(circle.read_bytes())
    (root / "train" / "square" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return root


def _scan(data: Path, out: Path, engine: str, cache: Path | None) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "encoder": {"name": "builtin", "batch_size": 8}, "engine": {"name": engine},
        "scan": {"use_cache": cache is not None, "cache_dir": str(cache) if cache else None},
    }
    run_scan(data, load_config(None, overrides), out)
    return dict(json.loads((out / "run.json").read_text()))


def _findings(out: Path) -> pd.DataFrame:
    frame = pq.read_table(out / "findings.parquet").to_pandas()
    return frame.sort_values(["check", "path"]).reset_index(drop=True)


def _vectors(out: Path) -> dict[str, np.ndarray]:
    table = pq.read_table(out / "embeddings.parquet").to_pydict()
    return {path: np.asarray(vector, dtype=np.float32)
            for path, vector in zip(table["path"], table["embedding"], strict=True)}


@pytest.fixture(scope="module")
def ray_cluster() -> Any:
    import logging

    import ray

    # address="local": a fresh instance even when a cluster (or a stale record of one) is on this machine.
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=256 * 1024 * 1024,
             log_to_driver=False, logging_level=logging.ERROR)
    yield ray
    ray.shutdown()


@pytest.mark.slow
@pytest.mark.ray
@needs_ray
def test_cli_starts_and_stops_a_local_instance_and_records_it(tmp_path: Path) -> None:
    import ray

    assert not ray.is_initialized()
    data = _dataset(tmp_path / "data")
    result = subprocess.run(
        [sys.executable, "-m", "auditor", "scan", str(data), "--out", str(tmp_path / "out"), "--encoder", "builtin",
         "--engine", "ray", "--no-cache", "--checks", "unreadable,duplicates", "-q"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "RAY_ADDRESS": ""},
    )
    assert result.returncode == 0, result.stderr
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    engine = run["engine"]
    assert engine["name"] == "ray" and engine["used"] is True
    assert engine["cluster"] == "local instance started for this scan" and engine["address"]
    assert engine["device"] == "cpu" and engine["actors"] >= 1
    # 42 drawings; the byte-identical copy and the leak share circle_000's bytes: 42 distinct contents.
    assert run["embedding"]["embedded"] == 42 and run["embedding"]["unique_contents"] == 42
    assert run["findings_per_check"]["unreadable"] == {"error": 1}


@pytest.mark.slow
@pytest.mark.ray
@needs_ray
def test_ray_engine_gives_the_local_engines_vectors_and_findings(tmp_path: Path, ray_cluster: Any) -> None:
    data = _dataset(tmp_path / "data")
    local = _scan(data, tmp_path / "local", "local", None)
    remote = _scan(data, tmp_path / "ray", "ray", tmp_path / "cache")
    assert local["engine"]["name"] == "local"
    assert remote["engine"]["used"] is True and remote["engine"]["cluster"] == "connected before the scan"
    assert remote["embedding"]["embedded"] == local["embedding"]["embedded"] == 42

    local_vectors, ray_vectors = _vectors(tmp_path / "local"), _vectors(tmp_path / "ray")
    assert list(ray_vectors) == list(local_vectors)  # same images, same row order
    for path, vector in local_vectors.items():
        np.testing.assert_allclose(ray_vectors[path], vector, rtol=0, atol=1e-6, err_msg=path)
    findings = _findings(tmp_path / "local")
    assert {"unreadable", "split_leakage", "dark"} <= set(findings["check"])
    pd.testing.assert_frame_equal(_findings(tmp_path / "ray"), findings)

    # A second ray scan finds every vector in the cache the first one wrote: Ray is not even asked.
    again = _scan(data, tmp_path / "again", "ray", tmp_path / "cache")
    assert again["engine"]["used"] is False and again["embedding"]["from_cache"] == 42
    pd.testing.assert_frame_equal(_findings(tmp_path / "again"), findings)


def test_missing_ray_exits_2_with_the_install_line(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "data")
    # sys.modules["ray"] = None makes ray unimportable in that process, whether or not it is installed.
    code = ("import sys; sys.modules['ray'] = None; sys.argv = ['audit', *sys.argv[1:]]; "
            "from auditor.cli.app import main; main()")
    result = subprocess.run(
        [sys.executable, "-c", code, "scan", str(data), "--out", str(tmp_path / "out"), "--engine", "ray"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {INSTALL_HINT}"]
    assert not (tmp_path / "out").exists()


def test_actor_refuses_an_encoder_other_than_the_drivers() -> None:
    with pytest.raises(WorkerEncoderMismatch, match="same auditor version"):
        EmbedActor(EncoderConfig(name="builtin"), "builtin:v0", max_pixels=10**6)


def test_actor_embeds_like_the_encoder_and_reports_changed_files(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "data")
    good = data / "train" / "square" / "square_001.png"
    sha = hashlib.sha256(good.read_bytes()).hexdigest()
    encoder = BuiltinEncoder()
    actor = EmbedActor(EncoderConfig(name="builtin"), encoder.identity, max_pixels=10**6)
    out = actor({"sha256": np.array([sha, "0" * 64], dtype=object),
                 "path": np.array([str(good), str(good)], dtype=object)})
    expected = embed_files({sha: good}, encoder, None, batch_size=8, workers=0, max_pixels=10**6).vectors[sha]
    np.testing.assert_allclose(out["vector"][0], expected, rtol=0, atol=1e-6)
    assert out["reason"][0] == "" and "file changed during the scan" in out["reason"][1]
    assert not out["vector"][1].any()


@pytest.mark.slow
@pytest.mark.ray
@needs_ray
def test_a_worker_with_another_encoder_stops_the_scan_with_one_line(tmp_path: Path, ray_cluster: Any) -> None:
    """A node with another auditor version or model must not add its vectors to the driver's matrix."""
    data = _dataset(tmp_path / "data")
    files = {hashlib.sha256(path.read_bytes()).hexdigest(): path for path in sorted(data.rglob("*_00*.png"))}
    real = BuiltinEncoder()

    class OtherVersion:  # what the driver would hold if the nodes ran an older auditor
        identity, dim, pretrained = "builtin:v1", real.dim, False
        preprocessor, embed = real.preprocessor, real.embed

    built = f"a Ray worker built encoder '{BuiltinEncoder.identity}', the driver 'builtin:v1'"
    with pytest.raises(EncoderUnavailable, match=built):
        embed_files_ray(files, OtherVersion(), "builtin", EncoderConfig(name="builtin", batch_size=8),
                        EngineConfig(name="ray"), None, max_pixels=10**6)


def test_ray_address_implies_the_ray_engine_and_contradicts_local() -> None:
    from auditor.cli.scan import config_overrides

    assert config_overrides(ray_address="head:6379") == {"engine": {"address": "head:6379", "name": "ray"}}
    assert config_overrides(engine=None, ray_address=None) == {}
    result = subprocess.run(
        [sys.executable, "-m", "auditor", "scan", "data", "--engine", "local", "--ray-address", "head:6379"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2 and "--ray-address only applies with --engine ray" in result.stderr
