"""Adding a check is one module plus one registration line: a check defined here, with its own params, runs
through the check stage, its config section validated like any other, and neither ``checks/base.py`` nor
``evidence/`` knows about it."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import Field

from auditor.checks import REGISTRY, build_registry, check_record
from auditor.checks.base import Check, CheckContext, CheckResult
from auditor.core.config import ConfigModel, load_config
from auditor.core.errors import ConfigError
from auditor.results.findings import Finding, Severity, plain
from auditor.scan.pipeline import run_checks
from tests.conftest import synthetic_context


class TinyImagesParams(ConfigModel):
    # Images whose shorter side is below this many pixels are reported.
    min_side: int = Field(32, ge=1)


class TinyImagesCheck(Check[TinyImagesParams]):
    """The smallest useful check: one setting of its own, and one fact read from the shared evidence."""

    name = "tiny_images"
    description = "images too small to show anything"
    Params = TinyImagesParams

    def run(self, ctx: CheckContext) -> CheckResult:
        images = ctx.images
        small = images[images["readable"] & (images[["width", "height"]].min(axis=1) < self.params.min_side)]
        embedded = set(ctx.evidence.embedded.index)
        findings = [
            Finding(check=self.name, severity=Severity.INFO, message=f"only {row.width}x{row.height} pixels",
                    path=row.path, label=plain(row.label), score=1.0, details={"embedded": index in embedded})
            for index, row in zip(small.index, small.itertuples(index=False), strict=True)
        ]
        return CheckResult(findings, summary={"tiny": len(findings)})


# The one registration line: what adding ``TinyImagesCheck`` to ``_CHECKS`` in checks/__init__.py does.
WITH_TINY = build_registry([*REGISTRY.values(), TinyImagesCheck])
PARAMS_WITH_TINY = {name: check.Params for name, check in WITH_TINY.items()}


def _context(overrides: dict[str, object]) -> CheckContext:
    """Four embedded images of two classes, sides 8, 16, 40 and 64 pixels; the 16-pixel one is unreadable."""
    vectors = np.eye(4, 8, dtype=np.float32)
    ctx = synthetic_context(vectors, ["a", "a", "b", "b"], embedding_rows=[0, -1, 2, 3])
    ctx.images["width"] = ctx.images["height"] = [8, 16, 40, 64]
    ctx.config = load_config(overrides=overrides, check_params=PARAMS_WITH_TINY)
    return ctx


def test_a_new_check_runs_through_the_check_stage_with_its_own_params() -> None:
    stage = run_checks(_context({"scan": {"checks": ["tiny_images"]}}), checks=WITH_TINY)
    assert [(f.check, f.path, f.details) for f in stage.findings] == [("tiny_images", "a/0000.png", {"embedded": True})]
    assert stage.summaries == {"tiny_images": {"tiny": 1}}

    wider = _context({"scan": {"checks": ["tiny_images"]}, "checks": {"tiny_images": {"min_side": 50}}})
    assert [f.path for f in run_checks(wider, checks=WITH_TINY).findings] == ["a/0000.png", "b/0002.png"]


def test_a_new_checks_section_is_validated_and_recorded_like_any_other() -> None:
    with pytest.raises(ConfigError, match=r"checks\.tiny_images.*min_sides"):
        load_config(overrides={"checks": {"tiny_images": {"min_sides": 50}}}, check_params=PARAMS_WITH_TINY)
    with pytest.raises(ConfigError, match="unknown check 'tiny_images'"):
        run_checks(_context({"scan": {"checks": ["tiny_images"]}}))  # not registered: the stage refuses it
    assert check_record(WITH_TINY)["tiny_images"]["produces"] == ["tiny_images"]
