"""The logistic regression that the multi-branch head starts from (its linear path).

The head's default linear path is not trained by gradient descent with the branches: a
scikit-learn ``LogisticRegression`` is fitted first on the (standardised, pooled)
features, its coefficients become the weights of a frozen Dense layer, and the branches
learn a correction to its logits. The head therefore starts where the ``"logistic"`` head
ends, and training can only move it where held-out data says it helps.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skmtl.heads._logistic_cv import fit_logistic, multiclass_log_loss

__all__ = ["auto_C", "base_features", "logistic_weights", "model_log_loss",
           "set_logistic_base"]


def logistic_weights(features: np.ndarray, labels: np.ndarray, n_classes: int, C: float,
                     sample_weight: np.ndarray | None = None,
                     start: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Kernel (n_features, n_classes) and bias (n_classes,) of a softmax Dense layer that
    reproduces ``LogisticRegression(C=C)`` fitted on ``features`` and class indices.

    A binary regression becomes logits (0, w.x + b), whose softmax is its sigmoid. Classes
    absent from ``labels`` (a small fold) get zero weights and a bias worth half a row's
    share of the data; a single present class gets a constant prediction.

    ``start``: a dict shared by the regressions of one fit. Each is solved (in the row
    space of its features, like :func:`skmtl.heads._logistic_cv.fit_logistic`) from the previous
    solution over the same classes, projected onto its rows, and leaves its own there: the
    models of the head train on overlapping rows, so their solutions are close and L-BFGS
    needs a fraction of the iterations of a cold start. The optimum is the same.
    """
    kernel = np.zeros((features.shape[1], n_classes), dtype=np.float32)
    bias = np.full(n_classes, np.log(0.5 / (len(labels) + 1)), dtype=np.float32)
    present = np.unique(labels)
    bias[present] = 0.0
    if len(present) < 2:
        return kernel, bias
    coef, intercept = _fit(features, labels, C, sample_weight,
                           {} if start is None else start, tuple(present))
    if len(present) == 2:
        kernel[:, present[1]] = coef[0]
        bias[present[1]] = intercept[0]
    else:
        kernel[:, present] = coef.T
        bias[present] = intercept
    return kernel, bias


def _fit(features: np.ndarray, labels: np.ndarray, C: float, sample_weight: Any,
         start: dict, present: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(coef, intercept) of the regression, warm-started from ``start[present]``."""
    coef, intercept, _ = fit_logistic(features, labels, C, sample_weight=sample_weight,
                                      init=start.get(present))
    start[present] = (coef, intercept.copy())
    return coef, intercept


def model_log_loss(model: Any, validation: tuple) -> float:
    """Log loss of a Keras model on ``(X, y[, sample_weight])`` held out from training."""
    from skmtl.heads._folds import class_indices

    X, y, *weights = validation
    return multiclass_log_loss(model.predict(X, verbose=0), class_indices(y), *weights)


def auto_C(model: Any, X: list, labels: np.ndarray, n_classes: int, sample_weight: Any,
           groups: Any, random_state: Any) -> float:
    """The C of a base fitted on all of ``X``, chosen once for every model of the head by
    the inner cross-validation of the ``"logistic"`` head, on what the base sees."""
    from skmtl.heads.logistic import choose_C

    C, _, _ = choose_C(base_features(model, X), labels, n_classes, sample_weight=sample_weight,
                       groups=groups, random_state=random_state)
    return C


def base_features(model: Any, X: list) -> np.ndarray:
    """What the model's ``"linear"`` layer sees of ``X``: the pooled, standardised inputs."""
    import keras

    return keras.Model(model.inputs, model.get_layer("linear").input).predict(X, verbose=0)


def set_logistic_base(model: Any, X: list, labels: np.ndarray, C: float,
                      sample_weight: np.ndarray | None = None, start: dict | None = None
                      ) -> None:
    """Fit the frozen ``"linear"`` layer of ``model`` as a logistic regression on ``X``.

    The regression sees exactly what the layer sees (the model's own pooled, concatenated
    inputs), so at the start, with a zero correction, the model predicts its probabilities.
    """
    linear = model.get_layer("linear")
    features = base_features(model, X)
    linear.set_weights(logistic_weights(features, labels, linear.units, C, sample_weight,
                                        start))
