"""L2 logistic regression fitted fast, and its C chosen by inner cross-validation.

Two facts make this cheap on CNN features, which often have more columns than a fold has
rows:

- **The row space.** The L2-penalised solution is a combination of the training rows
  (at the optimum ``W = -C * X.T @ G``), so with an orthonormal basis ``Q`` of that span
  (``X.T = Q @ R``) the regression on ``X @ Q = R.T`` (n_rows columns instead of
  n_features) has the same optimum, ``W = U @ Q.T``, and the same predictions. A 100-class
  set of 2,000 training rows and 3,840 features is then fitted on 2,000 columns.
- **A warm-started path.** The inner-CV path runs from strong to weak regularisation a
  decade a step, each fold's model starting from its solution at the previous C, and stops
  one decade past the best mean held-out log loss (the curve is near unimodal); the two
  half-decade points beside the best are then tried too.

Folds are stratified (by group when ``groups`` is given). A class with fewer images than
folds is absent from some training folds; its held-out rows are then scored against the
small probability a fold model gives an unseen class, so the score punishes a C that is
only good for the classes every fold has.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from joblib import Parallel, delayed

__all__ = ["DEFAULT_CS", "fit_logistic", "multiclass_log_loss", "scores_by_C"]

#: Decades of C (inverse L2 strength on standardised features) that the path visits; the
#: half-decades beside the best are tried after it. They span the best C of 2-class sets of
#: 1,000 images (1e-2 .. 1e-1) and of 100-class sets of 15-30 images a class (0.3 .. 3).
DEFAULT_CS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)

#: Probability given to a class that a fold's training rows lack (before renormalising).
_UNSEEN = 1e-4


def multiclass_log_loss(proba: np.ndarray, labels: np.ndarray,
                        sample_weight: np.ndarray | None = None) -> float:
    """Mean (weighted) negative log-probability of the true class indices ``labels``,
    probabilities clipped to [1e-15, 1] like Kaggle's scorer."""
    picked = np.clip(proba[np.arange(len(labels)), labels], 1e-15, 1.0)
    return float(np.average(-np.log(picked), weights=sample_weight))


