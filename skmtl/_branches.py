"""Which columns of X belong to which backbone: the branches of MultiBranchClassifier.

A ``FeatureUnion`` of featurizers with pandas output names its columns
``<backbone>__<k>`` (pooled features) or ``<backbone>__h<i>w<j>c<k>`` (spatial maps); the
prefix before the last ``"__"`` names the branch.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = ["BranchSplitter", "find_branches", "pooled_stats"]

_SPATIAL = re.compile(r"h(\d+)w(\d+)c(\d+)")


def find_branches(names: Any, n_features: int) -> list[tuple[str, np.ndarray, tuple | None]]:
    """Group columns into branches by the prefix before their last ``"__"``.

    Returns a list of ``(name, column indices, spatial shape or None)`` in order of first
    appearance. Columns named ``<prefix>__h<i>w<j>c<k>`` form a spatial branch of shape
    (max i + 1, max j + 1, max k + 1). Without names there is one branch of every column.
    """
    if names is None:
        return [("features", np.arange(n_features), None)]
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(map(str, names)):
        prefix = name.rsplit("__", 1)[0] if "__" in name else ""
        groups.setdefault(prefix, []).append(i)
    branches = []
    for prefix, columns in groups.items():
        last = [str(names[i]).rsplit("__", 1)[-1] for i in columns]
        matches = [_SPATIAL.fullmatch(s) for s in last]
        shape = None
        if all(matches):
            dims = np.array([[int(g) for g in m.groups()] for m in matches])
            shape = tuple(int(d) for d in dims.max(axis=0) + 1)
            if int(np.prod(shape)) != len(columns):
                shape = None
        branches.append((prefix or "features", np.asarray(columns), shape))
    return branches


def pooled_stats(X: np.ndarray, shape: tuple | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and variance of a branch, after pooling for spatial maps."""
    if shape is not None:
        X = X.reshape(len(X), -1, shape[-1]).mean(axis=1)
    return X.mean(axis=0), np.maximum(X.var(axis=0), 1e-6)


class BranchSplitter(TransformerMixin, BaseEstimator):
    """Feature encoder for scikeras: one float32 array per branch (``columns``: indices)."""

    def __init__(self, columns: list | None = None) -> None:
        self.columns = columns

    def fit(self, X: Any, y: Any = None) -> BranchSplitter:
        return self

    def transform(self, X: Any) -> list[np.ndarray]:
        X = np.asarray(X, dtype=np.float32)
        return [X[:, cols] for cols in self.columns]
