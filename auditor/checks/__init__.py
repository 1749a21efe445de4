"""The registry of checks: one explicit list, one module per check.

Adding a check means writing its module and adding its class to ``_CHECKS``. Everything else (config
validation, run.json's record of what each check produces and how reports show it) is derived from here.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from auditor.checks.ambiguous import AmbiguousCheck
from auditor.checks.base import Check, CheckContext, CheckResult, Requirement
from auditor.checks.class_imbalance import ClassImbalanceCheck
from auditor.checks.class_overlap import ClassOverlapCheck
from auditor.checks.duplicates import DuplicatesCheck
from auditor.checks.image_quality import ImageQualityCheck
from auditor.checks.label_errors import LabelErrorsCheck
from auditor.checks.outliers import OutliersCheck
from auditor.checks.unreadable import UnreadableCheck
from auditor.core.config import AuditConfig
from auditor.core.errors import ConfigError
from auditor.results.findings import FindingKind

__all__ = [
    "PARAMS",
    "REGISTRY",
    "Check",
    "CheckContext",
    "CheckResult",
    "Requirement",
    "build_registry",
    "check_params",
    "check_record",
    "get_check",
]

_CHECKS: list[type[Check[Any]]] = [
    UnreadableCheck,
    ClassImbalanceCheck,
    DuplicatesCheck,
    LabelErrorsCheck,
    ClassOverlapCheck,
    AmbiguousCheck,
    OutliersCheck,
    ImageQualityCheck,
]


def build_registry(checks: list[type[Check[Any]]]) -> dict[str, type[Check[Any]]]:
    registry: dict[str, type[Check[Any]]] = {}
    for check in checks:
        if check.name in registry:
            raise ValueError(f"check name {check.name!r} registered twice")
        registry[check.name] = check
    return registry


REGISTRY = build_registry(_CHECKS)
# Check name -> its params model: what ``load_config(check_params=PARAMS)`` validates [checks.*] against.
PARAMS: dict[str, type[BaseModel]] = {name: check.Params for name, check in REGISTRY.items()}


def get_check(name: str) -> type[Check[Any]]:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown check {name!r}; valid checks: {', '.join(REGISTRY)}") from None


def check_params(config: AuditConfig, name: str) -> BaseModel:
    """The validated parameter model of check ``name`` (defaults where the config is silent)."""
    return get_check(name).Params.model_validate(config.checks.get(name, {}))


def check_record(checks: dict[str, type[Check[Any]]] | None = None) -> dict[str, Any]:
    """What run.json records about every registered check, so that readers (gate, reports) need not
    import the checks: its description, the finding kinds it produces, and how reports show each kind."""
    record: dict[str, Any] = {}
    for name, check in (checks if checks is not None else REGISTRY).items():
        record[name] = {
            "description": check.description,
            "produces": sorted(check.produces),
            "kinds": {
                kind: check.kinds.get(kind, FindingKind.generic(kind)).to_dict() for kind in sorted(check.produces)
            },
        }
    return record