def softmax_proba(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax; one column of logits is a binary log-odds (sigmoid)."""
    if logits.ndim == 1 or logits.shape[1] == 1:
        logits = np.column_stack([np.zeros(len(logits)), np.ravel(logits)])
    logits = logits - logits.max(axis=1, keepdims=True)
    proba = np.exp(logits)
    return proba / proba.sum(axis=1, keepdims=True)


def row_space(X: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """(basis Q, coordinates X @ Q) when X has more columns than rows; else (None, X)."""
    if X.shape[0] >= X.shape[1]:
        return None, X
    Q, R = np.linalg.qr(X.T)
    return Q, R.T


def _regression(C: float, max_iter: int, tol: float, warm_start: bool = False) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=max_iter, tol=tol, warm_start=warm_start)


def fit_logistic(X: np.ndarray, labels: np.ndarray, C: float, *,
                 sample_weight: np.ndarray | None = None, max_iter: int = 2000,
                 tol: float = 1e-4) -> tuple[np.ndarray, np.ndarray, int]:
    """``LogisticRegression(C).fit(X, labels)`` solved in the row space of X.

    Returns ``(coef, intercept, n_iter)`` over the columns of ``X`` and the classes present
    in ``labels`` (one row of coef for two classes), equal to scikit-learn's to its tolerance.
    """
    Q, Z = row_space(X)
    model = _regression(C, max_iter, tol).fit(Z, labels, sample_weight=sample_weight)
    coef = model.coef_ if Q is None else model.coef_ @ Q.T
    return coef, model.intercept_, int(np.max(model.n_iter_))


class _FoldPath:
    """One inner fold's regression, refitted along the C path from earlier solutions."""

    def __init__(self, X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray,
                 n_classes: int, sample_weight: np.ndarray | None, max_iter: int,
                 tol: float) -> None:
        Q, self.X_train = row_space(X[train])
        self.X_test = X[test] if Q is None else X[test] @ Q
        self.y_train, self.y_test = y[train], y[test]
        self.present = np.unique(self.y_train)
        self.n_classes = n_classes
        self.w_train = None if sample_weight is None else sample_weight[train]
        self.w_test = None if sample_weight is None else sample_weight[test]
        self.model = _regression(1.0, max_iter, tol, warm_start=True)
        self.solutions: dict[float, tuple] = {}

    def step(self, C: float, start: float | None) -> tuple[float, float]:
        """Fit at ``C`` from the solution at ``start``; (held-out loss sum, weight)."""
        from sklearn.exceptions import ConvergenceWarning

        proba = np.full((len(self.y_test), self.n_classes), _UNSEEN)
        if len(self.present) < 2:  # a fold of one class predicts it, whatever C is
            proba[:, self.present[0]] = 1.0
        else:
            if start is not None:
                self.model.coef_, self.model.intercept_ = (
                    a.copy() for a in self.solutions[start])
            self.model.set_params(C=C)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                self.model.fit(self.X_train, self.y_train, sample_weight=self.w_train)
            self.solutions[C] = (self.model.coef_.copy(), self.model.intercept_.copy())
            proba[:, self.present] = self.model.predict_proba(self.X_test)
        proba /= proba.sum(axis=1, keepdims=True)
        total = float(len(self.y_test) if self.w_test is None else self.w_test.sum())
        return multiclass_log_loss(proba, self.y_test, self.w_test) * total, total


def _inner_splits(y: np.ndarray, cv: Any, random_state: Any, groups: Any = None) -> list:
    """Stratified folds (with ``groups``, rows of one group stay on one side), or the
    splits of a given cross-validation splitter or iterable."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, check_cv

    if not isinstance(cv, int):
        return list(check_cv(cv, y, classifier=True).split(np.zeros((len(y), 1)), y, groups))

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
                cv: Any = 3, sample_weight: np.ndarray | None = None, groups: Any = None,
                patience: int | None = 1, refine: bool = True, max_iter: int = 1000,
                tol: float = 1e-4, n_jobs: int | None = None,
                random_state: Any = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean held-out log loss of each C tried, in increasing C.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Standardised features.
    y : ndarray of shape (n_samples,)
        Class indices in ``range(n_classes)``.
    n_classes : int
        Number of classes of the whole problem.
    Cs : sequence of float
        The path, visited in increasing order.
    cv : int, cross-validation splitter or iterable
        Number of stratified inner folds, or the folds.
    sample_weight : ndarray, optional
    groups : array-like, optional
        Rows that must stay in one fold (an image and its mirror).
    patience : int or None
        Stop after this many values of the path without a better score; None visits all.
    refine : bool
        Then also try the geometric midpoints between the best value and its neighbours.
    max_iter, tol : int, float
        L-BFGS limits of each step.
    n_jobs : int, optional
        Threads fitting the folds at each step.
    random_state : int, RandomState or None
        Shuffling of the inner folds.

    Returns
    -------
    Cs : ndarray
        The C values tried, sorted.
    scores : ndarray
        Their mean held-out log loss (weighted by rows or sample weights).
    share : float
        The mean share of the rows (or sample weights) that a fold trains on.
    """
    grid = np.sort(np.asarray(Cs, dtype=float))
    if grid.size == 0 or np.any(grid <= 0):
        raise ValueError(f"Cs={Cs!r}: give one or more positive values.")
    splits = _inner_splits(y, cv, random_state, groups)
    folds = [_FoldPath(X, y, train, test, n_classes, sample_weight, max_iter, tol)
             for train, test in splits]
    scores: dict[float, float] = {}
    with Parallel(n_jobs=n_jobs, prefer="threads") as parallel:

        def run(C: float, start: float | None) -> None:
            parts = parallel(delayed(fold.step)(C, start) for fold in folds)
            scores[C] = sum(p[0] for p in parts) / sum(p[1] for p in parts)

        for k, C in enumerate(grid):
            run(float(C), None)  # warm: each fold's model holds the previous solution
            best = min(scores, key=scores.get)
            if patience is not None and k - int(np.searchsorted(grid, best)) >= patience:
                break
        if refine and len(scores) > 1:
            best = min(scores, key=scores.get)
            i = int(np.searchsorted(grid, best))
            for j in (i - 1, i + 1):
                if 0 <= j < len(grid) and float(grid[j]) in scores:
                    run(float(np.sqrt(best * grid[j])), best)
    tried = np.array(sorted(scores))
    weight = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    share = float(np.mean([weight[train].sum() / weight.sum() for train, _ in splits]))
    return tried, np.array([scores[C] for C in tried]), share
