"""Flip test-time augmentation (and training on mirrored images) as a meta-estimator."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.utils.validation import check_is_fitted

from skmtl._utils.sklearn_private import HasMethods, _fit_context
from skmtl.ensemble._pipeline_parts import (
    ProbaPredictMixin,
    _checked_X_y,
    featurizers_in,
    fit_with_validation,
    split_features_and_head,
)

__all__ = ["FlipTTAClassifier"]


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



def _mirrors_itself(estimator: Any) -> bool:
    """An estimator that reads images and mirrors them itself: a ``tta`` parameter and no
    featurizer (:class:`skmtl.FineTunedClassifier`)."""
    return "tta" in estimator.get_params(deep=False) and not featurizers_in(estimator)


class FlipTTAClassifier(ProbaPredictMixin, MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Average predictions on original and horizontally mirrored images.

    Parameters
    ----------
    estimator : Pipeline or FineTunedClassifier
        Featurizer steps (``PretrainedFeaturizer`` or a ``FeatureUnion`` of them) followed
        by a head, or an image model with a ``tta`` parameter
        (:class:`~skmtl.FineTunedClassifier`, fitted with ``tta="flip"``); cloned at fit.
    augment : bool, default=True
        Also train the head on the mirrored images (doubling the training set); for a
        fine-tuned model, add random flips to its ``augment``.

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

    @_fit_context(prefer_skip_nested_validation=False)
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
        X, y = _checked_X_y(self, X, y)
        if _mirrors_itself(self.estimator):
            return self._fit_self_mirroring(X, y, validation_data)
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

    def _fit_self_mirroring(self, X: Any, y: Any, validation_data: Any) -> FlipTTAClassifier:
        """An image model (FineTunedClassifier): it averages the views itself."""
        model = clone(self.estimator).set_params(tta="flip")
        if self.augment and "augment" in model.get_params():
            model.set_params(augment={None: "flip", "crop": "flip_crop"}.get(
                model.augment, model.augment))
        self.features_ = None
        self.head_ = fit_with_validation(model, X, y, validation_data)
        self.classes_ = self.head_.classes_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Mean of the head's probabilities on original and mirrored images."""
        check_is_fitted(self, "head_")
        if self.features_ is None:  # an image model with tta="flip"
            return self.head_.predict_proba(X)
        original, mirrored = self._both_views(X)
        return (self.head_.predict_proba(original) + self.head_.predict_proba(mirrored)) / 2

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        return tags
