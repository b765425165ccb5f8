"""The Keras graphs of MultiBranchClassifier: one model, and the average of several.

Plain functions of the head's settings, so that the estimator in
:mod:`skmtl.heads.multibranch` only validates, orchestrates training and predicts.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MIN_IMPROVEMENT", "average_models", "build_head_model", "early_stopping",
           "make_optimizer"]

#: The share by which the held-out loss must fall for early stopping to count an epoch as
#: better. Far below the noise of a validation fold's mean log loss (a few percent for
#: hundreds of rows), it only stops a loss that creeps down in its fourth digit: on birds
#: (2,903 rows, 100 classes) models ran all 200 epochs for a 0.4% fall (0.3566 -> 0.3553).
MIN_IMPROVEMENT = 1e-3


def build_head_model(branches: list, n_classes: int, *, units: int, dropout: float,
                     input_dropout: float, l2: float, linear_path: bool,
                     logistic_base: bool, name: str) -> Any:
    """An uncompiled ``keras.Model`` taking one input per branch, giving probabilities.

    Each branch: [Reshape + GlobalAveragePooling2D for a spatial map] -> [Dropout] ->
    Dense(units, relu) -> BatchNormalization -> Dropout. With ``linear_path`` the pooled
    inputs also reach the output: trained with everything else into one softmax Dense
    layer, or, with ``logistic_base``, as a frozen Dense layer named ``"linear"`` (the
    logistic regression, set before training) whose logits are added to those of a
    zero-initialised ``"correction"`` layer on the branch outputs.
    """
    import keras
    from keras import layers, regularizers

    penalty = regularizers.l2(l2) if l2 else None
    inputs, outputs, linear = [], [], []
    for k, (branch, cols, shape) in enumerate(branches):
        tag = re.sub(r"[^A-Za-z0-9_]", "_", f"b{k}_{branch}")[:40]
        x = inp = keras.Input((len(cols),), name=f"{tag}_in")
        if shape is not None:
            x = layers.Reshape(shape, name=f"{tag}_map")(x)
            x = layers.GlobalAveragePooling2D(name=f"{tag}_pool")(x)
        if linear_path:
            linear.append(x)
        if input_dropout:
            x = layers.Dropout(input_dropout, name=f"{tag}_input_dropout")(x)
        x = layers.Dense(units, activation="relu", kernel_regularizer=penalty,
                         name=f"{tag}_dense")(x)
        x = layers.BatchNormalization(name=f"{tag}_bn")(x)
        x = layers.Dropout(dropout, name=f"{tag}_dropout")(x)
        inputs.append(inp)
        outputs.append(x)

    def joined(tensors: list, layer_name: str) -> Any:
        return tensors[0] if len(tensors) == 1 else layers.Concatenate(name=layer_name)(tensors)

    if linear_path and logistic_base:
        base = layers.Dense(n_classes, trainable=False, name="linear")(
            joined(linear, "linear_in"))
        correction = layers.Dense(n_classes, kernel_initializer="zeros",
                                  kernel_regularizer=penalty, name="correction")(
            joined(outputs, "concat"))
        logits = layers.Add(name="logits")([base, correction])
        out = layers.Activation("softmax", name="softmax")(logits)
    else:
        out = layers.Dense(n_classes, activation="softmax", kernel_regularizer=penalty,
                           name="softmax")(joined(outputs + linear, "concat"))
    return keras.Model(inputs, out, name=name)


def average_models(members: list) -> Any:
    """One uncompiled ``keras.Model`` whose output is the mean of the members' outputs."""
    import keras

    inputs = [keras.Input(t.shape[1:], name=t.name.split(":")[0]) for t in members[0].inputs]
    out = keras.layers.Average(name="mean_proba")([m(inputs) for m in members])
    return keras.Model(inputs, out, name="multi_branch_head")


def make_optimizer(optimizer: Any, learning_rate: float) -> Any:
    """A Keras optimizer from a name (adam, adamw, sgd, rmsprop) or an optimizer class."""
    import keras

    if not isinstance(optimizer, str):
        return optimizer(learning_rate=learning_rate)
    classes = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
               "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}
    return classes[optimizer](learning_rate=learning_rate)


def early_stopping(patience: int, min_improvement: float = MIN_IMPROVEMENT) -> Any:
    """``keras.callbacks.EarlyStopping`` on ``val_loss`` (best weights restored) that
    counts an epoch as better only when it lowers the best loss by ``min_improvement``
    of it: a relative ``min_delta``, whatever the scale of the loss."""
    import keras

    class RelativeEarlyStopping(keras.callbacks.EarlyStopping):
        def _is_improvement(self, monitor_value: Any, reference_value: Any) -> bool:
            if reference_value is None:
                return True
            return monitor_value < reference_value * (1 - min_improvement)

    return RelativeEarlyStopping(monitor="val_loss", patience=patience,
                                 restore_best_weights=True)
