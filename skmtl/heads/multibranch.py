"""MultiBranchClassifier: one small Keras branch per backbone, trained jointly (scikeras)."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
from scikeras.wrappers import KerasClassifier
from sklearn.metrics import accuracy_score
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from skmtl._utils.seeding import seeded
from skmtl._utils.sklearn_private import Interval, StrOptions, _fit_context
from skmtl._utils.tags import ClassifierTagsMixin
from skmtl.heads._branches import BranchSplitter, find_branches, resolve_branches, standardizer
from skmtl.heads._folds import (
    class_indices,
    member_data,
    total_weight,
    training_batch_size,
    validation_splits,
)
from skmtl.heads._logistic_base import auto_C, model_log_loss, set_logistic_base
from skmtl.heads._model import average_models, build_head_model, early_stopping, make_optimizer
from skmtl.heads._temperature import apply_temperature, fit_temperature

__all__ = [
    "HEAD_DEFAULTS",
    "MultiBranchClassifier",
    "apply_temperature",
    "find_branches",
    "fit_temperature",
]

#: Defaults of MultiBranchClassifier, chosen by measurement on the shared data sets
#: (docs/measurements.md; the original recipe's Dense(1024)/Dropout(0.5)/10 epochs loses
#: to the logistic head everywhere). See the class docstring for what each one does.
HEAD_DEFAULTS = {
    "units": 128,
    "dropout": 0.5,
    "input_dropout": 0.0,
    "standardize": True,
    "l2": 0.15,
    "learning_rate": 1e-3,
    "epochs": 200,
    "batch_size": "auto",
    "validation_fraction": 0.2,
    "patience": 15,
    "n_models": 5,
    "linear_path": True,
    "linear_C": "auto",
    "calibrate": False,
}

class MultiBranchClassifier(ClassifierTagsMixin, KerasClassifier):
    """Features of several backbones, each through its own branch, trained jointly.

    Each branch is Dense(units, relu) -> BatchNormalization -> Dropout(dropout); the
    branch outputs are concatenated and a softmax layer gives one probability per class
    (two columns for binary problems). Branches that carry a spatial feature map
    (``pooling=None`` featurizers) restore the map and average-pool it first.

    Branches are found from the column names of a pandas X produced by a ``FeatureUnion``
    of :class:`PretrainedFeaturizer` with ``set_output(transform="pandas")``: columns
    sharing the prefix before their last ``"__"`` (``efficientnet_lite0__17``) form one
    branch. A NumPy X without names is one branch.

    Parameters
    ----------
    units : int
        Width of each branch.
    dropout : float
        Dropout rate after each branch.
    input_dropout : float
        Dropout rate on each branch's (standardised) input features.
    standardize : bool
        Standardise each branch's input with the training mean and standard deviation
        (per channel for spatial maps), like a ``StandardScaler`` before a linear head.
    l2 : float
        L2 penalty on every Dense kernel.
    learning_rate : float
        Step size of the optimizer.
    optimizer : {"adam", "adamw", "sgd"}
        Optimizer.
    epochs : int
        Maximum number of epochs.
    batch_size : int or "auto"
        Mini-batch size. ``"auto"``: 32, or for a model training on over 512 rows, the
        size that makes an epoch 16 steps (birds' 2,322 rows a model: 146), so that
        ``epochs`` and ``patience`` mean as much training on many rows as on few, and an
        epoch of many rows costs as few steps.
    validation_fraction : float
        Stratified share of the training data held out for early stopping when ``fit``
        gets no ``validation_data`` (Keras' own ``validation_split`` takes the last rows,
        which for data sorted by class is a single class).
    patience : int or None
        Early-stopping patience in epochs on validation loss; the best weights are
        restored. An epoch counts as better when it lowers the best loss by 0.1%
        (:data:`skmtl.heads._model.MIN_IMPROVEMENT`). None trains for ``epochs`` epochs
        without validation.
    n_models : int
        Models trained and averaged. With early stopping and no ``validation_data``, the
        training data is split into ``n_models`` stratified folds and each model
        early-stops on its own fold (``validation_fraction`` then does not apply), so
        together they learn from every row; otherwise the models differ by their seed.
    linear_path : bool
        Also feed each branch's (standardised, pooled) input straight to the softmax: a
        logistic regression on the concatenated features plus the branches' correction.
    linear_C : "auto", float or None
        With ``linear_path``: the linear path is ``LogisticRegression(C=linear_C)``,
        fitted first on each model's training rows and then frozen. ``"auto"`` chooses C
        on all training rows by the inner cross-validation of
        :class:`LogisticHeadClassifier` (the ``"logistic"`` head), so the head starts
        where that head ends, whatever the number of classes and rows. A model that trains on a
        share of the rows scales C by (all rows / its rows), so that its regression has
        the penalty per row of one fitted on all of them. The branches' output
        layer starts at zero, so each model starts as that logistic regression; early
        stopping keeps the correction's best epoch, and a correction that does not lower
        the held-out log loss is dropped. None trains the linear path jointly with the
        branches, under ``l2``.
    calibrate : bool
        Temperature scaling: one temperature, fitted on the held-out predictions of the
        early-stopping folds (or split, or ``validation_data``), divides the
        log-probabilities at prediction. Predicted classes do not change; probabilities
        become better calibrated (log loss).
    class_weight : None, "balanced" or dict
        Class weights.
    branches : None, list of int or dict
        None: from column names. A list of sizes splits the columns in order; a dict maps a
        branch name to its column names.
    random_state : int or None
        Seed of weights, shuffling and the validation split (deterministic on CPU).
    verbose : int
        Keras' verbosity.
    **kwargs
        Further scikeras ``KerasClassifier`` parameters.

    Attributes
    ----------
    branches_ : list of (str, ndarray, tuple or None)
        Name, column indices and spatial shape of each branch.
    standardizers_ : list of (ndarray, ndarray) or None
        Offset and scale of each branch's columns (with ``standardize``).
    history_ : dict of list
        Training history of the first model, as scikeras gives it: ``loss``,
        ``val_loss``... each a list with one value per epoch.
    histories_ : list of dict
        The history of each model (``history_`` is the first).
    linear_C_ : float or None
        The C of the logistic base on all rows (chosen with ``linear_C="auto"``).
    best_epoch_ : list of int
        Epoch (1-based) whose weights were kept, for each model; 0 where the logistic
        base alone (``linear_C``) had the lower held-out log loss.
    temperature_ : float
        Temperature applied to the probabilities (1.0 without ``calibrate``).
    classes_ : ndarray
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names of a pandas X, when it had string column names.

    Notes
    -----
    ``partial_fit`` is not offered: training sets up branches, the validation split and
    early stopping, which a one-epoch update would bypass. ``sample_weight`` weights each
    row's loss; as with any mini-batch training it is not the same as repeating rows.
    """

    _parameter_constraints: dict = {
        "units": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "input_dropout": [Interval(Real, 0, 1, closed="left")],
        "standardize": ["boolean"],
        "l2": [Interval(Real, 0, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [StrOptions({"adam", "adamw", "sgd", "rmsprop"}), callable],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "patience": [Interval(Integral, 1, None, closed="left"), None],
        "n_models": [Interval(Integral, 1, None, closed="left")],
        "linear_path": ["boolean"],
        "linear_C": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither"), None],
        "calibrate": ["boolean"],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "branches": [list, tuple, dict, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        units: int = HEAD_DEFAULTS["units"],
        dropout: float = HEAD_DEFAULTS["dropout"],
        input_dropout: float = HEAD_DEFAULTS["input_dropout"],
        standardize: bool = HEAD_DEFAULTS["standardize"],
        l2: float = HEAD_DEFAULTS["l2"],
        learning_rate: float = HEAD_DEFAULTS["learning_rate"],
        optimizer: Any = "adam",
        epochs: int = HEAD_DEFAULTS["epochs"],
        batch_size: Any = HEAD_DEFAULTS["batch_size"],
        validation_fraction: float = HEAD_DEFAULTS["validation_fraction"],
        patience: int | None = HEAD_DEFAULTS["patience"],
        n_models: int = HEAD_DEFAULTS["n_models"],
        linear_path: bool = HEAD_DEFAULTS["linear_path"],
        linear_C: Any = HEAD_DEFAULTS["linear_C"],
        calibrate: bool = HEAD_DEFAULTS["calibrate"],
        class_weight: Any = None,
        branches: Any = None,
        random_state: int | None = 0,
        verbose: int = 0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("loss", "sparse_categorical_crossentropy")
        super().__init__(optimizer=optimizer, epochs=epochs, batch_size=batch_size,
                         class_weight=class_weight, random_state=random_state,
                         verbose=verbose, **kwargs)
        self.units = units
        self.dropout = dropout
        self.input_dropout = input_dropout
        self.standardize = standardize
        self.l2 = l2
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.n_models = n_models
        self.linear_path = linear_path
        self.linear_C = linear_C
        self.calibrate = calibrate
        self.branches = branches

    # ------------------------------------------------------------------ data
    def _as_array(self, X: Any) -> np.ndarray:
        """X as float32 (dense, finite, 2D), checked against the columns seen in fit."""
        return validate_data(self, X, reset=False, dtype=np.float32, accept_sparse=False)

    def _initialize(self, X: Any, y: Any = None) -> tuple:
        X, y = super()._initialize(X, y)
        self._random_state = None  # seeded by skmtl._utils.seeding instead of scikeras
        return X, y

    @property
    def feature_encoder(self) -> BranchSplitter:
        return BranchSplitter([cols for _, cols, _ in self.branches_], self.standardizers_)

    # ------------------------------------------------------------------ model
    @property
    def _logistic_base(self) -> bool:
        """Whether the linear path is a frozen logistic regression (see ``linear_C``)."""
        return self.linear_path and self.linear_C is not None

    def _keras_build_fn(self, meta: dict, member: int = 0) -> Any:
        model = build_head_model(
            self.branches_, meta["n_classes_"], units=self.units, dropout=self.dropout,
            input_dropout=self.input_dropout, l2=self.l2, linear_path=self.linear_path,
            logistic_base=self._logistic_base, name=f"head{member}")
        return self._compiled(model)

    def _compiled(self, model: Any) -> Any:
        model.compile(optimizer=make_optimizer(self.optimizer, self.learning_rate),
                      loss=self.loss, metrics=["accuracy"])
        return model

    # ------------------------------------------------------------------ fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any, sample_weight: Any = None,
            validation_data: tuple | None = None, groups: Any = None,
            **kwargs: Any) -> MultiBranchClassifier:
        """Fit the head, with early stopping on ``validation_data`` or a stratified split.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like, optional
        validation_data : (X_val, y_val), optional
            Held-out data for early stopping (e.g. the held-out fold in K-fold training).
        groups : array-like of shape (n_samples,), optional
            Rows of one group (an image and its mirror) are never split between training
            and early stopping (:class:`FlipTTAClassifier` passes them).

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y, reset=True, dtype=np.float32, accept_sparse=False)
        check_classification_targets(y)
        if len(np.unique(y)) < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 classes, but y has "
                             f"one class: {np.unique(y)[0]!r}.")
        self.branches_ = resolve_branches(self.branches,
                                         getattr(self, "feature_names_in_", None),
                                         X.shape[1])
        self.standardizers_ = [standardizer(X[:, cols], shape)
                               for _, cols, shape in self.branches_] if self.standardize else None
        self._validation, self._groups = None, None
        if groups is not None:
            self._groups = np.asarray(groups)
            if self._groups.shape != (len(y),):
                raise ValueError(f"groups has shape {self._groups.shape}; expected "
                                 f"({len(y)},), one group per row of X.")
        if validation_data is not None:
            self._validation = (self._as_array(validation_data[0]),
                                np.asarray(validation_data[1]))
        try:
            with seeded(self.random_state):
                super().fit(X, y, sample_weight=sample_weight, **kwargs)
        finally:
            self._validation = self._groups = None
        return self

    def _fit_keras_model(self, X, y, sample_weight, warm_start, epochs, initial_epoch,
                         **kwargs) -> None:
        members, held_out, self.histories_, self.best_epoch_ = [], [], [], []
        total = total_weight(y, sample_weight)
        self.linear_C_ = self._choose_linear_C(X, y, sample_weight)
        self._base_weights: dict = {}  # members that share their rows share the base
        self._base_start: dict = {}  # each base starts from the previous one's solution
        try:
            for k, (train, validation) in enumerate(self._member_data(X, y, sample_weight)):
                model = self.model_ if k == 0 else self._keras_build_fn(self._get_metadata(),
                                                                        member=k)
                history, best = self._fit_member(model, *train, validation, epochs, total)
                members.append(model)
                self.histories_.append(history)
                self.best_epoch_.append(best)
                if validation is not None and self.calibrate:
                    held_out.append((model.predict(validation[0], verbose=0),
                                     class_indices(validation[1])))
        finally:
            del self._base_weights, self._base_start
        if len(members) > 1:
            self.model_ = self._compiled(average_models(members))
            self.model_.optimizer.build(self.model_.trainable_variables)  # reloads alike
        self.history_ = self.histories_[0]
        self.temperature_ = fit_temperature(held_out) if held_out else 1.0

    def _choose_linear_C(self, X: list, y: np.ndarray, sample_weight: Any) -> float | None:
        """The logistic base's C on all rows: given, or chosen by inner CV ("auto")."""
        if not self._logistic_base:
            return None
        if self.linear_C != "auto":
            return float(self.linear_C)
        return auto_C(self.model_, X, class_indices(y), self._get_metadata()["n_classes_"],
                      sample_weight, getattr(self, "_groups", None), self.random_state)

    def _member_data(self, X: list, y: np.ndarray, sample_weight: Any) -> list[tuple]:
        """((X, y, sample_weight) to train on, validation or None) for each member."""
        validation = None
        if self._validation is not None:
            Xv, yv = self._validation
            validation = (self.feature_encoder_.transform(Xv), self.target_encoder_.transform(yv))
        splits = None if validation is not None else self._validation_splits(y)
        return member_data(X, y, sample_weight, validation, splits, self.n_models)

    def _validation_splits(self, y: np.ndarray) -> list | None:
        """(training rows, validation rows) of each member; None without early stopping."""
        return validation_splits(class_indices(y), n_models=self.n_models,
                                 validation_fraction=self.validation_fraction,
                                 patience=self.patience, random_state=self.random_state,
                                 groups=getattr(self, "_groups", None))

    def _fit_member(self, model: Any, X: list, y: np.ndarray, sample_weight: Any,
                    validation: tuple | None, epochs: int, total: float) -> tuple[dict, int]:
        if self._logistic_base:
            # LogisticRegression's penalty does not grow with the rows: scale C so that a
            # model fitted on 4/5 of them is regularised like one fitted on all of them.
            C = self.linear_C_ * total / total_weight(y, sample_weight)
            linear, key = model.get_layer("linear"), (id(y), C)
            if key in self._base_weights:
                linear.set_weights(self._base_weights[key])
            else:
                set_logistic_base(model, X, class_indices(y), C, sample_weight,
                                  start=self._base_start)
                self._base_weights[key] = linear.get_weights()
            start = model.get_weights()
        callbacks = []
        if validation is not None and self.patience is not None:
            callbacks.append(early_stopping(self.patience))
        hist = model.fit(
            X, y, sample_weight=sample_weight, validation_data=validation, epochs=epochs,
            batch_size=training_batch_size(self.batch_size, len(y)), verbose=self.verbose,
            callbacks=callbacks,
            shuffle=True,
        )
        history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
        best = callbacks[0].best_epoch + 1 if callbacks else len(history["loss"])
        if self._logistic_base and validation is not None:
            trained = model.get_weights()
            corrected = model_log_loss(model, validation)
            model.set_weights(start)
            if model_log_loss(model, validation) <= corrected:
                return history, 0  # the correction did not help: the logistic base alone
            model.set_weights(trained)
        return history, best

    def predict_proba(self, X: Any, **kwargs: Any) -> np.ndarray:
        """Class probabilities, one column per class in ``classes_``."""
        check_is_fitted(self, "branches_")
        X = self._as_array(X)
        if self.batch_size == "auto":
            kwargs.setdefault("batch_size", 256)  # any size predicts alike
        # scikeras squeezes a single row to 1D; keep (n_samples, n_classes) always. The
        # float32 softmax sums to 1 only to ~1e-7 (log_loss warns): renormalise in float64.
        proba = np.asarray(super().predict_proba(X, **kwargs), np.float64).reshape(len(X), -1)
        proba /= proba.sum(axis=1, keepdims=True)
        return apply_temperature(proba, self.temperature_)

    def predict(self, X: Any, **kwargs: Any) -> np.ndarray:
        """Most probable class."""
        proba = self.predict_proba(X, **kwargs)  # checks that the model is fitted
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy of ``predict(X)``, like every scikit-learn classifier."""
        return float(accuracy_score(y, self.predict(X), sample_weight=sample_weight))

    @available_if(lambda self: False)
    def partial_fit(self, X: Any, y: Any, **kwargs: Any) -> MultiBranchClassifier:
        """Not offered (see Notes): use ``fit``."""
        raise NotImplementedError

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        tags.classifier_tags.poor_score = True
        return tags
