"""FineTunedClassifier: a pretrained backbone fine-tuned end to end, as a classifier."""

from __future__ import annotations

import os
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

import skmtl.finetune._network as net
from skmtl._utils.seeding import seeded
from skmtl._utils.sklearn_private import HasMethods, Interval, StrOptions, _fit_context
from skmtl.backbones import get_backbone_spec
from skmtl.backbones.build import model_input_size, tf_device
from skmtl.features.sources import ImageSources, as_image_sources
from skmtl.finetune._docs import DOC
from skmtl.finetune._persist import model_from_bytes, model_to_bytes
from skmtl.finetune._pipeline import AUGMENTATIONS, augmentation_draws, make_dataset, raising
from skmtl.finetune._schedule import SCHEDULES, lr_multiplier
from skmtl.finetune._training import Tracker, inference_fn, predict_batches, train_epochs
from skmtl.io.images import RESIZE_MODES

__all__ = ["FineTunedClassifier"]


class FineTunedClassifier(ClassifierMixin, BaseEstimator):
    __doc__ = DOC

    _parameter_constraints: dict = {
        "backbone": [str, HasMethods(["predict", "get_layer"])],
        "weights": [str, os.PathLike, None],
        "input_size": [Interval(Integral, 8, None, closed="left"), tuple, None],
        "resize": [StrOptions(set(RESIZE_MODES))],
        "preprocess": [callable, str, None],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "head_init": [StrOptions({"logistic", "train"})],
        "head_epochs": [Interval(Integral, 0, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "trainable_layers": [Interval(Integral, 0, None, closed="left"), StrOptions({"all"})],
        "epochs": [Interval(Integral, 0, None, closed="left")],
        "fine_tune_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "layer_lr_ratio": [Interval(Real, 0, 1, closed="right")],
        "layer_groups": [Interval(Integral, 1, None, closed="left")],
        "schedule": [StrOptions(set(SCHEDULES))],
        "warmup": [Interval(Real, 0, 1, closed="left")],
        "train_batchnorm": ["boolean"],
        "augment": [StrOptions({a for a in AUGMENTATIONS if a}), None],
        "tta": [StrOptions({"flip"}), None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
        "patience": [Interval(Integral, 1, None, closed="left"), None],
        "mixed_precision": ["boolean", StrOptions({"auto"})],
        "device": [str, None],
        "n_jobs": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": [Interval(Integral, 0, None, closed="left"), None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        backbone: Any = "efficientnet_lite0",
        *,
        weights: str | os.PathLike | None = "imagenet",
        input_size: int | tuple[int, int] | None = None,
        resize: str = "squash",
        preprocess: Callable | str | None = None,
        dropout: float = 0.2,
        head_init: str = "logistic",
        head_epochs: int = 1,
        learning_rate: float = 1e-3,
        trainable_layers: int | str = "all",
        epochs: int = 4,
        fine_tune_learning_rate: float = 1e-4,
        layer_lr_ratio: float = 0.5,
        layer_groups: int = 3,
        schedule: str = "cosine",
        warmup: float = 0.1,
        train_batchnorm: bool = False,
        augment: str | None = "flip",
        tta: str | None = None,
        batch_size: int = 32,
        validation_fraction: float | None = 0.1,
        patience: int | None = 2,
        mixed_precision: bool | str = "auto",
        device: str | None = None,
        n_jobs: int | None = None,
        random_state: int | None = 0,
        verbose: int = 1,
    ) -> None:
        self.backbone = backbone
        self.weights = weights
        self.input_size = input_size
        self.resize = resize
        self.preprocess = preprocess
        self.dropout = dropout
        self.head_init = head_init
        self.head_epochs = head_epochs
        self.learning_rate = learning_rate
        self.trainable_layers = trainable_layers
        self.epochs = epochs
        self.fine_tune_learning_rate = fine_tune_learning_rate
        self.layer_lr_ratio = layer_lr_ratio
        self.layer_groups = layer_groups
        self.schedule = schedule
        self.warmup = warmup
        self.train_batchnorm = train_batchnorm
        self.augment = augment
        self.tta = tta
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.mixed_precision = mixed_precision
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any, validation_data: tuple | None = None) -> FineTunedClassifier:
        """Train the new head, then fine-tune the top of the backbone.

        Parameters
        ----------
        X : list of paths, pandas Series/DataFrame of paths, or array of images
        y : array-like of shape (n_samples,)
        validation_data : (X_val, y_val), optional
            Held-out images for early stopping, instead of a split of X.

        Returns
        -------
        self
        """
        sources = as_image_sources(X)
        if sources.kind == "paths":
            validate_data(self, X, skip_check_array=True)
        if y is None:
            raise ValueError("FineTunedClassifier requires y to be passed, but the target y "
                             "is None.")
        y = column_or_1d(y, warn=True)
        check_consistent_length(sources.items, y)
        check_classification_targets(y)
        self.classes_, labels = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"FineTunedClassifier needs at least 2 classes, but y has one "
                             f"class: {self.classes_[0]!r}.")
        if not isinstance(self.backbone, str) and self.preprocess is None:
            raise ValueError("A custom backbone model needs preprocess=<callable or name>.")
        self.backbone_name_ = (get_backbone_spec(self.backbone).name
                               if isinstance(self.backbone, str) else str(self.backbone.name))
        self.input_size_ = model_input_size(self.backbone, self.input_size)
        train, val = self._split(sources, labels, validation_data)
        import tensorflow as tf

        with tf.device(tf_device(self.device)):
            self.model_ = self._build_network()
            self._infer = inference_fn(self.model_)
            tracker = Tracker(self.model_, patience=self.patience,
                              validate=None if val is None else lambda: self._validate(*val),
                              verbose=self.verbose, total_epochs=self._planned_epochs())
            rng = np.random.default_rng(self.random_state)
            with seeded(self.random_state):
                self._fit_head(*train, tracker, rng)
                self._fine_tune(*train, tracker, rng)
            tracker.restore_best()
        self.history_ = tracker.history
        self.best_epoch_ = tracker.best_epoch
        self.n_epochs_ = len(tracker.history["loss"])
        return self

    def _planned_epochs(self) -> int:
        return (1 if self.head_init == "logistic" else self.head_epochs) + self.epochs

    def _split(self, sources: ImageSources, labels: np.ndarray, validation_data: Any
               ) -> tuple[tuple, tuple | None]:
        """(train sources, labels) and (validation sources, labels) or None."""
        if validation_data is not None:
            X_val, y_val = validation_data
            val_labels = np.searchsorted(self.classes_, column_or_1d(y_val))
            if not np.isin(y_val, self.classes_).all():
                raise ValueError("validation_data holds classes that y does not.")
            return (sources, labels), (as_image_sources(X_val), val_labels)
        if self.validation_fraction is None:
            return (sources, labels), None
        splitter = StratifiedShuffleSplit(1, test_size=self.validation_fraction,
                                          random_state=self.random_state)
        fit_rows, val_rows = next(splitter.split(np.zeros(len(labels)), labels))

        def rows(index: np.ndarray) -> ImageSources:
            return ImageSources(sources.kind, [sources.items[i] for i in index])

        return (rows(fit_rows), labels[fit_rows]), (rows(val_rows), labels[val_rows])

    def _dtype(self) -> str:
        gpu = tf_device(self.device).upper().startswith("/GPU")
        use = self.mixed_precision if self.mixed_precision != "auto" else gpu
        return "mixed_bfloat16" if use else "float32"

    def _build_network(self) -> Any:
        """backbone -> pooling -> dropout -> softmax (override to change the head)."""
        return net.build_network(self.backbone, len(self.classes_), weights=self.weights,
                                 input_size=self.input_size_, dropout=self.dropout,
                                 dtype=self._dtype(), random_state=self.random_state)

    def _preprocess_fn(self) -> Callable:
        if callable(self.preprocess):
            return self.preprocess
        return get_backbone_spec(self.preprocess or self.backbone).preprocess_fn()

    def _dataset(self, sources: ImageSources, labels: np.ndarray | None = None, *,
                 flips: Any = None, boxes: Any = None) -> Any:
        """Batches of preprocessed images (and labels) from ``sources``."""
        failures: dict = {}
        return raising(make_dataset(
            sources, size=self.input_size_, resize=self.resize,
            preprocess=self._preprocess_fn(), batch_size=self.batch_size, labels=labels,
            flips=flips, boxes=boxes, n_jobs=self.n_jobs, failures=failures), failures)

    def _training_batches(self, sources: ImageSources, labels: np.ndarray,
                          rng: np.random.Generator) -> Callable[[int], Any]:
        """Epoch -> shuffled, augmented batches."""
        def batches(epoch: int) -> Any:
            order = rng.permutation(len(labels))
            shuffled = ImageSources(sources.kind, [sources.items[i] for i in order])
            flips, boxes = augmentation_draws(len(order), self.augment, rng)
            return self._dataset(shuffled, labels[order], flips=flips, boxes=boxes)
        return batches

    def _validate(self, sources: ImageSources, labels: np.ndarray) -> tuple:
        return predict_batches(self._infer, self._dataset(sources)), labels

    def _fit_head(self, sources: ImageSources, labels: np.ndarray, tracker: Tracker,
                  rng: np.random.Generator) -> None:
        """Phase one: the new head on the frozen backbone.

        ``head_init="logistic"`` fits skmtl's logistic head (its C chosen by inner
        cross-validation) on the pooled features and loads its weights into the softmax
        layer; ``"train"`` trains the softmax layer for ``head_epochs`` epochs.
        """
        import time

        net.set_trainable(self.model_, 0, train_batchnorm=False)
        if self.head_init == "train":
            train_epochs(self.model_, phase="head", epochs=self.head_epochs,
                         groups=[(net.head_layer(self.model_).trainable_weights,
                                  self.learning_rate)],
                         batches=self._training_batches(sources, labels, rng),
                         n_samples=len(labels), batch_size=self.batch_size,
                         schedule=self._multiplier, tracker=tracker)
            return
        from skmtl.heads.logistic import LogisticHeadClassifier

        started = time.perf_counter()
        import keras

        pooled = keras.Model(self.model_.inputs,
                             self.model_.get_layer(net.DROPOUT_NAME).input)
        features = predict_batches(inference_fn(pooled), self._dataset(sources))
        head = LogisticHeadClassifier(random_state=self.random_state).fit(features, labels)
        if len(head.classes_) != len(self.classes_):
            raise ValueError("Every class needs training images outside the validation "
                             "data; some class has none.")
        coef = head.coef_ / head.scale_
        net.set_head_weights(self.model_, coef, head.intercept_ - coef @ head.mean_)
        proba = head.predict_proba(features)
        loss = -np.mean(np.log(np.clip(proba[np.arange(len(labels)), labels], 1e-15, 1)))
        tracker.record("head", loss, np.mean(proba.argmax(1) == labels), 0.0, started)

    def _multiplier(self, step: int, total: int) -> float:
        return lr_multiplier(self.schedule, step, total, self.warmup)

    def _fine_tune(self, sources: ImageSources, labels: np.ndarray, tracker: Tracker,
                   rng: np.random.Generator) -> None:
        """Phase two: unfreeze the top ``trainable_layers`` and train them with the head,
        each layer group at ``layer_lr_ratio`` times the rate of the group above it."""
        if self.epochs == 0:
            return
        unfrozen = net.set_trainable(self.model_, self.trainable_layers,
                                     train_batchnorm=self.train_batchnorm)
        groups = [[net.head_layer(self.model_)], *net.layer_groups(unfrozen, self.layer_groups)]
        rates = [self.fine_tune_learning_rate * self.layer_lr_ratio ** k
                 for k in range(len(groups))]
        self.layer_learning_rates_ = [(len(g), r) for g, r in zip(groups, rates, strict=True)]
        train_epochs(self.model_, phase="fine-tune", epochs=self.epochs,
                     groups=[([v for layer in g for v in layer.trainable_weights], r)
                             for g, r in zip(groups, rates, strict=True)],
                     batches=self._training_batches(sources, labels, rng),
                     n_samples=len(labels), batch_size=self.batch_size,
                     schedule=self._multiplier, tracker=tracker)

    # ------------------------------------------------------------------ predict
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (averaged with the mirrored images when ``tta="flip"``).

        Parameters
        ----------
        X : list of paths, pandas Series/DataFrame of paths, or array of images

        Returns
        -------
        ndarray of shape (n_samples, n_classes), columns in the order of ``classes_``
        """
        check_is_fitted(self, "model_")
        sources = as_image_sources(X)
        import tensorflow as tf

        if self.__dict__.get("_infer") is None:
            self._infer = inference_fn(self.model_)
        views = [False, True] if self.tta == "flip" else [False]
        with tf.device(tf_device(self.device)):
            proba = np.mean([predict_batches(self._infer, self._dataset(
                sources, flips=np.full(len(sources), flip))) for flip in views], axis=0)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    # ------------------------------------------------------------------ persistence
    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())  # a copy: BaseEstimator may return __dict__
        state.pop("_infer", None)
        model = state.pop("model_", None)
        if model is not None:
            state["_model_keras"] = model_to_bytes(model)
        return state

    def __setstate__(self, state: dict) -> None:
        data = state.pop("_model_keras", None)
        super().__setstate__(state)
        if data is not None:
            self.model_ = model_from_bytes(data)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.input_tags.string = True
        tags.non_deterministic = self.random_state is None
        return tags
