"""Competition tricks as meta-estimators: flip test-time augmentation and K-fold averaging.

Both wrap a pipeline whose first steps featurise images with :class:`PretrainedFeaturizer`
(directly or inside a ``FeatureUnion``) and whose last steps are the head. They split it
there: the featurizer block is stateless, so it can be asked for mirrored features by
switching ``flip`` (mirrored features come from, and go into, the per-image cache), and
held-out images can be turned into validation features for the head's early stopping.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import check_cv
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing, get_tags
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from skmtl._summary import describe_head
from skmtl.featurizer import PretrainedFeaturizer

__all__ = ["FlipTTAClassifier", "KFoldEnsembleClassifier"]


# ---------------------------------------------------------------------- helpers
def featurizers_in(estimator: Any) -> list[PretrainedFeaturizer]:
    """Every PretrainedFeaturizer inside ``estimator`` (pipelines, unions, nested)."""
    if isinstance(estimator, PretrainedFeaturizer):
        return [estimator]
    found: list[PretrainedFeaturizer] = []
    for _, child in getattr(estimator, "steps", []) or getattr(estimator, "transformer_list", []):
        found.extend(featurizers_in(child))
    return found


def split_features_and_head(estimator: Any) -> tuple[Any, Any]:
    """Split a pipeline after its last step that contains a featurizer.

    Returns ``(features, head)``: two pipelines (or single estimators) whose composition is
    ``estimator``.
    """
    if not isinstance(estimator, Pipeline):
        raise TypeError(
            "Expected a Pipeline that starts with PretrainedFeaturizer steps (see "
            f"skmtl.make_transfer_pipeline), got {type(estimator).__name__}."
        )
    last = max((i for i, (_, step) in enumerate(estimator.steps) if featurizers_in(step)),
               default=None)
    if last is None:
        raise ValueError("The pipeline contains no PretrainedFeaturizer to flip.")
    if last == len(estimator.steps) - 1:
        raise ValueError("The pipeline ends with a featurizer: it needs a head after it.")
    features, head = estimator[: last + 1], estimator[last + 1 :]
    return features, head[0] if len(head.steps) == 1 else head


def _fit_accepts(estimator: Any, name: str) -> bool:
    """Whether the final step's ``fit`` takes the parameter ``name``."""
    final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    passes_on = getattr(final, "_fit_accepts", None)  # a wrapper asks what it wraps
    if passes_on is not None:
        return passes_on(name)
    return name in inspect.signature(final.fit).parameters


def fit_with_validation(estimator: Any, X: Any, y: Any, validation: tuple | None,
                        groups: Any = None) -> Any:
    """Fit ``estimator``, giving its final step held-out data for early stopping.

    ``validation`` is ``(X_val, y_val)`` in ``estimator``'s input space; a pipeline's
    leading steps turn it into the final step's input. ``groups`` (rows that must stay
    together when the final step splits off its own early-stopping data) are passed when
    there is no ``validation``. Estimators that take neither are simply fitted.
    """
    params = {}
    if validation is not None and _fit_accepts(estimator, "validation_data"):
        params["validation_data"] = validation
    elif groups is not None and _fit_accepts(estimator, "groups"):
        params["groups"] = groups
    if not params:
        return estimator.fit(X, y)
    if isinstance(estimator, Pipeline) and len(estimator.steps) > 1:
        Xt = estimator[:-1].fit_transform(X, y)
        if "validation_data" in params:
            X_val, y_val = validation
            params["validation_data"] = (estimator[:-1].transform(X_val), y_val)
        estimator.steps[-1][1].fit(Xt, y, **params)
        return estimator
    return estimator.fit(X, y, **params)


def _indexable(X: Any) -> Any:
    """X in a form rows can be taken from: sparse as CSR, other array-likes as arrays.

    Lists (of paths or images), arrays, Series and DataFrames are kept as they are.
    """
    if hasattr(X, "tocsr"):
        return X.tocsr()
    if not hasattr(X, "__getitem__") and hasattr(X, "__array__"):
        return np.asarray(X)
    return X


def _check_table(estimator: Any, X: Any, *, reset: bool) -> None:
    """Record (fit) or check (predict) columns when X is a table, not images."""
    if getattr(X, "ndim", None) == 2:
        validate_data(estimator, X, skip_check_array=True, reset=reset)


def _checked_X_y(estimator: Any, X: Any, y: Any) -> tuple[Any, np.ndarray]:
    """Rows of X and class labels y, with clear errors for what cannot be fitted."""
    if y is None:
        raise ValueError(f"{type(estimator).__name__} requires y to be passed, but the "
                         "target y is None.")
    X = _indexable(X)
    y = column_or_1d(y, warn=True)
    check_consistent_length(X, y)
    check_classification_targets(y)
    _check_table(estimator, X, reset=True)
    return X, y


