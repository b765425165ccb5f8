"""LogisticHeadClassifier: standardised L2 logistic regression that chooses its own C."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from skmtl._utils.sklearn_private import Interval, StrOptions, _fit_context
from skmtl.heads._logistic_cv import DEFAULT_CS, _search, fit_logistic, softmax_proba

__all__ = ["LogisticHeadClassifier", "choose_C", "parabola_minimum"]


def choose_C(X: np.ndarray, y: np.ndarray, n_classes: int, *, Cs: Any = None, cv: Any = 3,
             sample_weight: np.ndarray | None = None, groups: Any = None, tol: float = 1e-4,
             n_jobs: int | None = None, random_state: Any = 0
             ) -> tuple[float, np.ndarray, np.ndarray]:
    """The C for all rows of standardised ``X`` and class indices ``y``, by inner CV.

    The inner folds train on a share of the rows (2/3 with 3 folds); scikit-learn's
    penalty does not grow with the rows, so the C with the lowest held-out log loss is
    scaled by that share, which gives the regression on all rows the same penalty per row
    (the rule :class:`MultiBranchClassifier` applies to its models too).

    Returns ``(C, Cs tried, mean held-out log loss of each)``; see
    :func:`skmtl.heads._logistic_cv.scores_by_C`.
    """
    C, grid, scores, _, _ = _choose_C(
        X, y, n_classes, Cs=Cs, cv=cv, sample_weight=sample_weight, groups=groups, tol=tol,
        n_jobs=n_jobs, random_state=random_state)
    return C, grid, scores


def _choose_C(X: np.ndarray, y: np.ndarray, n_classes: int, *, Cs: Any, cv: Any,
              sample_weight: np.ndarray | None, groups: Any, tol: float, n_jobs: int | None,
              random_state: Any
              ) -> tuple[float, np.ndarray, np.ndarray, tuple | None, np.ndarray | None]:
    """:func:`choose_C`, the mean of the inner folds' solutions at the best C visited (over
    the features), where the final fit starts (None when a fold lacks a class), and the
    rows' Gram matrix if the folds computed it."""
    grid, scores, share, folds, gram = _search(
        X, y, n_classes, Cs=DEFAULT_CS if Cs is None else Cs, cv=cv,
        sample_weight=sample_weight, groups=groups, patience=1, refine=False, max_iter=1000,
        tol=tol, n_jobs=n_jobs, random_state=random_state, start=None)
    visited = float(grid[int(np.argmin(scores))])
    init = None
    if all(len(fold.present) == n_classes for fold in folds):
        solutions = [fold.solution(visited) for fold in folds]
        init = tuple(np.mean(parts, axis=0) for parts in zip(*solutions, strict=True))
    return parabola_minimum(grid, scores) * share, grid, scores, init, gram


def parabola_minimum(Cs: np.ndarray, scores: np.ndarray) -> float:
    """The C at the vertex of the parabola, in log C, through the lowest score and its two
    neighbours; the lowest-scoring C itself when it is the first or last one tried.

    The held-out log loss is smooth and flat near its minimum, so a parabola through three
    decades places the minimum between them as well as evaluating the half-decades beside
    it did (which took two more steps of every fold). With the middle score the lowest the
    vertex lies between the midpoints to its neighbours.
    """
    i = int(np.argmin(scores))
    if i == 0 or i == len(Cs) - 1:
        return float(Cs[i])
    x = np.log(np.asarray(Cs[i - 1:i + 2], dtype=float))
    f = np.asarray(scores[i - 1:i + 2], dtype=float)
    left, right = (f[1] - f[0]) / (x[1] - x[0]), (f[2] - f[1]) / (x[2] - x[1])
    curvature = (right - left) / (x[2] - x[0])
    if not curvature > 0:  # three equal scores (a flat curve)
        return float(Cs[i])
    return float(np.exp((x[0] + x[1]) / 2 - left / (2 * curvature)))


