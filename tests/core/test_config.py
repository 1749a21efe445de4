from __future__ import annotations

import importlib
import pkgutil
import tomllib
from pathlib import Path

import pytest

import auditor.checks
from auditor.checks import PARAMS, REGISTRY, build_registry, check_params
from auditor.checks.base import Check
from auditor.core.config import AuditConfig, load_config
from auditor.core.errors import ConfigError

DEFAULT_TOML = Path(__file__).resolve().parents[2] / "configs" / "default.toml"


def test_default_toml_equals_built_in_defaults() -> None:
    from_file = load_config(DEFAULT_TOML, check_params=PARAMS)
    built_in = AuditConfig()
    assert from_file.scan == built_in.scan
    assert from_file.encoder == built_in.encoder
    assert from_file.model_dump(exclude={"checks"}) == built_in.model_dump(exclude={"checks"})
    for name in REGISTRY:
        assert check_params(from_file, name) == check_params(built_in, name), name


def test_default_toml_documents_every_check_param() -> None:
    raw = tomllib.loads(DEFAULT_TOML.read_text())
    text = DEFAULT_TOML.read_text()
    for name, check in REGISTRY.items():
        fields = set(check.Params.model_fields)
        assert set(raw.get("checks", {}).get(name, {})) == fields, f"[checks.{name}] must list every param"
        for field in fields:
            line_index = next(i for i, line in enumerate(text.splitlines()) if line.startswith(f"{field} ="))
            assert text.splitlines()[line_index - 1].lstrip().startswith("#"), f"{name}.{field} needs a comment"


def test_every_check_module_is_registered() -> None:
    modules = {
        m.name for m in pkgutil.iter_modules(auditor.checks.__path__) if m.name != "base"
    }
    registered_modules = {cls.__module__.rsplit(".", 1)[-1] for cls in REGISTRY.values()}
    assert modules == registered_modules
    for module in modules:
        importlib.import_module(f"auditor.checks.{module}")


def test_duplicate_check_names_are_refused() -> None:
    first = next(iter(REGISTRY.values()))
    with pytest.raises(ValueError, match="registered twice"):
        build_registry([first, first])


def test_check_without_name_is_refused() -> None:
    with pytest.raises(TypeError, match="must define"):
        type("Nameless", (Check,), {"run": lambda self, ctx: None})


def test_unknown_keys_and_bad_values_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="checks.class_imbalance"):
        load_config(overrides={"checks": {"class_imbalance": {"min_count": -3}}}, check_params=PARAMS)
    with pytest.raises(ConfigError, match="unknown check"):
        load_config(overrides={"checks": {"nope": {}}}, check_params=PARAMS)
    with pytest.raises(ConfigError, match="encoder.device"):
        load_config(overrides={"encoder": {"device": "tpu"}})


def test_a_removed_setting_is_refused_by_name(tmp_path: Path) -> None:
    """``[search] nprobe`` (cells an inverted-file index probed first) went with the index: a config that still
    sets it must say which key, not be silently ignored."""
    path = tmp_path / "old.toml"
    path.write_text("[search]\nnprobe = 16\n")
    with pytest.raises(ConfigError, match=r"search\.nprobe"):
        load_config(path)


def test_cli_overrides_win_over_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[encoder]\nname = "clip"\nbatch_size = 8\n')
    config = load_config(path, {"encoder": {"name": "builtin"}})
    assert config.encoder.name == "builtin" and config.encoder.batch_size == 8


@pytest.mark.parametrize(
    ("toml", "where"),
    [
        ("[checks.outliers]\nrobust_z = true\n", "[checks.outliers]"),
        ("[checks.ambiguous]\ntop_pairs = false\n", "[checks.ambiguous]"),
        ("[probabilities]\nknn_weight = true\n", "probabilities.knn_weight"),
        ("[scan]\nworkers = true\n", "scan.workers"),
        ("[encoder.onnx]\nmean = [true, 0.5, 0.5]\n", "encoder.onnx.mean"),
        ("[reliability]\nconfidence = true\n", "reliability.confidence"),
    ],
    ids=["check-float", "check-int", "probabilities", "scan", "onnx-list", "reliability"],
)
def test_a_boolean_is_never_read_as_a_number(tmp_path: Path, toml: str, where: str) -> None:
    """TOML `threshold = true` is a typo; pydantic alone would read it as 1 (the gate's rules were strict already)."""
    path = tmp_path / "bools.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(path, check_params=PARAMS)
    message = str(error.value)
    assert where in message and "expected a number" in message and str(path) in message, message


def test_booleans_still_set_boolean_fields(tmp_path: Path) -> None:
    path = tmp_path / "flags.toml"
    path.write_text("[scan]\nuse_cache = false\n[reliability]\nenabled = false\n[encoder]\nallow_download = false\n",
                    encoding="utf-8")
    config = load_config(path, check_params=PARAMS)
    assert not config.scan.use_cache and not config.reliability.enabled and not config.encoder.allow_download
