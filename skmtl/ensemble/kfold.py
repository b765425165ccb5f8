"""K-fold averaging: one model per cross-validation fold, out-of-fold scores, averaged."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import check_cv
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted

from skmtl._utils.sklearn_private import HasMethods, _fit_context, _safe_indexing
from skmtl.ensemble._pipeline_parts import (
    ProbaPredictMixin,
    _check_table,
    _checked_X_y,
    _indexable,
    fit_with_validation,
)
from skmtl.heads._summary import describe_head

__all__ = ["KFoldEnsembleClassifier"]


class KFoldEnsembleClassifier(ProbaPredictMixin, MetaEstimatorMixin, ClassifierMixin,
                              BaseEstimator):
    """Train one model per cross-validation fold and average them.

    Each fold's clone is fitted on the other folds, with its own held-out fold as
    validation data for early stopping when the head supports it, and predicts that fold:
    these out-of-fold probabilities give an honest CV score. At predict time the fold
    models are averaged. ``KFoldEnsembleClassifier(FlipTTAClassifier(pipe), cv=5)`` is the
    "5 folds x original/flipped" recipe.

    Parameters
    ----------
    estimator : estimator
        Classifier to clone per fold (a pipeline, a ``FlipTTAClassifier``...).
    cv : int or cross-validation splitter, default=5
        Integers use ``StratifiedKFold(cv, shuffle=True, random_state=random_state)``.
    early_stopping : bool, default=True
        Pass each held-out fold to the head as validation data.
    random_state : int, default=0
        Shuffling of the default folds.
    verbose : bool, default=False
        Print each fold's score and what its head chose (C, epochs kept).

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted fold models.
    oof_proba_ : ndarray of shape (n_samples, n_classes)
        Out-of-fold probabilities.
    cv_log_loss_, cv_accuracy_ : float
        Scores of ``oof_proba_``.
    classes_ : ndarray
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict_proba"])],
        "cv": ["cv_object"],
        "early_stopping": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator: Any,
        *,
        cv: Any = 5,
        early_stopping: bool = True,
        random_state: int | None = 0,
        verbose: bool = False,
    ) -> None:
        self.estimator = estimator
        self.cv = cv
        self.early_stopping = early_stopping
        self.random_state = random_state
        self.verbose = verbose

    def _splitter(self) -> Any:
        if isinstance(self.cv, numbers.Integral):  # NumPy integers too
            from sklearn.model_selection import StratifiedKFold

            return StratifiedKFold(int(self.cv), shuffle=True, random_state=self.random_state)
        return check_cv(self.cv, classifier=True)

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X: Any, y: Any, groups: Any = None) -> KFoldEnsembleClassifier:
        """Fit one clone per fold and record out-of-fold probabilities.

        Parameters
        ----------
        X : images (paths or arrays) or a feature table
        y : array-like of shape (n_samples,)
        groups : array-like of shape (n_samples,), optional
            Group labels for a group splitter (``cv=GroupKFold(5)``): rows of one group
            (for example, photos of one animal) are never split between a fold's training
            and held-out rows.

        Returns
        -------
        self
        """
        X, y = _checked_X_y(self, X, y)
        if groups is not None:
            groups = np.asarray(groups)
            if len(groups) != len(y):
                raise ValueError(f"groups has {len(groups)} entries for {len(y)} rows of X.")
        self.classes_ = np.unique(y)
        n = len(y)
        self.oof_proba_ = np.zeros((n, len(self.classes_)))
        self.estimators_ = []
        for k, (train, test) in enumerate(self._splitter().split(np.zeros(n), y, groups)):
            model = clone(self.estimator)
            X_test = _safe_indexing(X, test)
            validation = (X_test, y[test]) if self.early_stopping else None
            fit_with_validation(model, _safe_indexing(X, train), y[train], validation,
                                None if groups is None else groups[train])
            self.oof_proba_[test] = self._aligned(model, model.predict_proba(X_test))
            self.estimators_.append(model)
            if self.verbose:
                chosen = describe_head(model)
                print(f"fold {k + 1}: log loss "
                      f"{log_loss(y[test], self.oof_proba_[test], labels=self.classes_):.4f}"
                      + (f" ({chosen})" if chosen else ""), flush=True)
        self.cv_log_loss_ = float(log_loss(y, self.oof_proba_, labels=self.classes_))
        self.cv_accuracy_ = float(accuracy_score(y, self.classes_[self.oof_proba_.argmax(1)]))
        return self

    def _aligned(self, model: Any, proba: np.ndarray) -> np.ndarray:
        """Columns of ``proba`` in the order of ``classes_`` (a fold may lack a class)."""
        out = np.zeros((len(proba), len(self.classes_)))
        out[:, np.searchsorted(self.classes_, model.classes_)] = proba
        return out / out.sum(axis=1, keepdims=True)  # float32 heads are 1e-7 off

    def predict_proba(self, X: Any) -> np.ndarray:
        """Mean of the fold models' probabilities."""
        check_is_fitted(self, "estimators_")
        X = _indexable(X)
        _check_table(self, X, reset=False)
        return np.mean([self._aligned(m, m.predict_proba(X)) for m in self.estimators_], axis=0)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator).input_tags
        tags.input_tags.string = True
        tags.input_tags.sparse = inner.sparse
        tags.input_tags.allow_nan = inner.allow_nan
        return tags

