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

from skmtl._utils.messages import few

__all__ = ["BranchSplitter", "find_branches", "resolve_branches", "standardizer"]

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


def resolve_branches(spec: Any, names: Any, n_features: int) -> list:
    """The branches given by ``MultiBranchClassifier(branches=spec)``.

    None: from the column ``names`` (:func:`find_branches`). A dict maps a branch name to
    its column names (needs ``names``); a list of sizes splits the columns in order.
    """
    if spec is None:
        return find_branches(names, n_features)
    if isinstance(spec, dict):
        if names is None:
            raise ValueError("branches given by column names need a pandas X.")
        index = {n: i for i, n in enumerate(names)}
        missing = [c for cols in spec.values() for c in cols if c not in index]
        if missing:
            raise ValueError(f"branches name columns that X does not have: {few(missing)}.")
        return [(name, np.asarray([index[c] for c in cols]), None)
                for name, cols in spec.items()]
    sizes = [int(s) for s in spec]
    if sum(sizes) != n_features:
        raise ValueError(f"branches={sizes} sum to {sum(sizes)}, but X has "
                         f"{n_features} columns.")
    edges = np.cumsum([0, *sizes])
    return [(f"branch{i}", np.arange(edges[i], edges[i + 1]), None)
            for i in range(len(sizes))]


def standardizer(X: np.ndarray, shape: tuple | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-column offset and scale that standardise one branch, like ``StandardScaler``.

    For a spatial map the statistics are those of each channel over all positions (so
    standardising commutes with the average pooling that follows). Columns whose
    standard deviation is zero to float64 precision keep scale 1. Any feature scale
    works: a ``keras.layers.Normalization`` would clamp the deviation at 1e-7 and
    flatten features of tiny magnitude (random-weight backbones give 1e-10).
    """
    X = np.asarray(X, dtype=np.float64)
    if shape is not None:
        X = X.reshape(-1, shape[-1])
    mean, std = X.mean(axis=0), X.std(axis=0)
    std[std < 10 * np.finfo(np.float64).eps] = 1.0
    if shape is not None:
        positions = int(np.prod(shape[:-1]))
        mean, std = np.tile(mean, positions), np.tile(std, positions)
    return mean, std


class BranchSplitter(TransformerMixin, BaseEstimator):
    """Feature encoder for scikeras: one float32 array per branch.

    ``columns``: the column indices of each branch; ``standardizers``: None, or an
    (offset, scale) pair per branch applied before the model sees the features.
    """

    def __init__(self, columns: list | None = None, standardizers: list | None = None) -> None:
        self.columns = columns
        self.standardizers = standardizers

    def fit(self, X: Any, y: Any = None) -> BranchSplitter:
        return self

    def transform(self, X: Any) -> list[np.ndarray]:
        X = np.asarray(X, dtype=np.float64 if self.standardizers else np.float32)
        parts = [X[:, cols] for cols in self.columns]
        if self.standardizers:
            parts = [(part - offset) / scale
                     for part, (offset, scale) in zip(parts, self.standardizers, strict=True)]
        return [part.astype(np.float32) for part in parts]
