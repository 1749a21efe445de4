"""``--encoder onnx``: a tiny ONNX model exported from torch here embeds a generated dataset."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from auditor.core.config import OnnxConfig, load_config
from auditor.core.errors import EncoderUnavailable
from auditor.scan import run_scan
from tests.conftest import write_class_folder

pytest.importorskip("onnxruntime", reason="onnxruntime is an optional extra: pip install 'auditor[onnx]'")
# Every test exports a torch model to ONNX first.
pytestmark = pytest.mark.slow


def export_model(path: Path, layout: str = "NCHW", seed: int = 0, side: int | None = None,
                 fixed_batch: int | None = None) -> Path:
    """A small conv net with global pooling (8-d features); NHWC permutes its input first like a Keras export."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 5, stride=2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if layout == "NHWC":
                x = x.permute(0, 3, 1, 2)
            features = torch.relu(self.conv(x))
            return features.mean(dim=(2, 3))

    torch.manual_seed(seed)
    size = side or 32
    batch = fixed_batch or 1
    shape = (batch, 3, size, size) if layout == "NCHW" else (batch, size, size, 3)
    dynamic = {0: "n"} if side else {0: "n", 1: "a", 2: "b", 3: "c"}
    axes = None if fixed_batch is not None else {"image": dynamic, "features": {0: "n"}}
    torch.onnx.export(Net().eval(), (torch.zeros(shape),), str(path), input_names=["image"],
                      output_names=["features"], dynamic_axes=axes, dynamo=False)
    return path


def onnx_config(model: Path, tmp_path: Path, **onnx: object):  # type: ignore[no-untyped-def]
    return load_config(overrides={
        "encoder": {"name": "onnx", "model_file": str(model), "workers": 0, "onnx": {"input_size": 32, **onnx}},
        "scan": {"workers": 0, "cache_dir": str(tmp_path / "cache"),
                 "checks": ["duplicates", "label_errors"]},
    })


def test_onnx_model_embeds_caches_and_is_recorded(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=6)
    (data / "circle" / "circle_000_copy.png").write_bytes((data / "circle" / "circle_001.png").read_bytes())
    model = export_model(tmp_path / "tiny.onnx")
    config = onnx_config(model, tmp_path)

    first = run_scan(data, config, tmp_path / "out1")
    run = json.loads((tmp_path / "out1" / "run.json").read_text())
    assert run["encoder"]["name"] == "onnx" and run["encoder"]["dim"] == 8
    import hashlib

    assert hashlib.sha256(model.read_bytes()).hexdigest()[:16] in run["encoder"]["identity"]
    assert run["embedding"]["embedded"] == 18 and run["embedding"]["from_cache"] == 0
    import pandas as pd

    vectors = np.stack(pd.read_parquet(tmp_path / "out1" / "embeddings.parquet")["embedding"].to_list())
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert len(np.unique(vectors.round(5), axis=0)) == 18  # distinct pictures, distinct vectors
    copies = {f.path for f in first.findings if f.check in {"exact_duplicate", "near_duplicate"}}
    assert {"circle/circle_000_copy.png", "circle/circle_001.png"} <= copies

    run_scan(data, config, tmp_path / "out2")
    again = json.loads((tmp_path / "out2" / "run.json").read_text())
    assert again["embedding"]["from_cache"] == 18 and again["embedding"]["embedded"] == 0

    # Other weights in a file of the same name: a different identity, so nothing comes from the cache.
    export_model(model, seed=1)
    run_scan(data, config, tmp_path / "out3")
    third = json.loads((tmp_path / "out3" / "run.json").read_text())
    assert third["encoder"]["identity"] != run["encoder"]["identity"] and third["embedding"]["from_cache"] == 0


def test_layout_and_size_come_from_the_model_and_scaling_from_the_config(tmp_path: Path) -> None:
    from PIL import Image

    from auditor.embed.encoders.onnx_model import OnnxEncoder

    model = export_model(tmp_path / "nhwc.onnx", layout="NHWC", side=40)
    encoder = OnnxEncoder(model, OnnxConfig(scaling="0-255", resize="stretch"))
    assert (encoder.layout, encoder.size) == ("NHWC", 40)
    array = encoder.preprocessor()(Image.new("RGB", (100, 50), (255, 128, 0)))
    assert array.shape == (40, 40, 3) and array.max() == 255.0
    assert encoder.embed(array[None]).shape == (1, 8)

    nchw = OnnxEncoder(export_model(tmp_path / "nchw.onnx"), OnnxConfig(input_size=24))
    normalised = nchw.preprocessor()(Image.new("RGB", (30, 60), (255, 255, 255)))
    assert normalised.shape == (3, 24, 24)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    assert np.allclose(normalised[:, 0, 0], [(1 - m) / s for m, s in zip(mean, std, strict=True)], atol=1e-5)


@pytest.mark.parametrize("fixed", [1, 4])
def test_a_model_exported_with_a_fixed_batch_embeds_any_batch(tmp_path: Path, fixed: int) -> None:
    from auditor.embed.encoders.onnx_model import OnnxEncoder

    dynamic = OnnxEncoder(export_model(tmp_path / "any.onnx", side=32), OnnxConfig())
    encoder = OnnxEncoder(export_model(tmp_path / "fixed.onnx", side=32, fixed_batch=fixed), OnnxConfig())
    batch = np.random.default_rng(0).normal(size=(6, 3, 32, 32)).astype(np.float32)
    together = encoder.embed(batch)
    assert together.shape == (6, 8)
    assert np.allclose(together, dynamic.embed(batch), atol=1e-5)


