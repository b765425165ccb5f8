"""Choose the L2 strength of a logistic regression by inner cross-validation.

The path runs from strong to weak regularisation (small to large C). Each inner fold keeps
one ``LogisticRegression`` that is warm-started from its solution at the previous C, so a
step costs a few L-BFGS iterations instead of a fit from zero, and the path stops once the
mean held-out log loss has risen for ``patience`` steps past its best (the curve of a
ridge-penalised likelihood against C is near unimodal). Folds are stratified; a class with
fewer images than folds is simply absent from some training folds, and its held-out rows
are then scored against the small probability the fold model gives an unseen class, so
the score punishes a C that is only good for the classes every fold has.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from joblib import Parallel, delayed

__all__ = ["DEFAULT_CS", "LogisticPath", "multiclass_log_loss", "scores_by_C"]

#: The C grid (inverse L2 strength on standardised features): 1e-4 .. 1e2, half a decade
#: a step. It spans the best C of 2-class sets of 1,000 images (1e-2 .. 1e-1) and of
#: 100-class sets of 15-30 images a class (1e-1 and above), with room on both sides.
DEFAULT_CS = tuple(float(c) for c in np.logspace(-4, 2, 13))

#: Probability given to a class that a fold's training rows lack (before renormalising).
_UNSEEN = 1e-4


def multiclass_log_loss(proba: np.ndarray, labels: np.ndarray,
                        sample_weight: np.ndarray | None = None) -> float:
    """Mean (weighted) negative log-probability of the true class indices ``labels``.

    Probabilities are clipped to [1e-15, 1] like Kaggle's scorer; every class counts,
    whether or not it occurs in ``labels``.
    """
    picked = np.clip(proba[np.arange(len(labels)), labels], 1e-15, 1.0)
    return float(np.average(-np.log(picked), weights=sample_weight))


def _full_proba(model: Any, X: np.ndarray, n_classes: int) -> np.ndarray:
    """``model.predict_proba(X)`` with one column per class of the whole problem."""
    present = model.classes_
    if len(present) == n_classes:
        return model.predict_proba(X)
    proba = np.full((len(X), n_classes), _UNSEEN)
    proba[:, present] = model.predict_proba(X) if len(present) > 1 else 1.0
    return proba / proba.sum(axis=1, keepdims=True)


class LogisticPath:
    """One inner fold's logistic regression, refitted along a C path with warm starts."""

    def __init__(self, X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray,
                 n_classes: int, sample_weight: np.ndarray | None, max_iter: int,
                 tol: float) -> None:
        from sklearn.linear_model import LogisticRegression

        self.X, self.y, self.train, self.test = X, y, train, test
        self.n_classes, self.sample_weight = n_classes, sample_weight
        self.single = len(np.unique(y[train])) < 2
        self.model = LogisticRegression(max_iter=max_iter, tol=tol, warm_start=True)

    def step(self, C: float) -> tuple[float, float]:
        """Fit at ``C`` from the previous solution; (held-out loss sum, held-out weight)."""
        from sklearn.exceptions import ConvergenceWarning

        test, sw = self.test, self.sample_weight
        if self.single:  # a fold of one class predicts it, whatever C is
            proba = np.full((len(test), self.n_classes), _UNSEEN)
            proba[:, self.y[self.train][0]] = 1.0
            proba /= proba.sum(axis=1, keepdims=True)
        else:
            self.model.set_params(C=C)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                self.model.fit(self.X[self.train], self.y[self.train],
                               sample_weight=None if sw is None else sw[self.train])
            proba = _full_proba(self.model, self.X[test], self.n_classes)
        weight = None if sw is None else sw[test]
        total = float(len(test) if weight is None else weight.sum())
        return multiclass_log_loss(proba, self.y[test], weight) * total, total


def _inner_splits(y: np.ndarray, cv: int, random_state: Any, groups: Any = None) -> list:
    """Stratified folds; with ``groups``, rows of one group stay on one side."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    units = len(y) if groups is None else len(np.unique(groups))
    if units < 2 or np.bincount(y).max() < 2:
        raise ValueError("choosing C by cross-validation needs a class with at least 2 "
                         "rows (2 groups); give C explicitly.")
    n_splits = int(min(cv, units))
    kind = StratifiedKFold if groups is None else StratifiedGroupKFold
    splitter = kind(n_splits=n_splits, shuffle=True, random_state=random_state)
    with warnings.catch_warnings():  # classes with fewer rows than folds are expected
        warnings.filterwarnings("ignore", message=".*least populated class.*")
        return list(splitter.split(np.zeros((len(y), 1)), y, groups))


def scores_by_C(X: np.ndarray, y: np.ndarray, n_classes: int, *, Cs: Any = DEFAULT_CS,
                cv: int = 3, sample_weight: np.ndarray | None = None, groups: Any = None,
                patience: int = 2,
                max_iter: int = 1000, tol: float = 1e-4, n_jobs: int | None = None,
                random_state: Any = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean held-out log loss of each C on the path, in increasing C.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Standardised features.
    y : ndarray of shape (n_samples,)
        Class indices in ``range(n_classes)``.
    n_classes : int
        Number of classes of the whole problem.
    Cs : sequence of float
        The grid; visited in increasing order.
    cv : int
        Number of stratified inner folds.
    sample_weight : ndarray, optional
    groups : array-like, optional
        Rows that must stay in one fold (an image and its mirror).
    patience : int or None
        Stop after this many steps without a better score; None visits every C.
    max_iter, tol : int, float
        L-BFGS limits of each step.
    n_jobs : int, optional
        Threads fitting the folds at each step.
    random_state : int, RandomState or None
        Shuffling of the inner folds.

    Returns
    -------
    Cs : ndarray
        The C values visited.
    scores : ndarray
        Their mean held-out log loss (weighted by rows or sample weights).
    """
    grid = np.sort(np.asarray(Cs, dtype=float))
    if grid.size == 0 or np.any(grid <= 0):
        raise ValueError(f"Cs={Cs!r}: give one or more positive values.")
    paths = [LogisticPath(X, y, train, test, n_classes, sample_weight, max_iter, tol)
             for train, test in _inner_splits(y, cv, random_state, groups)]
    visited, scores = [], []
    with Parallel(n_jobs=n_jobs, prefer="threads") as parallel:
        for C in grid:
            parts = parallel(delayed(path.step)(C) for path in paths)
            visited.append(C)
            scores.append(sum(p[0] for p in parts) / sum(p[1] for p in parts))
            best = int(np.argmin(scores))
            if patience is not None and len(scores) - 1 - best >= patience:
                break
    return np.asarray(visited), np.asarray(scores)
