"""``audit scan``: outputs and summary, the encoder fallback warning, config errors, --quiet, and how options
become config overrides."""

from __future__ import annotations

import json
from pathlib import Path

from auditor.cli.scan import config_overrides
from auditor.embed.encoders.builtin import VERSION
from tests.cli.conftest import audit_process
from tests.conftest import run_cli, write_class_folder

audit = run_cli


def test_options_given_become_nested_config_and_imply_what_they_need() -> None:
    assert config_overrides(encoder=None, device=None, workers=None) == {}
    assert config_overrides(device="cpu", batch_size=8, cache_dir=Path("/c")) == {
        "encoder": {"device": "cpu", "batch_size": 8}, "scan": {"cache_dir": "/c"}}
    assert config_overrides(workers=0) == {"encoder": {"workers": 0}, "scan": {"workers": 0}}
    assert config_overrides(embeddings=Path("e.parquet")) == {
        "encoder": {"precomputed_file": "e.parquet", "name": "precomputed"}}
    assert config_overrides(model_file=Path("m.onnx")) == {"encoder": {"model_file": "m.onnx", "name": "onnx"}}
    assert config_overrides(model_file=Path("m.onnx"), encoder="clip")["encoder"]["name"] == "clip"
    assert config_overrides(ray_address="ray://head:10001") == {
        "engine": {"address": "ray://head:10001", "name": "ray"}}
    assert config_overrides(ray_address="auto", engine="ray")["engine"] == {"name": "ray", "address": "auto"}


def test_ray_address_with_the_local_engine_is_refused(tmp_path: Path) -> None:
    result = audit("scan", str(tmp_path), "--engine", "local", "--ray-address", "auto")
    assert result.returncode == 2 and result.stderr == "error: --ray-address only applies with --engine ray\n"


def test_scan_writes_outputs_and_summary(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=4)
    (data / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    result = audit("scan", str(data), "--out", str(tmp_path / "out"), "--encoder", "builtin",
                   "--workers", "0", "--checks", "unreadable,class_imbalance")
    assert result.returncode == 0, result.stderr
    assert "unreadable" in result.stdout and f"builtin:v{VERSION}" in result.stdout
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert list(run["checks"]) == ["unreadable", "class_imbalance"]
    assert run["findings_per_check"]["unreadable"] == {"error": 1}


def test_auto_encoder_falls_back_with_a_prominent_warning(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=3)
    result = audit("scan", str(data), "--out", str(tmp_path / "out"), "--workers", "0",
                   "--checks", "unreadable")
    assert result.returncode == 0, result.stderr
    # On stderr as soon as the encoder is loaded, before the embedding's bar; again in the summary on stdout.
    assert result.stderr.startswith("warning: CLIP weights unavailable, fell back to the built-in descriptor")
    assert "fell back to the built-in descriptor" in result.stdout
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["encoder"]["requested"] == "auto" and run["encoder"]["name"] == "builtin"
    assert run["encoder"]["fallback_reason"]


def test_config_errors_name_their_origin_and_suggest_the_near_miss(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=2)
    typo = tmp_path / "typo.toml"
    typo.write_text("[encoder]\nbatchsize = 3\n", encoding="utf-8")
    section = tmp_path / "section.toml"
    section.write_text("[checks.label_erors]\n", encoding="utf-8")
    cases = [
        (["--config", str(typo)], ["encoder.batchsize", "did you mean 'batch_size'", str(typo)]),
        (["--checks", "label_error"], ["in --checks", "did you mean 'label_errors'"]),
        (["--config", str(section)], ["[checks.label_erors]", "did you mean 'label_errors'"]),
        (["--batch-size", "0"], ["encoder.batch_size", "command-line option"]),
        (["--encoder", "builtin", "--device", "cuda"], ["'cuda'", "CPU only"]),
    ]
    for extra, expected in cases:
        done = audit("scan", str(data), "--out", str(tmp_path / "out"), *extra)
        assert done.returncode == 2, (extra, done.stderr)
        for text in expected:
            assert text in done.stderr, (extra, text, done.stderr)
        assert "Traceback" not in done.stderr


def test_quiet_still_warns_and_gate_names_encoder_and_what_broke(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=3)
    (data / "circle" / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    done = audit_process("scan", str(data), "--out", str(out), "--encoder", "auto", "--quiet", "--workers", "0",
                  env={"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert any("fell back" in line or "builtin" in line for line in warnings), done.stderr
    assert len(warnings) == len(set(warnings)), done.stderr  # told early, not again at the end
    gate = audit("gate", str(out))
    assert gate.returncode == 1
    assert "encoder: builtin:" in gate.stdout
    last = gate.stdout.strip().splitlines()[-1]
    assert last.startswith("gate FAILED: 1 of ") and "1 finding to fix" in last, last
    markdown = audit("gate", str(out), "--format", "markdown").stdout
    assert "Encoder: `builtin:" in markdown and "1 finding to fix" in markdown
