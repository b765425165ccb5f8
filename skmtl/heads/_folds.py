"""Which rows each model of MultiBranchClassifier trains on and early-stops on."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.model_selection import (
    GroupShuffleSplit,
    KFold,
    StratifiedGroupKFold,
    StratifiedKFold,
    train_test_split,
)

__all__ = ["MAX_STEPS", "class_indices", "member_data", "total_weight", "training_batch_size",
           "validation_splits"]

#: With ``batch_size="auto"``, the most optimizer steps in one epoch: the batch grows with
#: the rows beyond that, so that ``epochs`` and ``patience`` stand for the same amount of
#: training on 200 rows as on 3,000, and an epoch of many rows costs few steps.
MAX_STEPS = 16


def class_indices(y: np.ndarray) -> np.ndarray:
    """Integer class of each row of an encoded target (indices or one-hot)."""
    y = np.asarray(y).reshape(len(y), -1)
    return (y[:, 0] if y.shape[1] == 1 else y.argmax(axis=1)).astype(int)


def training_batch_size(batch_size: Any, n_rows: int) -> int:
    """The mini-batch of a model trained on ``n_rows``: ``batch_size``, or for ``"auto"``
    32 rows, more where an epoch would otherwise take over :data:`MAX_STEPS` steps."""
    if batch_size != "auto":
        return int(batch_size)
    return max(32, -(-n_rows // MAX_STEPS))


def total_weight(y: np.ndarray, sample_weight: Any) -> float:
    """Number of rows, or their total weight."""
    return float(len(y) if sample_weight is None else np.sum(sample_weight))


def validation_splits(labels: np.ndarray, *, n_models: int, validation_fraction: float,
                      patience: int | None, random_state: Any,
                      groups: np.ndarray | None = None) -> list | None:
    """(training rows, validation rows) of each model; None without early stopping.

    Several models: ``n_models`` shuffled folds, stratified when every class has a row in
    each. One model: a stratified ``validation_fraction`` of the rows (Keras' own
    ``validation_split`` takes the last rows, a single class for data sorted by class).
    With ``groups`` (e.g. an image and its mirror), rows of one group never fall on both
    sides of a split: stratified group folds, or a group shuffle split for one model.
    """
    if patience is None or (n_models == 1 and validation_fraction == 0):
        return None
    if groups is not None:
        if n_models > 1:
            return list(StratifiedGroupKFold(n_models, shuffle=True, random_state=random_state)
                        .split(labels, labels, groups))
        return list(GroupShuffleSplit(1, test_size=validation_fraction,
                                      random_state=random_state).split(labels, labels, groups))
    counts = np.bincount(labels)
    smallest, n_classes = counts[counts > 0].min(), np.count_nonzero(counts)
    if n_models > 1:
        folds = StratifiedKFold if smallest >= n_models else KFold
        return list(folds(n_models, shuffle=True, random_state=random_state)
                    .split(labels, labels))
    n_val = max(round(validation_fraction * len(labels)), n_classes)
    if len(labels) - n_val < 2:
        return None
    return [train_test_split(np.arange(len(labels)), test_size=n_val,
                             stratify=labels if smallest >= 2 else None,
                             random_state=random_state)]


def member_data(X: list, y: np.ndarray, sample_weight: Any, validation: tuple | None,
                splits: list | None, n_models: int) -> list[tuple]:
    """((X, y, sample_weight) to train on, validation or None) for each of ``n_models``.

    Given ``validation`` data, every model trains on all rows and stops on it; else each
    trains on its ``splits`` pair's training rows and stops on the others; without
    either (no early stopping) every model trains on all rows.
    """
    sw = None if sample_weight is None else np.asarray(sample_weight)
    if validation is not None or splits is None:
        return [((X, y, sw), validation)] * n_models

    def take(rows: np.ndarray) -> tuple:
        return [part[rows] for part in X], y[rows], None if sw is None else sw[rows]

    members = []
    for train, held_out in splits:
        X_val, y_val, sw_val = take(held_out)
        members.append((take(train), (X_val, y_val) if sw is None else (X_val, y_val, sw_val)))
    return members
