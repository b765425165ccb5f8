"""What the meta-estimators share: finding the featurizers in a pipeline, splitting it from
the head, fitting a head with held-out data, checking X and y.

The featurizer block is stateless, so it can be asked for mirrored features by switching
``flip`` (mirrored features come from, and go into, the per-image cache), and held-out
images can be turned into validation features for the head's early stopping.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, column_or_1d, validate_data

from skmtl.features.featurizer import PretrainedFeaturizer

__all__ = ["ProbaPredictMixin", "featurizers_in", "fit_with_validation",
           "split_features_and_head"]


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


class ProbaPredictMixin:
    """``predict`` as the class of highest ``predict_proba`` (averaging meta-estimators)."""

    def predict(self, X: Any) -> np.ndarray:
        """Class with the highest averaged probability."""
        proba = self.predict_proba(X)  # checks that the model is fitted
        return self.classes_[np.argmax(proba, axis=1)]
