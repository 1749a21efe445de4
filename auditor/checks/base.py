"""The contract every check follows: a name, what it needs, typed params, and ``run(ctx)``.

Checks are pure functions of the ``CheckContext``; anything two checks need (out-of-sample probabilities, the
label-issue and ambiguity verdicts, neighbours) is the context's ``evidence``, computed once, lazily, never by
one check for another. A check's own settings live in its ``Params`` alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import InitVar, dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
import pandas as pd
from pydantic import BaseModel

from auditor.core.config import AuditConfig, ConfigModel
from auditor.core.encoder_facts import ClassPrompts, EncoderInfo
from auditor.evidence import Evidence
from auditor.evidence.similarity import SearchLog
from auditor.evidence.user_probabilities import UserProbabilities
from auditor.results.findings import Finding, FindingKind
from auditor.results.summaries import Summary


class Requirement(StrEnum):
    EMBEDDINGS = "embeddings"
    LABELS = "labels"  # at least two classes with embedded images


class NoParams(ConfigModel):
    """A check without settings: its [checks.NAME] section, when present, must be empty."""


@dataclass
class CheckContext:
    """Everything a check may read: the dataset's facts, the config, and the shared ``evidence``.

    ``images`` has one row per discovered file, in output order. Without an ``evidence`` the context builds
    one over its images, embeddings and config, from ``prompts`` and ``user_probs`` (constructor-only).
    """

    images: pd.DataFrame
    # Row i of ``embeddings`` belongs to images row with embedding_row == i (-1: not embedded).
    embeddings: np.ndarray
    classes: list[str]
    splits: list[str]
    empty_classes: dict[str | None, list[str]]
    # Facts about the encoder (a core type): checks never import an encoder module.
    encoder: EncoderInfo
    config: AuditConfig
    # CLIP text embeddings of the class prompts, when zero-shot evidence is available (see zero_shot.py).
    prompts: InitVar[ClassPrompts | None] = None
    # The user's own out-of-sample probabilities (--pred-probs): the evidence of label_errors, class_overlap
    # and ambiguous instead of auditor's classifier.
    user_probs: InitVar[UserProbabilities | None] = None
    # Every neighbour search the evidence and checks run, in order (run.json "searches": method, size,
    # parameters, measured recall). The one thing checks add to: a record of work, not an input.
    searches: SearchLog = field(default_factory=SearchLog)
    evidence: Evidence = field(default=None)  # type: ignore[assignment]  # built in __post_init__ when None

    def __post_init__(self, prompts: ClassPrompts | None, user_probs: UserProbabilities | None) -> None:
        if self.evidence is None:
            self.evidence = Evidence(self.images, self.embeddings, self.config, prompts, user_probs, self.searches)


@dataclass
class CheckResult:
    findings: list[Finding] = field(default_factory=list)
    # Extra images.parquet columns, indexed like ``ctx.images``.
    columns: dict[str, pd.Series] = field(default_factory=dict)
    # Dataset-level figures for run.json, typed so that the gate and reports read them back typed.
    summary: Summary | None = None
    skipped: str | None = None


P = TypeVar("P", bound=BaseModel)


class Check(ABC, Generic[P]):
    """One check, generic in its params model ``P`` (``Params`` is that model's class)."""

    name: ClassVar[str]
    description: ClassVar[str]
    requires: ClassVar[frozenset[Requirement]] = frozenset()
    Params: ClassVar[type[BaseModel]] = NoParams
    # Finding ``check`` values this check emits (default: {name}); the pipeline refuses any other, and the
    # CI gate and summary (reading run.json) use it to tell "no such findings" from "the check did not run".
    produces: ClassVar[frozenset[str]] = frozenset()
    # How reports show each kind in ``produces`` (title, intro, layout, order); run.json records it, so
    # readers never import the checks. A kind without an entry is shown with the generic layout.
    kinds: ClassVar[dict[str, FindingKind]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not getattr(cls, "name", None) or not getattr(cls, "description", None):
            raise TypeError(f"check class {cls.__name__} must define 'name' and 'description'")
        if not cls.produces:
            cls.produces = frozenset({cls.name})
        if set(cls.kinds) - cls.produces:
            raise TypeError(f"check class {cls.__name__} describes kinds it does not produce: "
                            f"{sorted(set(cls.kinds) - cls.produces)}")

    def __init__(self, params: P) -> None:
        self.params: P = params

    @abstractmethod
    def run(self, ctx: CheckContext) -> CheckResult:
        """Return the findings for this check; must not mutate ``ctx``."""

