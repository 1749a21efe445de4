"""The evidence several checks read, computed once per scan and only when first asked for.

Out-of-sample probabilities, the label-issue and ambiguity verdicts, the classifier's reliability, class
closeness and the one embedding neighbour search are each made here, with the ``[evidence]`` settings (and
``[probabilities]``, ``[search]``, ``[reliability]``), so the checks that read them agree on them and no check
computes anything for another. A check's own settings never reach this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from auditor.core.config import AuditConfig, EvidenceConfig
from auditor.core.encoder_facts import ClassPrompts
from auditor.evidence.class_neighbours import ClassNeighbourhoods, class_neighbourhoods
from auditor.evidence.probabilities import (
    DistinctNeighbours,
    blended_probabilities,
    distinct_neighbours,
    identical_rows,
    out_of_sample_probabilities,
)
from auditor.evidence.reliability import Reliability, assess
from auditor.evidence.similarity import Neighbours, SearchLog, unit_rows
from auditor.evidence.user_probabilities import UserProbabilities
from auditor.evidence.verdicts import (
    Ambiguity,
    ambiguity,
    confident_counts,
    confident_joint,
    judged_classes,
    label_issue_mask,
)


@dataclass
class Evidence:
    """Lazy, typed evidence over one dataset's images (``images``: one row per discovered file, with
    ``embedding_row`` into ``embeddings``, -1 where not embedded)."""

    images: pd.DataFrame
    embeddings: np.ndarray
    config: AuditConfig
    # CLIP text embeddings of the class prompts, when zero-shot evidence is available (see zero_shot.py).
    prompts: ClassPrompts | None = None
    # The user's own out-of-sample probabilities (--pred-probs): they replace auditor's classifier as the
    # label-error and ambiguity evidence; images without a row are left out of it.
    user_probs: UserProbabilities | None = None
    # Every neighbour search run, in order (run.json "searches"); the checks' context shares this log.
    searches: SearchLog = field(default_factory=SearchLog)

    @property
    def settings(self) -> EvidenceConfig:
        """The ``[evidence]`` settings the verdicts are made with."""
        return self.config.evidence

    @cached_property
    def embedded(self) -> pd.DataFrame:
        """Rows that have an embedding, with ``embeddings[embedded.embedding_row]`` aligned to them."""
        return self.images[self.images["embedding_row"] >= 0]

    @cached_property
    def labelled(self) -> pd.DataFrame:
        """Embedded rows that carry a label (and, with user probabilities, have a row in them): the rows
        ``pred_probs`` and ``label_ids`` describe."""
        rows = self.embedded[self.embedded["label"].notna()]
        if self.user_probs is not None:
            rows = rows[rows["path"].isin(self.user_probs.row_of.keys())]
        return rows

    @cached_property
    def labelled_positions(self) -> np.ndarray:
        """Position in ``embedded`` of each ``labelled`` row."""
        return np.asarray(self.embedded.index.get_indexer(self.labelled.index), dtype=np.int64)

    @cached_property
    def labelled_classes(self) -> list[str]:
        """Classes with at least one embedded image, sorted; probability columns follow this order."""
        return sorted(self.embedded["label"].dropna().unique().tolist())

    @cached_property
    def label_ids(self) -> np.ndarray:
        """Given label of each ``labelled`` row as an index into ``labelled_classes``."""
        index = {name: i for i, name in enumerate(self.labelled_classes)}
        return np.asarray(self.labelled["label"].map(index).to_numpy(dtype=np.int64))

    @cached_property
    def labelled_embeddings(self) -> np.ndarray:
        """Rows of ``embeddings`` for ``labelled``: the matrix itself when that is every row in order (no
        second copy of a large matrix)."""
        rows = self.labelled["embedding_row"].to_numpy()
        if len(rows) == len(self.embeddings) and np.array_equal(rows, np.arange(len(rows))):
            return self.embeddings
        return np.asarray(self.embeddings[rows])

    @cached_property
    def regression_probs(self) -> np.ndarray:
        """Out-of-sample classifier probabilities (leave-one-out LDA) for ``labelled`` rows, columns
        ``labelled_classes``.

        Smooth in embedding space, so an image between two classes splits its mass: ambiguity reads these.
        With user probabilities, theirs.
        """
        if self.user_probs is not None:
            return self.user_probs.rows_for(self.labelled["path"].tolist(), self.labelled_classes)
        return out_of_sample_probabilities(
            self.labelled_embeddings, self.label_ids, len(self.labelled_classes), self.config.probabilities,
            self.distinct_vector_of[self.labelled_positions],
        )

    @cached_property
    def pred_probs(self) -> np.ndarray:
        """``regression_probs`` blended with a leave-one-out k-NN vote: the label-error evidence.

        With user probabilities, theirs as given: their model is the evidence the user asked for."""
        if self.user_probs is not None:
            return self.regression_probs
        params = self.config.probabilities
        shared = None
        vote = params.knn_neighbours > 0 and params.knn_weight > 0 and len(self.labelled) > params.knn_neighbours
        # The shared search serves the vote when every vector it searches is some labelled image's.
        if vote and self._covers(self.distinct_vector_of[self.labelled_positions]):
            shared = self.image_neighbours, self.image_neighbours.position[self.labelled_positions]
        return blended_probabilities(
            self.labelled_embeddings, self.label_ids, self.regression_probs, params, self.config.search,
            self.searches, shared,
        )

    @property
    def image_neighbours_width(self) -> int:
        """Neighbours per vector (itself included) of ``image_neighbours``: as many as the wider of its two
        readers needs, the k-NN vote (``knn_neighbours``) and ``[evidence] neighbours``."""
        return max(self.config.probabilities.knn_neighbours, self.settings.neighbours) + 1

    @cached_property
    def image_neighbours(self) -> DistinctNeighbours:
        """Every distinct embedded vector's ``image_neighbours_width`` nearest distinct vectors, itself included:
        one search (``[search]`` settings) shared by the k-NN vote and ``neighbours``, which would otherwise
        search the same vectors twice."""
        return distinct_neighbours(self.embeddings, self.embedded["embedding_row"].to_numpy(),
                                   self.image_neighbours_width, self.config.search, self.searches,
                                   "image_neighbours", self.distinct_vector_of)

    def _covers(self, vectors: np.ndarray) -> bool:
        """Whether ``vectors`` (``distinct_vector_of`` ids) include every distinct embedded vector: then
        ``image_neighbours`` is a search over exactly their vectors."""
        return len(np.unique(vectors)) == len(self.distinct_first)

    def neighbours(self, rows: np.ndarray, k: int, search_name: str) -> Neighbours:
        """Each of the vectors at embedding ``rows`` (one row per distinct content)'s ``k`` nearest others by
        cosine (rows with identical vectors first), ``index`` into ``rows``; ``k`` is capped at ``len(rows) - 1``.

        Read from ``image_neighbours`` when it is wide enough and searches exactly these vectors; else a search
        of their own, logged as ``search_name`` (a wider ``k``, or vectors no embedded image has: unreadable
        files with precomputed vectors).
        """
        vector_of_row = np.full(len(self.embeddings), -1, dtype=np.int64)
        vector_of_row[self.embedded["embedding_row"].to_numpy()] = self.distinct_vector_of
        k = min(k, len(rows) - 1)
        if self.image_neighbours_width > k and self._covers(vector_of_row[rows]):
            found = self.image_neighbours
            position_of_row = np.full(len(self.embeddings), -1, dtype=np.int64)
            position_of_row[self.embedded["embedding_row"].to_numpy()] = found.position
            position = position_of_row[rows]
        else:
            found = distinct_neighbours(self.embeddings, rows, k + 1, self.config.search, self.searches, search_name)
            position = found.position
        index, value = found.of_members(position, k)
        return Neighbours(index, value, found.search)

    @cached_property
    def confident_counts(self) -> np.ndarray:
        """cleanlab's calibrated confident joint (images) over ``labelled`` rows: the start of both verdicts below."""
        return confident_counts(self.label_ids, self.pred_probs)

    @cached_property
    def confident_joint(self) -> np.ndarray:
        """cleanlab's calibrated joint of given vs true class over ``labelled`` rows (sums to 1)."""
        return confident_joint(self.label_ids, self.pred_probs, self.confident_counts)

    @cached_property
    def judged_classes(self) -> np.ndarray:
        """Boolean per ``labelled_classes`` class: large enough for the classifier's verdict on its images."""
        sizes = np.bincount(self.label_ids, minlength=len(self.labelled_classes))
        return judged_classes(sizes, self.settings.label_issues)

    @cached_property
    def label_issues(self) -> np.ndarray:
        """Boolean per ``labelled`` row: cleanlab, with ``[evidence.label_issues]``, finds the given label
        implausible (before the judged-classes rule)."""
        params = self.settings.label_issues
        return label_issue_mask(self.label_ids, self.pred_probs, params.filter_by, self.confident_counts,
                                params.unclaimed_images, self.regression_probs)

    @cached_property
    def reliability(self) -> Reliability:
        """Whether the embedding separates the classes well enough to trust the model-based checks."""
        return assess(self.label_ids, self.pred_probs, self.regression_probs, self.label_issues,
                      self.labelled_classes, self.judged_classes[self.label_ids], self.config.reliability)

    @cached_property
    def ambiguity(self) -> Ambiguity:
        """Which ``labelled`` images are ambiguous between which classes, by ``[evidence.ambiguity]``."""
        def closeness() -> np.ndarray:
            positions = self.labelled_positions
            return np.asarray(self.class_neighbourhoods.similarity[self.distinct_vector_of[positions]])

        return ambiguity(self.label_ids, self.regression_probs, closeness, self.label_issues,
                         self.zero_shot_similarity, self.settings.ambiguity)

    @cached_property
    def zero_shot_similarity(self) -> np.ndarray | None:
        """Cosine of each ``labelled`` image to each ``labelled_classes`` prompt vector; None without prompts."""
        if self.prompts is None:
            return None
        index = {name: i for i, name in enumerate(self.prompts.classes)}
        vectors = self.prompts.vectors[[index[name] for name in self.labelled_classes]]
        return np.asarray(unit_rows(self.labelled_embeddings) @ vectors.T, dtype=np.float64)

    @cached_property
    def distinct_vector_of(self) -> np.ndarray:
        """For each ``embedded`` row, the id of its distinct embedding vector (copies share one id)."""
        return identical_rows(self.embeddings, self.embedded["embedding_row"].to_numpy())

    @cached_property
    def distinct_first(self) -> np.ndarray:
        """For each distinct vector id, the position in ``embedded`` of the first row that has it."""
        return np.unique(self.distinct_vector_of, return_index=True)[1]

    @cached_property
    def class_neighbourhoods(self) -> ClassNeighbourhoods:
        """Closeness of every distinct embedded vector (``distinct_vector_of``) to each ``labelled_classes``
        class; with no labelled image, to one pseudo-class holding every image."""
        vector_of = self.distinct_vector_of
        first = self.distinct_first
        rows = self.embedded["embedding_row"].to_numpy()[first]
        labels = self.embedded["label"].to_numpy()
        if self.labelled_classes:
            members = [np.unique(vector_of[labels == name]) for name in self.labelled_classes]
        else:
            members = [np.arange(len(first))]
        neighbours = None
        if len(first) > self.config.search.exact_max_vectors and len(members) >= 2:
            # Above the exact size each vector's reach is the shared search, renumbered to these vector ids.
            shared = self.image_neighbours
            theirs = shared.position[first]
            mine = np.empty(len(theirs), dtype=np.int64)
            mine[theirs] = np.arange(len(theirs))
            index = shared.index[theirs]
            neighbours = (shared.value[theirs], np.where(index >= 0, mine[np.maximum(index, 0)], -1))
        return class_neighbourhoods(self.embeddings, members, self.config.probabilities.class_neighbours,
                                    self.config.search, self.searches, rows=rows, neighbours=neighbours)

    @cached_property
    def exact_copy_groups(self) -> list[list[int]]:
        """Groups (2+) of ``images`` row indices whose decoded pixels are identical (byte copies included)."""
        readable = self.images[self.images["readable"] & self.images["pixel_sha256"].notna()]
        # Only the repeated contents are grouped: pandas builds an index per group (0.1 s for 1,000 distinct images).
        readable = readable[readable["pixel_sha256"].duplicated(keep=False)]
        groups = readable.groupby("pixel_sha256").groups
        return [sorted(int(i) for i in rows) for rows in groups.values() if len(rows) > 1]
