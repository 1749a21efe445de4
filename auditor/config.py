"""Typed configuration: defaults live on the models, `configs/default.toml` mirrors them with comments.

A typo in a TOML file is an error (``extra="forbid"``), never a silently ignored setting, because a
CI gate that quietly runs with default thresholds is worse than one that refuses to start.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auditor.errors import ConfigError
from auditor.gate import GateConfig
from auditor.probabilities import ProbabilityParams
from auditor.reliability import ReliabilityParams
from auditor.zero_shot import ZeroShotParams


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EncoderConfig(StrictModel):
    name: Literal["auto", "clip", "builtin", "precomputed"] = "auto"
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


class ScanConfig(StrictModel):
    max_image_pixels: int = Field(89_478_485, ge=1)
    max_file_bytes: int = Field(512 * 1024 * 1024, ge=1)
    workers: int = Field(2, ge=0, le=64)
    cache_dir: Path | None = None
    use_cache: bool = True
    # None runs every registered check.
    checks: list[str] | None = None


class AuditConfig(StrictModel):
    scan: ScanConfig = Field(default_factory=ScanConfig)
    encoder: EncoderConfig = Field(default_factory=EncoderConfig)
    probabilities: ProbabilityParams = Field(default_factory=ProbabilityParams)
    zero_shot: ZeroShotParams = Field(default_factory=ZeroShotParams)
    reliability: ReliabilityParams = Field(default_factory=ReliabilityParams)
    checks: dict[str, dict[str, Any]] = Field(default_factory=dict)
    gate: GateConfig = Field(default_factory=GateConfig)

    def check_params(self, name: str) -> BaseModel:
        """The validated parameter model of check ``name`` (defaults where the config is silent)."""
        from auditor.checks import get_check

        return get_check(name).Params.model_validate(self.checks.get(name, {}))


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _format_validation_error(source: str, error: ValidationError) -> str:
    lines = [f"invalid configuration in {source}:"]
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"  {where}: {item['msg']}")
    return "\n".join(lines)


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> AuditConfig:
    """Load defaults, then ``path`` (TOML), then CLI ``overrides``; validate checks against the registry."""
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    if overrides:
        data = _deep_merge(data, overrides)
    try:
        config = AuditConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(source, exc)) from None
    _validate_checks(config, source)
    return config


def _validate_checks(config: AuditConfig, source: str) -> None:
    from auditor.checks import REGISTRY

    unknown = [name for name in [*(config.scan.checks or []), *config.checks] if name not in REGISTRY]
    if unknown:
        raise ConfigError(
            f"unknown check(s) {', '.join(sorted(set(unknown)))} in {source}; "
            f"valid checks: {', '.join(sorted(REGISTRY))}"
        )
    for name in config.checks:
        try:
            config.check_params(name)
        except ValidationError as exc:
            raise ConfigError(_format_validation_error(f"{source} [checks.{name}]", exc)) from None