def test_unknown_output_and_wrong_layout_fail_with_one_clear_line(tmp_path: Path) -> None:
    from auditor.embed.encoders.onnx_model import OnnxEncoder

    model = export_model(tmp_path / "fixed.onnx", side=32)
    with pytest.raises(EncoderUnavailable, match="no output named 'logits'.*features"):
        OnnxEncoder(model, OnnxConfig(output="logits"))
    with pytest.raises(EncoderUnavailable, match="rejected a NHWC batch"):
        OnnxEncoder(model, OnnxConfig(layout="NHWC"))


def test_missing_onnxruntime_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from auditor.embed.encoders.onnx_model import OnnxEncoder

    model = export_model(tmp_path / "tiny.onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    with pytest.raises(EncoderUnavailable, match=r"pip install 'auditor\[onnx\]'"):
        OnnxEncoder(model, OnnxConfig())


def test_cli_missing_model_file_exits_2_with_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=3)
    result = subprocess.run(
        [sys.executable, "-m", "auditor", "scan", str(data), "--out", str(tmp_path / "out"),
         "--model-file", str(tmp_path / "nope.onnx"), "--workers", "0"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    assert "ONNX model file not found" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def export_with_head(path: Path, head: str) -> Path:
    """The small conv net with ``head`` applied to its (N, 8) features: a model whose output is broken."""
    import torch

    heads = {
        "nan": lambda f: f * float("nan"),
        "zeros": lambda f: f * 0.0,
        "integers": lambda f: (f * 1000.0 + 1.0).to(torch.int64),
        "huge": lambda f: f * 1e30 + 1e30,
        "scalar": lambda f: f.sum(),
        "first_image_only": lambda f: f[:1, :3, None, None],
    }

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 5, stride=2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return heads[head](torch.relu(self.conv(x)).mean(dim=(2, 3)))  # type: ignore[no-any-return]

    torch.manual_seed(0)
    torch.onnx.export(Net().eval(), (torch.zeros(1, 3, 32, 32),), str(path), input_names=["image"],
                      output_names=["features"], dynamic_axes={"image": {0: "n"}}, dynamo=False)
    return path


def declare_input_side(model: Path, side: int) -> Path:
    """Rewrite the model's declared input as a fixed [1, 3, side, side], as a model exported at that size says."""
    import onnx

    proto = onnx.load(str(model))
    for dim, value in zip(proto.graph.input[0].type.tensor_type.shape.dim, (1, 3, side, side), strict=True):
        dim.dim_value = value
    onnx.save(proto, str(model))
    return model


def test_a_declared_input_over_the_cap_is_refused_before_anything_runs(tmp_path: Path) -> None:
    from auditor.embed.encoders.onnx_model import OnnxEncoder

    model = declare_input_side(export_model(tmp_path / "big.onnx"), 4608)
    with pytest.raises(EncoderUnavailable, match=r"input 'image' declares shape \[1, 3, 4608, 4608\]: an image side "
                                                 r"of 4608 px is over the cap of 4096 px"):
        OnnxEncoder(model, OnnxConfig())
    # input_size does not lift the cap: the model's own shape would be refused at its first batch anyway.
    with pytest.raises(EncoderUnavailable, match="4608 px is over the cap"):
        OnnxEncoder(model, OnnxConfig(input_size=32))
    fits = declare_input_side(export_model(tmp_path / "fits.onnx"), 48)
    assert OnnxEncoder(fits, OnnxConfig()).size == 48


def test_cli_refuses_a_model_declaring_a_huge_input_with_exit_2(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=3)
    model = declare_input_side(export_model(tmp_path / "huge.onnx"), 20000)
    result = subprocess.run(
        [sys.executable, "-m", "auditor", "scan", str(data), "--out", str(tmp_path / "out"), "--model-file",
         str(model), "--workers", "0", "--no-cache", "--quiet"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert "20000 px is over the cap of 4096 px" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("head", "reason"), [
    ("nan", r"output 'features' of .*nan\.onnx: the embedding of row 0 has NaN or infinite values \(and 3 more\)"),
    ("zeros", "the embedding of row 0 is all zeros"),
    ("scalar", r"output 'features' of .*scalar\.onnx has shape \(\) for a batch of 1: not one vector per image"),
    ("first_image_only", r"output 'features' of .*first_image_only\.onnx has shape \(1, 3, 1, 1\) for a batch of 4: "
                         "not one vector per image"),
])
def test_bad_model_outputs_are_refused_naming_the_output(tmp_path: Path, head: str, reason: str) -> None:
    from auditor.embed.encoders.onnx_model import OnnxEncoder

    batch = np.random.default_rng(0).normal(size=(4, 3, 32, 32)).astype(np.float32)
    with pytest.raises(EncoderUnavailable, match=reason):
        OnnxEncoder(export_with_head(tmp_path / f"{head}.onnx", head), OnnxConfig()).embed(batch)


@pytest.mark.parametrize("head", ["integers", "huge"])
def test_integer_and_huge_outputs_become_unit_vectors(tmp_path: Path, head: str) -> None:
    from auditor.embed.encoders.onnx_model import OnnxEncoder

    batch = np.random.default_rng(0).normal(size=(4, 3, 32, 32)).astype(np.float32)
    vectors = OnnxEncoder(export_with_head(tmp_path / f"{head}.onnx", head), OnnxConfig()).embed(batch)
    assert vectors.dtype == np.float32 and vectors.shape == (4, 8)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_cli_nan_output_exits_2_with_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=3)
    result = subprocess.run(
        [sys.executable, "-m", "auditor", "scan", str(data), "--out", str(tmp_path / "out"), "--model-file",
         str(export_with_head(tmp_path / "nan.onnx", "nan")), "--workers", "0", "--no-cache", "--quiet"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert "has NaN or infinite values" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
