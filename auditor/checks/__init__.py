"""The registry of checks: one explicit list, one module per check.

Adding a check means writing its module and adding its class to ``_CHECKS``.
"""

from __future__ import annotations

from auditor.checks.ambiguous import AmbiguousCheck
from auditor.checks.base import Check, CheckContext, CheckResult, Requirement
from auditor.checks.class_imbalance import ClassImbalanceCheck
from auditor.checks.class_overlap import ClassOverlapCheck
from auditor.checks.duplicates import DuplicatesCheck
from auditor.checks.image_quality import ImageQualityCheck
from auditor.checks.label_errors import LabelErrorsCheck
from auditor.checks.outliers import OutliersCheck
from auditor.checks.unreadable import UnreadableCheck
from auditor.errors import ConfigError

__all__ = ["REGISTRY", "Check", "CheckContext", "CheckResult", "Requirement", "build_registry", "get_check"]

_CHECKS: list[type[Check]] = [
    UnreadableCheck,
    ClassImbalanceCheck,
    DuplicatesCheck,
    LabelErrorsCheck,
    ClassOverlapCheck,
    AmbiguousCheck,
    OutliersCheck,
    ImageQualityCheck,
]


def build_registry(checks: list[type[Check]]) -> dict[str, type[Check]]:
    registry: dict[str, type[Check]] = {}
    for check in checks:
        if check.name in registry:
            raise ValueError(f"check name {check.name!r} registered twice")
        registry[check.name] = check
    return registry


REGISTRY = build_registry(_CHECKS)


def get_check(name: str) -> type[Check]:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown check {name!r}; valid checks: {', '.join(REGISTRY)}") from None
