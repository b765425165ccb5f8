"""A Keras model as bytes in the native ``.keras`` format, for pickling an estimator."""

from __future__ import annotations

import os
import tempfile
from typing import Any

__all__ = ["model_from_bytes", "model_to_bytes"]


def model_to_bytes(model: Any) -> bytes:
    """The ``.keras`` file of ``model`` (architecture, weights, trainable flags)."""
    with tempfile.TemporaryDirectory(prefix="skmtl-") as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        with open(path, "rb") as f:
            return f.read()


def model_from_bytes(data: bytes) -> Any:
    """The model saved by :func:`model_to_bytes` (not compiled: skmtl trains its own way)."""
    import keras

    with tempfile.TemporaryDirectory(prefix="skmtl-") as folder:
        path = os.path.join(folder, "model.keras")
        with open(path, "wb") as f:
            f.write(data)
        return keras.saving.load_model(path, compile=False)