class _flipped:
    """Context manager setting ``flip`` on featurizers, restoring it afterwards."""

    def __init__(self, estimator: Any, flip: bool) -> None:
        self.featurizers = featurizers_in(estimator)
        self.flip = flip

    def __enter__(self) -> None:
        self.saved = [f.flip for f in self.featurizers]
        for f in self.featurizers:
            f.flip = self.flip

    def __exit__(self, *exc: Any) -> None:
        for f, flip in zip(self.featurizers, self.saved, strict=True):
            f.flip = flip


def _stack(frames: list[Any]) -> Any:
    if hasattr(frames[0], "iloc"):
        import pandas as pd

        return pd.concat(frames, ignore_index=True)
    return np.concatenate(frames)


# ---------------------------------------------------------------------- flip TTA
class FlipTTAClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Average predictions on original and horizontally mirrored images.

    Parameters
    ----------
    estimator : Pipeline
        Featurizer steps (``PretrainedFeaturizer`` or a ``FeatureUnion`` of them) followed
        by a head; cloned at fit.
    augment : bool, default=True
        Also train the head on the mirrored images (doubling the training set).

    Attributes
    ----------
    features_ : Pipeline
        The fitted featurizer block.
    head_ : estimator
        The fitted head.
    classes_ : ndarray
        Class labels.

    Notes
    -----
    Mirroring works by switching ``flip`` on every featurizer in the block, so mirrored
    features are cached like the originals. An image and its mirror are one group: a head
    whose ``fit`` takes ``groups`` (:class:`MultiBranchClassifier`) gets them, so that it
    never early-stops on the mirror of an image it trains on.
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict_proba"])],
        "augment": ["boolean"],
    }

    def __init__(self, estimator: Any, *, augment: bool = True) -> None:
        self.estimator = estimator
        self.augment = augment

    def _both_views(self, X: Any) -> tuple[Any, Any]:
        with _flipped(self.features_, False):
            original = self.features_.transform(X)
        with _flipped(self.features_, True):
            mirrored = self.features_.transform(X)
        return original, mirrored

    def fit(self, X: Any, y: Any, validation_data: tuple | None = None) -> FlipTTAClassifier:
        """Fit the featurizer block and the head (on both views when ``augment``).

        Parameters
        ----------
        X : images (paths or arrays)
        y : array-like of shape (n_samples,)
        validation_data : (X_val, y_val), optional
            Held-out images for the head's early stopping, when the head supports it.

        Returns
        -------
        self
        """
        self._validate_params()
        X, y = _checked_X_y(self, X, y)
        features, head = split_features_and_head(clone(self.estimator))
        self.features_ = features.fit(X, y)
        original, mirrored = self._both_views(X)
        Xh, yh = (_stack([original, mirrored]), np.concatenate([y, y])) if self.augment else (
            original, y)
        validation = None
        if validation_data is not None:
            X_val, y_val = validation_data
            v0, v1 = self._both_views(X_val)
            y_val = np.asarray(y_val)
            validation = (_stack([v0, v1]), np.concatenate([y_val, y_val])) if self.augment \
                else (v0, y_val)
        # An image and its mirror are one group: the head never early-stops on the
        # mirror of an image it trains on.
        groups = np.tile(np.arange(len(y)), 2) if self.augment else None
        self.head_ = fit_with_validation(head, Xh, yh, validation, groups)
        self.classes_ = self.head_.classes_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Mean of the head's probabilities on original and mirrored images."""
        check_is_fitted(self, "head_")
        original, mirrored = self._both_views(X)
        return (self.head_.predict_proba(original) + self.head_.predict_proba(mirrored)) / 2

    def predict(self, X: Any) -> np.ndarray:
        """Class with the highest averaged probability."""
        proba = self.predict_proba(X)  # checks that the model is fitted
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        return tags


# ---------------------------------------------------------------------- K-fold
class KFoldEnsembleClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
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
        if isinstance(self.cv, int):
            from sklearn.model_selection import StratifiedKFold

            return StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
        return check_cv(self.cv, classifier=True)

    def fit(self, X: Any, y: Any) -> KFoldEnsembleClassifier:
        """Fit one clone per fold and record out-of-fold probabilities.

        Returns
        -------
        self
        """
        self._validate_params()
        X, y = _checked_X_y(self, X, y)
        self.classes_ = np.unique(y)
        n = len(y)
        self.oof_proba_ = np.zeros((n, len(self.classes_)))
        self.estimators_ = []
        for k, (train, test) in enumerate(self._splitter().split(np.zeros(n), y)):
            model = clone(self.estimator)
            X_test = _safe_indexing(X, test)
            validation = (X_test, y[test]) if self.early_stopping else None
            fit_with_validation(model, _safe_indexing(X, train), y[train], validation)
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

    def predict(self, X: Any) -> np.ndarray:
        """Class with the highest averaged probability."""
        proba = self.predict_proba(X)  # checks that the model is fitted
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator).input_tags
        tags.input_tags.string = True
        tags.input_tags.sparse = inner.sparse
        tags.input_tags.allow_nan = inner.allow_nan
        return tags

