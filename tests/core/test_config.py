from __future__ import annotations

import importlib
import math
import pkgutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

import auditor.checks
from auditor.checks import PARAMS, REGISTRY, build_registry, check_params
from auditor.checks.base import Check
from auditor.core.config import AuditConfig, _types_in, load_config
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


def _float_settings() -> list[tuple[type[BaseModel], str, Any]]:
    """(model, field, a value of its shape) for every float setting of the config and of every check's params."""
    found: list[tuple[type[BaseModel], str, Any]] = []
    models: list[type[BaseModel]] = [AuditConfig, *PARAMS.values()]
    seen: set[type[BaseModel]] = set()
    while models:
        model = models.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            inside = _types_in(field.annotation)
            models += [kind for kind in inside if isinstance(kind, type) and issubclass(kind, BaseModel)]
            if float in inside:
                default = field.get_default(call_default_factory=True)
                found.append((model, name, [None, *default[1:]] if isinstance(default, tuple) else None))
    return found


FLOAT_SETTINGS = _float_settings()


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize(("model", "name", "shape"), FLOAT_SETTINGS,
                         ids=[f"{model.__name__}.{name}" for model, name, _ in FLOAT_SETTINGS])
def test_no_float_setting_takes_nan_or_infinity(model: type[BaseModel], name: str, shape: Any, bad: float) -> None:
    """`global_min_z = nan` crashed the duplicates check (exit 70); `-inf` invented near duplicates from any pair."""
    value = [bad, *shape[1:]] if isinstance(shape, list) else bad
    with pytest.raises(ValidationError, match="finite number"):
        model.model_validate({name: value})


def test_the_float_settings_found_include_thresholds_of_checks_and_gate() -> None:
    found = {(model.__name__, name) for model, name, _ in FLOAT_SETTINGS}
    assert {("DuplicatesParams", "global_min_z"), ("DuplicatesParams", "local_min_z"),
            ("GateConfig", "max_imbalance_ratio"), ("OnnxConfig", "mean")} <= found


@pytest.mark.parametrize(
    ("toml", "where"),
    [
        ("[checks.duplicates]\nglobal_min_z = nan\n", "global_min_z"),
        ("[checks.duplicates]\nglobal_min_z = -inf\nlocal_min_z = -inf\n", "local_min_z"),
        ("[gate]\nmax_imbalance_ratio = inf\n", "gate.max_imbalance_ratio"),
        ("[encoder.onnx]\nstd = [0.2, nan, 0.2]\n", "encoder.onnx.std.1"),
    ],
    ids=["nan-threshold", "minus-inf-thresholds", "inf-gate-rule", "nan-in-a-list"],
)
def test_nan_and_infinity_in_a_config_file_are_config_errors(tmp_path: Path, toml: str, where: str) -> None:
    path = tmp_path / "odd.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError, match="finite number") as error:
        load_config(path, check_params=PARAMS)
    assert where in str(error.value) and str(path) in str(error.value)


def test_a_bad_list_item_names_the_file_it_came_from(tmp_path: Path) -> None:
    path = tmp_path / "onnx.toml"
    path.write_text("[encoder.onnx]\nmean = [0.5, nan, 0.5]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"encoder\.onnx\.mean\.1: .* \(from {path}\)"):
        load_config(path)


@pytest.mark.parametrize("source", ["file", "option"])
def test_a_check_named_twice_is_refused_naming_it(tmp_path: Path, source: str) -> None:
    """`--checks unreadable,unreadable,unreadable` ran the check three times: three findings per file."""
    names = ["unreadable", "duplicates", "unreadable", "unreadable"]
    path = tmp_path / "checks.toml"
    path.write_text(f"[scan]\nchecks = {names!r}\n".replace("'", '"'), encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        if source == "file":
            load_config(path, check_params=PARAMS)
        else:
            load_config(overrides={"scan": {"checks": names}}, check_params=PARAMS)
    message = str(error.value)
    assert len(message.splitlines()) == 1 and "check 'unreadable' is named more than once" in message, message
    assert "duplicates" not in message


def test_a_huge_list_of_check_names_is_refused_at_once(tmp_path: Path) -> None:
    """300,000 names in [scan] checks ran for minutes; the refusal reads each name once."""
    names = [*REGISTRY, *REGISTRY] * 150_000
    with pytest.raises(ConfigError, match=r"checks .* are named more than once") as error:
        load_config(overrides={"scan": {"checks": names}}, check_params=PARAMS)
    assert len(str(error.value)) < 400


def test_a_check_named_twice_is_refused_when_set_in_code() -> None:
    config = AuditConfig()
    with pytest.raises(ValidationError, match="named more than once"):
        config.scan.checks = ["unreadable", "unreadable"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a = " + "[" * 100_000 + "]" * 100_000 + "\n", "nested too deeply"),
        ("a = " + "9" * 5001 + "\n", "5001 digits"),
        ("a = [\n", "not valid TOML"),
    ],
    ids=["nested-100k-deep", "5001-digit-integer", "syntax"],
)
def test_a_config_file_the_parser_cannot_read_is_one_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "odd.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=expected) as error:
        load_config(path)
    assert len(str(error.value).splitlines()) == 1 and str(path) in str(error.value)


def test_a_folder_given_as_the_config_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"config file {tmp_path} is a folder; give a file"):
        load_config(tmp_path)
