"""The network a FineTunedClassifier trains: a backbone, global pooling, dropout, softmax.

Freezing follows Keras 3: a layer with ``trainable = False`` gets no gradient updates, and a
frozen ``BatchNormalization`` layer also runs in inference mode (its moving statistics are
used and never updated), whatever ``training`` flag the model is called with.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skmtl._utils.seeding import seeded
from skmtl.backbones.build import feature_model

__all__ = [
    "backbone_layers",
    "build_network",
    "head_layer",
    "layer_groups",
    "set_head_weights",
    "set_trainable",
]

HEAD_NAME = "skmtl_softmax"
DROPOUT_NAME = "skmtl_head_dropout"


def _copy_model(model: Any) -> Any:
    """A copy of a user's Keras model, so that freezing and training leave theirs alone."""
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def build_network(backbone: Any, n_classes: int, *, weights: Any, input_size: Any,
                  dropout: float, dtype: str, random_state: Any) -> Any:
    """backbone -> global average pooling -> dropout -> Dense(n_classes, softmax).

    The softmax layer computes in float32 also under a mixed precision policy.
    """
    import keras

    base = backbone if isinstance(backbone, str) else _copy_model(backbone)
    features = feature_model(base, weights=weights, input_size=input_size, pooling="avg",
                             dtype=dtype, random_state=random_state)
    with seeded(random_state):
        x = keras.layers.Dropout(dropout, name=DROPOUT_NAME)(features.output)
        out = keras.layers.Dense(n_classes, activation="softmax", dtype="float32",
                                 name=HEAD_NAME)(x)
    return keras.Model(features.inputs, out, name=f"{features.name}_finetuned")


def head_layer(model: Any) -> Any:
    """The new softmax layer."""
    return model.get_layer(HEAD_NAME)


def backbone_layers(model: Any) -> list:
    """The backbone's layers that hold weights, from the input up."""
    head = {HEAD_NAME, DROPOUT_NAME}
    return [layer for layer in model.layers if layer.weights and layer.name not in head]


def _count(trainable_layers: Any, n: int) -> int:
    if isinstance(trainable_layers, str):  # "all", checked by the estimator
        return n
    return min(int(trainable_layers), n)


def set_trainable(model: Any, trainable_layers: Any, *, train_batchnorm: bool) -> list:
    """Freeze the backbone but its top ``trainable_layers`` weight-holding layers.

    Batch-norm layers of the unfrozen part stay frozen (inference mode) unless
    ``train_batchnorm``. Returns the unfrozen backbone layers, from the input up.
    """
    import keras

    layers = backbone_layers(model)
    for layer in model.layers:
        layer.trainable = False
    unfrozen = layers[len(layers) - _count(trainable_layers, len(layers)):]
    for layer in unfrozen:
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = train_batchnorm or not is_bn
    head_layer(model).trainable = True
    return [layer for layer in unfrozen if layer.trainable]


def layer_groups(unfrozen: list, n_groups: int) -> list[list]:
    """Split the unfrozen layers (input up) into at most ``n_groups`` contiguous groups,
    returned from the top down (the group next to the head first)."""
    if not unfrozen:
        return []
    chunks = np.array_split(np.arange(len(unfrozen)), min(n_groups, len(unfrozen)))
    return [[unfrozen[i] for i in chunk] for chunk in reversed(chunks)]


def set_head_weights(model: Any, coef: np.ndarray, intercept: np.ndarray) -> None:
    """Load a linear model's (n_classes or 1, n_features) weights into the softmax layer.

    One row (a binary logistic model's log-odds of the second class) becomes the
    equivalent two-class softmax: logits ``[0, z]``.
    """
    coef, intercept = np.atleast_2d(coef), np.ravel(intercept)
    if coef.shape[0] == 1:
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    head_layer(model).set_weights([coef.T.astype(np.float32), intercept.astype(np.float32)])