def standardisation(X: np.ndarray, sample_weight: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(mean, scale) of each column, like ``StandardScaler``; constant columns get scale 1."""
    mean = np.average(X, axis=0, weights=sample_weight)
    scale = np.sqrt(np.average((X - mean) ** 2, axis=0, weights=sample_weight))
    scale[scale < 10 * np.finfo(X.dtype).eps * np.maximum(np.abs(mean), 1.0)] = 1.0
    return mean, scale


class LogisticHeadClassifier(ClassifierMixin, BaseEstimator):
    """Standardised multinomial logistic regression whose L2 strength is chosen by CV.

    The ``"logistic"`` head of :func:`skmtl.make_transfer_pipeline`. The right penalty
    depends on the data: two easy classes of a thousand images want a strong one, a
    hundred fine-grained classes of twenty images want a much weaker one (a fixed C that
    suits the first gave 1.3 to 2 times the log loss of a cross-validated C on the
    second). With ``C="auto"`` the features are standardised once, an inner stratified
    ``cv``-fold cross-validation walks a path of C a decade a step from C=0.1, to weaker
    regularisation while that helps, else to stronger, warm-starting each fold's model from
    the previous C and stopping one decade past the best held-out log loss. The C at the
    vertex of the parabola through the best score and its neighbours (in log C), scaled by
    the share of rows an inner fold trains on (so that the penalty per row stays the
    same), is refitted
    on all rows, starting from the mean of the inner folds' solutions. Where a fold
    has fewer rows than features (common with CNN features), each regression is solved in
    the span of its rows, which has the same solution at a fraction of the cost.
    Every class is scored in every fold, also one that a fold's training rows lack, so
    classes with fewer images than folds are fine.

    Parameters
    ----------
    C : "auto" or float, default="auto"
        Inverse L2 strength on standardised features, or ``"auto"`` to choose it.
    Cs : sequence of float, optional
        The path for ``"auto"``, entered at its value nearest 0.1; by default the decades
        from 1e-4 to 100.
    cv : int, cross-validation splitter or iterable, default=3
        Inner folds for ``"auto"``: stratified (by group with ``groups``) when an int.
    standardize : bool, default=True
        Centre and scale each feature with the training mean and standard deviation.
    class_weight : None, "balanced" or dict
        As in ``LogisticRegression`` (applied as sample weights, in the inner CV too).
    max_iter : int, default=2000
        L-BFGS iterations of the final fit.
    tol : float, default=1e-4
        Gradient tolerance of the L-BFGS fits (of each inner step and of the final fit) at
        C <= 0.1; at larger C it shrinks in proportion to 1/C, so that weak penalties, whose
        objective is flatter, are solved to the same precision.
    n_jobs : int, optional
        Threads fitting the inner folds at each step of the path, each with one BLAS
        thread (None: one per fold; 1: one fold at a time with BLAS's own threads).
    random_state : int, RandomState or None, default=0
        Shuffling of the inner folds.
    verbose : int, default=0
        Print the chosen C.

    Attributes
    ----------
    C_ : float
        The C of the final fit on all rows (with ``"auto"``: the best C of the inner CV,
        placed between the values tried by :func:`parabola_minimum`, times the share of
        rows an inner fold trains on, 2/3 with 3 folds).
    Cs_ : ndarray or None
        The C values the inner CV tried, on its folds' rows (None when C was given).
    cv_log_loss_ : ndarray or None
        Their mean held-out log loss.
    mean_, scale_ : ndarray of shape (n_features,)
        The standardisation (zeros and ones without ``standardize``).
    coef_ : ndarray of shape (1 or n_classes, n_features)
        Coefficients on the standardised features.
    intercept_ : ndarray
    n_iter_ : int
        L-BFGS iterations of the final fit.
    classes_ : ndarray
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names of a pandas X, when it had string column names.

    Notes
    -----
    The fitted model equals ``StandardScaler`` followed by ``LogisticRegression(C=C_)``
    (multinomial, L-BFGS) to the solver's tolerance.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> head = LogisticHeadClassifier().fit(X, y)
    >>> bool(np.isclose(head.C_, head.Cs_[head.cv_log_loss_.argmin()] * 2 / 3))
    True
    >>> head.predict_proba(X[:2]).shape
    (2, 10)
    >>> LogisticHeadClassifier(C=0.01).fit(X, y).C_
    0.01
    """

    _parameter_constraints: dict = {
        "C": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "Cs": ["array-like", None],
        "cv": [Interval(Integral, 2, None, closed="left"), "cv_object"],
        "standardize": ["boolean"],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, C: Any = "auto", *, Cs: Any = None, cv: int = 3,
                 standardize: bool = True, class_weight: Any = None, max_iter: int = 2000,
                 tol: float = 1e-4, n_jobs: int | None = None, random_state: Any = 0,
                 verbose: int = 0) -> None:
        self.C = C
        self.Cs = Cs
        self.cv = cv
        self.standardize = standardize
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.tol = tol
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any, sample_weight: Any = None,
            groups: Any = None) -> LogisticHeadClassifier:
        """Standardise, choose C (with ``C="auto"``) and fit on all rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional
        groups : array-like of shape (n_samples,), optional
            Rows of one group (an image and its mirror) are never split between the
            inner folds' training and held-out rows (:class:`FlipTTAClassifier` passes
            them), so the chosen C is not flattered by near-duplicates.

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y, dtype=np.float64, reset=True)
        check_classification_targets(y)
        self.classes_, labels = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 classes, but y has "
                             f"one class: {self.classes_[0]!r}.")
        weights = None if sample_weight is None else _check_sample_weight(sample_weight, X)
        if groups is not None and np.shape(groups) != (len(y),):
            raise ValueError(f"groups has shape {np.shape(groups)}; expected ({len(y)},), "
                             "one group per row of X.")
        if self.class_weight is not None:
            balance = compute_sample_weight(self.class_weight, labels)
            weights = balance if weights is None else weights * balance
        if self.standardize:
            self.mean_, self.scale_ = standardisation(X, weights)
            X = (X - self.mean_) / self.scale_
        else:
            self.mean_, self.scale_ = np.zeros(X.shape[1]), np.ones(X.shape[1])
        self.Cs_ = self.cv_log_loss_ = init = gram = None
        if isinstance(self.C, str):
            # the rows' Gram matrix, if the inner folds use it, serves the final fit too
            self.C_, self.Cs_, self.cv_log_loss_, init, gram = _choose_C(
                X, labels, len(self.classes_), Cs=self.Cs, cv=self.cv, sample_weight=weights,
                groups=groups, tol=self.tol, n_jobs=self.n_jobs, random_state=self.random_state)
            if self.verbose:
                print(f"{type(self).__name__}: C={self.C_:.3g} (inner CV log "
                      f"loss {self.cv_log_loss_.min():.4f} over {len(self.Cs_)} values)")
        else:
            self.C_ = float(self.C)
        self.coef_, self.intercept_, self.n_iter_ = fit_logistic(
            X, labels, self.C_, sample_weight=weights, max_iter=self.max_iter, tol=self.tol,
            init=init, gram=gram)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits (binary: the log-odds of ``classes_[1]``)."""
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        logits = ((X - self.mean_) / self.scale_) @ self.coef_.T + self.intercept_
        return logits.ravel() if logits.shape[1] == 1 else logits

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, one column per class in ``classes_``."""
        return softmax_proba(self.decision_function(X))

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`."""
        return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class."""
        proba = self.predict_proba(X)  # checks that the model is fitted
        return self.classes_[np.argmax(proba, axis=1)]
