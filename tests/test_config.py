from __future__ import annotations

import importlib
import pkgutil
import tomllib
from pathlib import Path

import pytest

import auditor.checks
from auditor.checks import PARAMS, REGISTRY, build_registry, check_params
from auditor.checks.base import Check
from auditor.config import AuditConfig, load_config
from auditor.errors import ConfigError

DEFAULT_TOML = Path(__file__).resolve().parents[1] / "configs" / "default.toml"


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


def test_cli_overrides_win_over_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[encoder]\nname = "clip"\nbatch_size = 8\n')
    config = load_config(path, {"encoder": {"name": "builtin"}})
    assert config.encoder.name == "builtin" and config.encoder.batch_size == 8
