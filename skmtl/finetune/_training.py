"""The training loop: one compiled step per phase, per-layer-group optimizers, early
stopping with the best weights kept, and the history.

A hand-written loop rather than ``model.fit``: each layer group gets its own optimizer
(Adam adapts to the gradient's scale, so a per-group rate cannot be had by scaling
gradients), the schedule spans both the warm-up and the decay of a phase, and the best
weights are chosen across both phases.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

__all__ = ["Tracker", "inference_fn", "predict_batches", "train_epochs"]


def _log_loss(proba: np.ndarray, labels: np.ndarray) -> float:
    p = np.clip(proba[np.arange(len(labels)), labels], 1e-15, 1.0)
    return float(-np.mean(np.log(p)))


class Tracker:
    """Epoch records, the best validation loss and its weights, and early stopping.

    ``history`` is a dict of lists like scikeras' ``history_``: ``phase``, ``loss``,
    ``accuracy``, ``learning_rate``, ``seconds`` and, with validation data,
    ``val_loss`` and ``val_accuracy``.
    """

    def __init__(self, model: Any, *, patience: int | None, validate: Callable | None,
                 verbose: int, total_epochs: int) -> None:
        self.model = model
        self.patience = patience
        self.validate = validate
        self.verbose = verbose
        self.total_epochs = total_epochs
        keys = ["phase", "loss", "accuracy", "learning_rate", "seconds"]
        if validate is not None:
            keys += ["val_loss", "val_accuracy"]
        self.history: dict[str, list] = {k: [] for k in keys}
        self.best_loss = math.inf
        self.best_epoch: int | None = None
        self.best_weights: list | None = None
        self.stale = 0

    def new_phase(self) -> None:
        """Give the next phase its own patience."""
        self.stale = 0

    def record(self, phase: str, loss: float, accuracy: float, learning_rate: float,
               started: float) -> bool:
        """Add an epoch; return True when early stopping says stop."""
        row = {"phase": phase, "loss": float(loss), "accuracy": float(accuracy),
               "learning_rate": float(learning_rate)}
        if self.validate is not None:
            proba, labels = self.validate()
            row["val_loss"] = _log_loss(proba, labels)
            row["val_accuracy"] = float(np.mean(proba.argmax(1) == labels))
        row["seconds"] = time.perf_counter() - started
        for key, value in row.items():
            self.history[key].append(value)
        epoch = len(self.history["loss"])
        if self.verbose:
            shown = ", ".join(f"{k} {row[k]:.4f}" for k in
                              ("loss", "accuracy", "val_loss", "val_accuracy") if k in row)
            print(f"epoch {epoch}/{self.total_epochs} ({phase}): {shown}, "
                  f"{row['seconds']:.0f} s", flush=True)
        if self.validate is None:
            return False
        if row["val_loss"] < self.best_loss:
            self.best_loss, self.best_epoch, self.stale = row["val_loss"], epoch, 0
            self.best_weights = self.model.get_weights()
            return False
        self.stale += 1
        return self.patience is not None and self.stale >= self.patience

    def restore_best(self) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
            if self.verbose and self.best_epoch != len(self.history["loss"]):
                print(f"restored the weights of epoch {self.best_epoch} "
                      f"(val_loss {self.best_loss:.4f})", flush=True)


def _compiled_step(model: Any, optimizers: list, var_groups: list[list]) -> Callable:
    import keras
    import tensorflow as tf

    flat = [v for group in var_groups for v in group]
    signature = [tf.TensorSpec((None, *model.input_shape[1:]), tf.float32),
                 tf.TensorSpec((None,), tf.int32)]

    @tf.function(input_signature=signature)  # one trace, the last batch included
    def step(x: Any, y: Any) -> tuple[Any, Any]:
        with tf.GradientTape() as tape:
            proba = model(x, training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, proba))
        grads = tape.gradient(loss, flat)
        start = 0
        for optimizer, group in zip(optimizers, var_groups, strict=True):
            optimizer.apply(grads[start:start + len(group)], group)
            start += len(group)
        hits = tf.cast(tf.equal(tf.argmax(proba, axis=1, output_type=tf.int32), y), tf.float32)
        return loss, tf.reduce_sum(hits)

    return step


def train_epochs(model: Any, *, phase: str, groups: list[tuple[list, float]], epochs: int,
                 batches: Callable[[int], Iterable], n_samples: int, batch_size: int,
                 schedule: Callable[[int, int], float], tracker: Tracker) -> None:
    """Train ``epochs`` epochs; ``groups`` are (variables, base learning rate) pairs, one
    Adam optimizer each; ``batches(epoch)`` yields (images, labels) batches;
    ``schedule(step, total)`` multiplies every base rate. Stops early when ``tracker``
    says so."""
    import keras

    groups = [(variables, rate) for variables, rate in groups if variables]
    optimizers = [keras.optimizers.Adam(rate) for _, rate in groups]
    for optimizer, (variables, _) in zip(optimizers, groups, strict=True):
        optimizer.build(variables)
    step = _compiled_step(model, optimizers, [variables for variables, _ in groups])
    per_epoch = math.ceil(n_samples / batch_size)
    total = per_epoch * epochs
    tracker.new_phase()
    done = 0
    for epoch in range(epochs):
        started = time.perf_counter()
        loss_sum = hits = 0.0
        for x, y in batches(epoch):
            factor = schedule(done, total)
            for optimizer, (_, rate) in zip(optimizers, groups, strict=True):
                optimizer.learning_rate = rate * factor
            loss, correct = step(x, y)
            loss_sum += float(loss) * len(y)
            hits += float(correct)
            done += 1
        top_rate = groups[0][1] * schedule(max(done - 1, 0), total)
        if tracker.record(phase, loss_sum / n_samples, hits / n_samples, top_rate, started):
            break


def inference_fn(model: Any) -> Callable:
    """``model`` called in inference mode, compiled once."""
    import tensorflow as tf

    signature = [tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)]
    return tf.function(lambda x: model(x, training=False), input_signature=signature)


def predict_batches(infer: Callable, batches: Iterable) -> np.ndarray:
    """Outputs of ``infer`` (see :func:`inference_fn`) on every batch, stacked as float64."""
    out = [np.asarray(infer(x)) for x in batches]
    return np.concatenate(out).astype(np.float64)
