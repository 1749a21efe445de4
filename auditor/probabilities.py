"""Out-of-sample predicted class probabilities from embeddings (the input to confident learning).

Each image's probabilities come from a classifier that never saw that image (stratified K-fold), so
a mislabelled image cannot vouch for its own label. Deterministic for a given seed.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class ProbabilityParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Number of cross-validation folds; classes smaller than this still get out-of-sample predictions.
    folds: int = Field(5, ge=2, le=20)
    # Inverse L2 regularisation strength of the logistic regression (sklearn's C).
    regularisation_c: float = Field(1.0, gt=0)
    # Seed for fold assignment and the solver.
    seed: int = 0
    # Upper bound on solver iterations per fold.
    max_iter: int = Field(200, ge=10)


def out_of_sample_probabilities(
    embeddings: np.ndarray, labels: np.ndarray, n_classes: int, params: ProbabilityParams
) -> np.ndarray:
    """(n, n_classes) probabilities; ``labels`` are ints in [0, n_classes)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    n = len(labels)
    probs = np.zeros((n, n_classes), dtype=np.float64)
    counts = np.bincount(labels, minlength=n_classes)
    folds = max(2, min(params.folds, int(counts.max())))
    # Classes with a single image cannot be split; StratifiedKFold still places them in one fold.
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=params.seed)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for train_idx, test_idx in splitter.split(embeddings, labels):
            train_labels = labels[train_idx]
            present = np.unique(train_labels)
            if len(present) == 1:
                probs[np.ix_(test_idx, present)] = 1.0
                continue
            model = LogisticRegression(C=params.regularisation_c, max_iter=params.max_iter,
                                       random_state=params.seed)
            model.fit(embeddings[train_idx], train_labels)
            probs[np.ix_(test_idx, model.classes_)] = model.predict_proba(embeddings[test_idx])
    # A class absent from a fold's training data got zero mass; keep probabilities strictly positive.
    probs = np.clip(probs, 1e-6, None)
    return probs / probs.sum(axis=1, keepdims=True)
