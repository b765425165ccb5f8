"""L2 logistic regression fitted fast, and its C chosen by inner cross-validation.

Three facts make this cheap on CNN features, which often have more columns than a fold has
rows:

- **The row space.** The L2-penalised solution is a combination of the training rows
  (at the optimum ``W = -C * X.T @ G``), so with an orthonormal basis ``Q`` of that span
  the regression on ``X @ Q`` (n_rows columns instead of n_features) has the same optimum,
  ``W = U @ Q.T``, and the same predictions. A 100-class set of 2,000 training rows and
  3,840 features is then fitted on 2,000 columns. The basis comes from the Cholesky factor
  of the rows' Gram matrix (:class:`RowSpace`), and one Gram matrix of all rows gives every
  inner fold its block and its held-out rows' coordinates, and the final fit its own. It
  is used where a fold's rows are at most :data:`ROW_SPACE_SHARE` of the columns.
- **A warm-started path from C=0.1.** The inner-CV path starts at C=0.1 and walks to weaker
  regularisation a decade a step, each fold's model starting from its solution at the
  previous C; when C=1 is no better it walks from C=0.1 down to stronger regularisation
  instead. Either way it stops one decade past the best mean held-out log loss (the curve
  is near unimodal; a score less than 0.1% lower does not count as better). The head
  places its C between the decades by a parabola through the scores
  (:func:`skmtl.heads.logistic.parabola_minimum`); :func:`scores_by_C` can evaluate the
  half-decades beside the best instead (``refine``). The strong-penalty end, slow to
  walk through and far from the best C of most sets, is visited only when it is needed.
- **Every C to the same precision.** L-BFGS's gradient tolerance shrinks in proportion
  to the penalty above C=0.1 (:func:`tol_at`), and folds run in parallel threads with one
  BLAS thread each.
- **The final fit starts from the folds.** The mean of the inner folds' solutions at the
  best C, over the features, is where the fit on all rows starts.

Folds are stratified (by group when ``groups`` is given). A class with fewer images than
folds is absent from some training folds; its held-out rows are then scored against the
small probability a fold model gives an unseen class, so the score punishes a C that is
only good for the classes every fold has.
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

__all__ = ["DEFAULT_CS", "fit_logistic", "multiclass_log_loss", "scores_by_C"]

#: Decades of C (inverse L2 strength on standardised features) that the path visits. They
#: span the best C of 2-class sets of 1,000 images (1e-2 .. 1e-1) and of 100-class sets of
#: 15-30 images a class (0.3 .. 3).
DEFAULT_CS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)

#: Where the path starts (the value of the path nearest to it). Below it L-BFGS converges
#: at each step; starting higher (C=1) left the weak-penalty steps under-converged (a
#: warm start from a cold fit at C=1 meets the tolerance at once) and the curve above the
#: start flatter and higher (birds 0.3177 instead of 0.3129 at C=3.16).
START_C = 0.1

#: A score counts as better than the best so far only when lower by this share of it.
MIN_GAIN = 1e-3

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


class RowSpace:
    """Coordinates of feature rows in an orthonormal basis of the span of ``rows``.

    With the Cholesky factor ``L`` of the rows' Gram matrix (``rows @ rows.T = L @ L.T``) the
    basis is ``Q = rows.T @ inv(L.T)``: the rows' own coordinates are ``L`` and a coefficient
    ``U`` over them is ``U @ inv(L) @ rows`` over the features. The Gram product and the
    Cholesky factorisation are matrix products, several times faster than a QR factorisation
    of ``rows.T`` (which ran 5 to 10 times slower on shared cores). It is computed in float64,
    and a tiny ridge (1e-10 of the mean squared row norm, raised to 1e-7 or 1e-4 if needed)
    keeps the factorisation defined when rows repeat.
    """

    def __init__(self, rows: np.ndarray, gram: np.ndarray | None = None) -> None:
        # In float64: a float32 Gram matrix of a few hundred columns is off by 1e-7 of its
        # trace, enough to make it indefinite when rows are near-collinear.
        rows = np.asarray(rows, dtype=np.float64)
        gram = rows @ rows.T if gram is None else np.array(gram, dtype=np.float64)
        scale = max(float(np.trace(gram)) / len(gram), 1e-300)
        for ridge in (1e-10, 1e-7, 1e-4):  # repeated rows (an image and its mirror...)
            try:
                shifted = gram.copy()
                shifted[np.diag_indices_from(shifted)] += ridge * scale
                self.L = np.linalg.cholesky(shifted)
                break
            except np.linalg.LinAlgError:
                if not np.isfinite(gram).all():
                    raise ValueError("The features hold NaN or infinite values.") from None
        else:
            raise np.linalg.LinAlgError("The rows' Gram matrix is not positive definite.")
        self.rows = rows

    def coordinates(self, X: np.ndarray, cross: np.ndarray | None = None) -> np.ndarray:
        """``X @ Q``: rows of X in the basis (``cross``: ``rows @ X.T`` if known)."""
        from scipy.linalg import solve_triangular

        cross = self.rows @ X.T if cross is None else cross
        return solve_triangular(self.L, cross, lower=True, check_finite=False).T

    def to_features(self, coef: np.ndarray) -> np.ndarray:
        """``coef @ Q.T``: a coefficient over the basis, over the features."""
        from scipy.linalg import solve_triangular

        return solve_triangular(self.L, coef.T, lower=True, trans="T",
                                check_finite=False).T @ self.rows

    def from_features(self, coef: np.ndarray) -> np.ndarray:
        """``coef @ Q``: the projection of a coefficient over the features onto the basis."""
        return self.coordinates(coef)


#: Solve in the rows' span when the rows are at most this share of the columns (or their
#: Gram matrix is known anyway): the Gram product costs about as much as 15 to 20 L-BFGS
#: iterations, so with nearly as many rows as columns it costs more than it saves.
ROW_SPACE_SHARE = 0.6


def row_space(X: np.ndarray, gram: np.ndarray | None = None
              ) -> tuple[RowSpace | None, np.ndarray]:
    """(basis, coordinates of X's rows) when X has fewer rows than columns and either
    ``gram`` (``X @ X.T``) is given or the rows are at most :data:`ROW_SPACE_SHARE` of the
    columns; else (None, X)."""
    if X.shape[0] >= X.shape[1] or (gram is None
                                    and X.shape[0] > ROW_SPACE_SHARE * X.shape[1]):
        return None, X
    basis = RowSpace(X, gram)
    return basis, basis.L


def tol_at(C: float, tol: float) -> float:
    """L-BFGS gradient tolerance at ``C``: ``tol`` up to :data:`START_C`, then in
    proportion to the penalty (``tol * START_C / C``).

    scikit-learn's objective is the mean loss plus ``||W||^2 / (2 C n)``, and L-BFGS stops
    when no gradient component exceeds ``tol``. The weaker the penalty, the flatter the
    objective, and the further from its optimum a point with that gradient lies: at C=10
    a warm start from C=1 met ``tol=1e-4`` after 0 to 2 iterations, with a held-out log loss
    15% above the optimum's, so the inner-CV curve above the start was flat and the final
    fit depended on where it started. Scaling the tolerance with the penalty solves every C
    to the same relative precision.
    """
    return tol * min(1.0, START_C / C)


def _regression(C: float, max_iter: int, tol: float, warm_start: bool = False) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=max_iter, tol=tol_at(C, tol),
                              warm_start=warm_start)


#: Below this many multiply-adds in a product of the features and the coefficients, a
#: regression runs with one BLAS thread (see :func:`one_blas_thread_if_small`).
SMALL_PRODUCT = 2e8


def one_blas_thread_if_small(X: np.ndarray, n_classes: int) -> Any:
    """A context that limits BLAS to one thread while a small regression is solved.

    Each L-BFGS iteration makes a few BLAS calls; with small operands the threads of a
    multi-threaded BLAS spend more time meeting than computing, and when other processes
    share the cores every meeting waits for a time slice: a fit of 533 x 533 coordinates
    and 100 classes took 10.6 s with two BLAS threads on two busy cores and 1.9 s with one.
    """
    if X.shape[0] * X.shape[1] * max(n_classes, 1) < SMALL_PRODUCT:
        return threadpool_limits(limits=1, user_api="blas")
    return nullcontext()


def fit_logistic(X: np.ndarray, labels: np.ndarray, C: float, *,
                 sample_weight: np.ndarray | None = None, max_iter: int = 2000,
                 tol: float = 1e-4, init: tuple | None = None,
                 gram: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """``LogisticRegression(C).fit(X, labels)`` solved in the row space of X.

    ``init``, an optional ``(coef, intercept)`` over the columns of ``X``, is where L-BFGS
    starts (projected onto the row space); ``gram``, ``X @ X.T`` if known, saves computing
    it. Returns ``(coef, intercept, n_iter)`` over the
    columns of ``X`` and the classes present in ``labels`` (one row of coef for two
    classes), equal to scikit-learn's to its tolerance.
    """
    basis, Z = row_space(X, gram)
    model = _regression(C, max_iter, tol, warm_start=init is not None)
    if init is not None:
        coef, intercept = init
        model.coef_ = np.array(coef if basis is None else basis.from_features(coef), float)
        model.intercept_ = np.array(intercept, float)
    with one_blas_thread_if_small(Z, len(np.unique(labels))):
        model.fit(Z, labels, sample_weight=sample_weight)
    coef = model.coef_ if basis is None else basis.to_features(model.coef_)
    return coef, model.intercept_, int(np.max(model.n_iter_))


class _FoldPath:
    """One inner fold's regression, refitted along the C path from earlier solutions."""

    def __init__(self, X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray,
                 n_classes: int, sample_weight: np.ndarray | None, max_iter: int,
                 tol: float, gram: np.ndarray | None = None) -> None:
        self.y_train, self.y_test = y[train], y[test]
        self.present = np.unique(self.y_train)
        block = None if gram is None else gram[np.ix_(train, train)]
        self.basis, self.X_train = row_space(X[train], block)
        if self.basis is not None:
            cross = None if gram is None else gram[np.ix_(train, test)]
            self.X_test = self.basis.coordinates(X[test], cross)
        else:
            self.X_test = X[test]
        self.n_classes = n_classes
        self.w_train = None if sample_weight is None else sample_weight[train]
        self.w_test = None if sample_weight is None else sample_weight[test]
        self.tol = tol
        self.model = _regression(1.0, max_iter, tol, warm_start=True)
        self.solutions: dict[float, tuple] = {}

    def solution(self, C: float) -> tuple[np.ndarray, np.ndarray] | None:
        """(coef over the features, intercept) at ``C``; None for a fold of one class."""
        if C not in self.solutions:
            return None
        coef, intercept = self.solutions[C]
        return coef if self.basis is None else self.basis.to_features(coef), intercept

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
            self.model.set_params(C=C, tol=tol_at(C, self.tol))
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
                random_state: Any = 0, start: float | None = None
                ) -> tuple[np.ndarray, np.ndarray, float]:
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
        The path: entered at its value nearest ``start``, walked up while the score
        improves, else down from there.
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
        Threads fitting the folds at each step, each with a single BLAS thread; None: one
        per fold. 1: one fold at a time, with BLAS's own threads.
    random_state : int, RandomState or None
        Shuffling of the inner folds.
    start : float, optional
        Where the path starts (the value of ``Cs`` nearest it); default :data:`START_C`.

    Returns
    -------
    Cs : ndarray
        The C values tried, sorted.
    scores : ndarray
        Their mean held-out log loss (weighted by rows or sample weights).
    share : float
        The mean share of the rows (or sample weights) that a fold trains on.
    """
    tried, scores, share, _, _ = _search(
        X, y, n_classes, Cs=Cs, cv=cv, sample_weight=sample_weight, groups=groups,
        patience=patience, refine=refine, max_iter=max_iter, tol=tol, n_jobs=n_jobs,
        random_state=random_state, start=start)
    return tried, scores, share


def _search(X: np.ndarray, y: np.ndarray, n_classes: int, *, Cs: Any, cv: Any,
            sample_weight: np.ndarray | None, groups: Any, patience: int | None,
            refine: bool, max_iter: int, tol: float, n_jobs: int | None, random_state: Any,
            start: float | None, gram: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray, float, list[_FoldPath], np.ndarray | None]:
    """:func:`scores_by_C`, the folds with their solutions, and ``gram``. The folds that
    solve in their rows' span take their Gram blocks from ``gram`` (``X @ X.T``, computed
    here when None and a fold's rows are at most :data:`ROW_SPACE_SHARE` of the columns)."""
    grid = np.sort(np.asarray(Cs, dtype=float))
    if grid.size == 0 or np.any(grid <= 0):
        raise ValueError(f"Cs={Cs!r}: give one or more positive values.")
    first = int(np.argmin(np.abs(np.log(grid) - np.log(START_C if start is None else start))))
    splits = _inner_splits(y, cv, random_state, groups)
    if gram is None and min(len(train) for train, _ in splits) <= ROW_SPACE_SHARE * X.shape[1]:
        gram = X @ X.T  # one product for all folds' Gram blocks and held-out coordinates
    folds = [_FoldPath(X, y, train, test, n_classes, sample_weight, max_iter, tol, gram)
             for train, test in splits]
    scores: dict[float, float] = {}
    workers = len(folds) if n_jobs is None else n_jobs
    # Folds in parallel threads, each with one BLAS thread: a fold's products are small,
    # and BLAS threads that synchronise on every call of L-BFGS's vector operations made a
    # step 5 times slower when other processes shared the cores.
    blas = (threadpool_limits(limits=1, user_api="blas") if workers != 1
            else one_blas_thread_if_small(folds[0].X_train, n_classes))
    with blas, Parallel(n_jobs=workers, prefer="threads") as parallel:

        def run(C: float, start: float | None) -> None:
            parts = parallel(delayed(fold.step)(C, start) for fold in folds)
            scores[C] = sum(p[0] for p in parts) / sum(p[1] for p in parts)

        def leader() -> int:
            """Index of the first value visited within MIN_GAIN of the lowest score."""
            low = min(scores.values())
            first_good = next(C for C in scores if scores[C] <= low + MIN_GAIN * abs(low))
            return int(np.searchsorted(grid, first_good))

        for i in range(first, len(grid)):  # weaker penalties, each from the previous one
            run(float(grid[i]), None)
            if patience is not None and i - leader() >= patience:
                break
        if leader() == first:  # then stronger ones, from the first value down
            for i in range(first - 1, -1, -1):
                run(float(grid[i]), float(grid[i + 1]) if i == first - 1 else None)
                if patience is not None and leader() - i >= patience:
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
    return tried, np.array([scores[C] for C in tried]), share, folds, gram
