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


def test_settings_moved_to_evidence_still_load_with_a_warning_naming_the_new_key(tmp_path: Path) -> None:
    path = tmp_path / "old.toml"
    path.write_text('[checks.label_errors]\nfilter_by = "both"\nquality_method = "normalized_margin"\n'
                    "[checks.ambiguous]\ncloseness_weight = 0.25\ntop_pairs = 3\n"
                    "[checks.duplicates]\ntop_k = 30\n")
    config = load_config(path, check_params=PARAMS)
    assert config.evidence.label_issues.filter_by == "both"
    assert config.evidence.ambiguity.closeness_weight == 0.25
    assert config.evidence.neighbours == 30
    # Check-local settings stay where they were.
    assert config.checks == {"label_errors": {"quality_method": "normalized_margin"}, "ambiguous": {"top_pairs": 3},
                             "duplicates": {}}
    assert config.deprecations == [
        "config key [checks.ambiguous] closeness_weight is deprecated and will be removed in the next release; "
        "set [evidence.ambiguity] closeness_weight instead",
        "config key [checks.duplicates] top_k is deprecated and will be removed in the next release; "
        "set [evidence] neighbours instead",
        "config key [checks.label_errors] filter_by is deprecated and will be removed in the next release; "
        "set [evidence.label_issues] filter_by instead",
    ]
    assert AuditConfig().deprecations == [] and load_config(DEFAULT_TOML, check_params=PARAMS).deprecations == []


def test_a_new_evidence_key_wins_over_its_old_one() -> None:
    config = load_config(overrides={"checks": {"label_errors": {"filter_by": "both"}},
                                    "evidence": {"label_issues": {"filter_by": "prune_by_class"}}}, check_params=PARAMS)
    assert config.evidence.label_issues.filter_by == "prune_by_class"
    assert len(config.deprecations) == 1


def test_an_old_key_with_a_bad_value_is_refused_under_its_new_name() -> None:
    with pytest.raises(ConfigError, match=r"evidence\.ambiguity\.false_alarms: .* \(from a command-line option\)"):
        load_config(overrides={"checks": {"ambiguous": {"false_alarms": -1.0}}}, check_params=PARAMS)
