"""From a backbone to the Keras model a featurizer runs: layer, pooling, dtype, device.

Plain functions of the featurizer's settings, so that the featurizer, fine-tuning and the
Dask workers build a model the same way. TensorFlow is imported only when they are called.
"""

from __future__ import annotations

from typing import Any

from skmtl._utils.seeding import seeded
from skmtl._utils.sizes import size_pair
from skmtl.backbones import build_backbone, get_backbone_spec

__all__ = ["feature_model", "model_input_size", "pick_layer", "tf_device"]


def model_input_size(backbone: Any, input_size: Any = None) -> tuple[int, int]:
    """(height, width) the images are resized to: ``input_size`` if given, else the
    registry's native size for a name, else a custom model's fixed input shape."""
    if input_size is not None:
        return size_pair(input_size, "input_size")
    if isinstance(backbone, str):
        native = get_backbone_spec(backbone).input_size
        return (native, native)
    height, width = backbone.input_shape[1:3]
    if height is None or width is None:
        raise ValueError("The custom backbone has no fixed input size: set input_size.")
    return (int(height), int(width))


def tf_device(device: str | None) -> str:
    """TensorFlow device name: ``None`` picks the first GPU if any, else the CPU;
    ``"cpu"``/``"gpu"`` are the first of their kind; anything else is passed through."""
    import tensorflow as tf

    if device is None:
        return "/GPU:0" if tf.config.list_physical_devices("GPU") else "/CPU:0"
    if device.lower() in ("cpu", "gpu"):
        return f"/{device.upper()}:0"
    return device


def pick_layer(model: Any, layer: int | str) -> Any:
    """The layer of ``model`` named or indexed by ``layer``, with a clear error."""
    try:
        if isinstance(layer, str):
            return model.get_layer(layer)
        return model.layers[layer]
    except (ValueError, IndexError) as exc:
        raise ValueError(
            f"layer={layer!r} is not a layer of {model.name!r} "
            f"({len(model.layers)} layers; see model.summary() for names)."
        ) from exc


def feature_model(backbone: Any, *, weights: Any = "imagenet", input_size: Any = None,
                  layer: int | str | None = None, pooling: str | None = "avg",
                  dtype: str = "float32", device: str | None = None,
                  random_state: Any = None) -> Any:
    """The Keras model mapping preprocessed images to features.

    ``backbone`` is a registry name (built with ``weights``; random weights are seeded by
    ``random_state``) or a Keras model used as it is. Its output, or that of ``layer``, is
    globally pooled when 4-D and ``pooling`` is ``"avg"`` or ``"max"``. The model is built
    under the ``dtype`` policy on :func:`tf_device` of ``device``.
    """
    import keras
    import tensorflow as tf

    policy = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy(dtype)
        with tf.device(tf_device(device)):
            if isinstance(backbone, str):
                with seeded(random_state if weights is None else None):
                    base = build_backbone(backbone, weights=weights,
                                          input_size=model_input_size(backbone, input_size))
            else:
                base = backbone
            output = base.output if layer is None else pick_layer(base, layer).output
            if len(output.shape) == 4 and pooling is not None:
                pool = {"avg": keras.layers.GlobalAveragePooling2D,
                        "max": keras.layers.GlobalMaxPooling2D}[pooling]
                output = pool(name=f"skmtl_{pooling}_pool")(output)
            return keras.Model(base.inputs, output, name=f"{base.name}_features")
    finally:
        keras.config.set_dtype_policy(policy)
