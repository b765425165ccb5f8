"""PretrainedFeaturizer: one pretrained backbone as a scikit-learn transformer."""

from __future__ import annotations

import os
from collections.abc import Callable
from numbers import Integral
from typing import Any

import joblib
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from skmtl._utils.sklearn_private import HasMethods, Interval, StrOptions, _fit_context
from skmtl.backbones import get_backbone_spec
from skmtl.backbones.build import feature_model, model_input_size, tf_device
from skmtl.features._callable_key import preprocess_cache_name
from skmtl.features.sources import ImageSources, as_image_sources
from skmtl.features.store import (
    FeatureCache,
    digest_architecture,
    digest_file,
    digest_weights,
    resolve_cache_location,
)
from skmtl.features.streaming import extract_features, report_failures
from skmtl.io.images import RESIZE_MODES, prepare_image

__all__ = ["PretrainedFeaturizer"]

#: Bump when decoding, resizing or preprocessing changes features: old cache entries
#: then live in another folder and are never served.
PREPROCESSING_VERSION = 2  # 2: large images decoded small (JPEG draft, box reduction)

_DTYPES = {"float32", "float16", "bfloat16", "mixed_float16", "mixed_bfloat16"}


class PretrainedFeaturizer(TransformerMixin, BaseEstimator):
    """Features of an ImageNet-pretrained CNN as a scikit-learn transformer.

    Images (file paths or arrays) are decoded and resized in background threads while the
    backbone runs on the previous batch; memory is bounded by the batch size, not by the
    number of images. With ``cache`` set, each image's features are stored under a hash of
    its content and of every setting below, so ``cross_val_predict``, ``GridSearchCV`` and
    repeated runs compute each image once.

    Parameters
    ----------
    backbone : str or keras.Model, default="efficientnet_lite0"
        A name from :func:`skmtl.list_backbones`, or your own Keras model (then give
        ``preprocess``, and ``input_size`` if the model's input size is not fixed).
    weights : "imagenet", None or path, default="imagenet"
        ImageNet weights, random initialisation (seeded by ``random_state``), or a local
        weights file. EfficientNet-Lite ImageNet weights work offline.
    input_size : int or (int, int), default=None
        Resize images to this size instead of the backbone's native one.
    resize : {"squash", "center_crop", "pad"}, default="squash"
        How images reach ``input_size``: stretched ignoring aspect ratio (like Keras'
        loaders), shorter side fitted then centre-cropped, or longer side fitted then
        padded with black.
    pooling : {"avg", "max"} or None, default="avg"
        Global pooling of the feature map. None keeps the map, flattened in ``transform``
        output, its shape in ``feature_shape_``.
    layer : str or int, default=None
        Take activations of an earlier layer (name or index in ``model.layers``) instead
        of the last one, pooled as above.
    flip : bool, default=False
        Featurise horizontally mirrored images (flip augmentation and flip TTA).
    preprocess : callable or str, default=None
        Preprocessing of float32 RGB batches on the 0-255 scale. None uses the backbone's
        own; a str uses that registry backbone's. Required for a custom model.
    batch_size : int, default=32
        Images per forward pass.
    device : str, default=None
        ``"cpu"``, ``"gpu"`` or a TensorFlow device string; None uses the first GPU when
        there is one.
    dtype : str, default="float32"
        Compute dtype: ``"mixed_float16"``/``"mixed_bfloat16"`` speed up GPUs. Features are
        returned as float32 in any case.
    jit_compile : bool or "auto", default="auto"
        XLA-compile the forward pass: "auto" is Keras' choice (on with a GPU, off on a
        CPU-only machine). Not part of the cache key, like ``device``: it changes features
        only by floating-point rounding.
    cache : None, path or joblib.Memory, default=None
        Where per-image features are stored, in a folder keyed by every setting above: a
        weights file by its content, a custom model by its architecture and weights, a
        callable ``preprocess`` by what it computes (its code, defaults, closure and the
        globals it uses, recursively; library functions by name and version). A callable
        that references a value which cannot be digested (a random generator, a model,
        an open file...) raises ValueError rather than risk serving another function's
        features: pass ``cache=None`` or make it a plain function.
    cache_verify : bool, default=False
        Find each file's cache entry by reading and hashing its bytes. By default a key
        computed once is remembered for the file's path, inode, size, mtime and ctime
        (in the cache folder), so a cached rerun does not read the images again; a file
        rewritten in place, even with its size and mtime restored, gets a new ctime and is
        read again. Set this when files may change in ways that keep all five (another
        machine writing through a network file system with coarse timestamps).
    n_jobs : int, default=None
        Threads that read and decode images (None: one per CPU core, at most 8).
    verbose : bool, default=False
        Show a progress bar while computing features.
    on_error : {"raise", "warn"}, default="raise"
        What a missing or undecodable image does. "raise" stops with an error naming the
        file and its position; with a cache, all other images are computed and stored
        first, so the rerun after fixing the file computes only what is left. "warn" fills
        that row with NaN and lists the bad files in a warning and in ``failed_images_``.
    random_state : int, default=0
        Seed of the random initialisation when ``weights=None``, so that clones featurise
        identically (and can share a cache). None leaves it unseeded.

    Attributes
    ----------
    input_size_ : tuple of int
        (height, width) the images are resized to.
    feature_shape_ : tuple of int
        Shape of one image's features before flattening.
    n_features_out_ : int
        Number of output columns.
    failed_images_ : list of (int, str, str)
        Position, image and error of each image the last ``transform`` could not read
        (with ``on_error="warn"``).

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> model = make_pipeline(
    ...     PretrainedFeaturizer("efficientnet_lite0", cache="features/"),
    ...     LogisticRegression(max_iter=1000),
    ... )  # doctest: +SKIP
    >>> model.fit(train_paths, train_labels).predict_proba(test_paths)  # doctest: +SKIP
    """

    _parameter_constraints: dict = {
        "backbone": [str, HasMethods(["predict", "get_layer"])],
        "weights": [str, os.PathLike, None],
        "input_size": [Interval(Integral, 8, None, closed="left"), tuple, None],
        "resize": [StrOptions(set(RESIZE_MODES))],
        "pooling": [StrOptions({"avg", "max"}), None],
        "layer": [str, Integral, None],
        "flip": ["boolean"],
        "preprocess": [callable, str, None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, None],
        "dtype": [StrOptions(_DTYPES)],
        "jit_compile": ["boolean", StrOptions({"auto"})],
        "cache": [str, os.PathLike, joblib.Memory, None],
        "cache_verify": ["boolean"],
        "n_jobs": [Interval(Integral, 1, None, closed="left"), None],
        "verbose": ["verbose"],
        "on_error": [StrOptions({"raise", "warn"})],
        "random_state": [Interval(Integral, 0, None, closed="left"), None],
    }

    def __init__(
        self,
        backbone: Any = "efficientnet_lite0",
        *,
        weights: str | os.PathLike | None = "imagenet",
        input_size: int | tuple[int, int] | None = None,
        resize: str = "squash",
        pooling: str | None = "avg",
        layer: str | int | None = None,
        flip: bool = False,
        preprocess: Callable | str | None = None,
        batch_size: int = 32,
        device: str | None = None,
        dtype: str = "float32",
        jit_compile: bool | str = "auto",
        cache: Any = None,
        cache_verify: bool = False,
        n_jobs: int | None = None,
        verbose: bool = False,
        on_error: str = "raise",
        random_state: int | None = 0,
    ) -> None:
        self.backbone = backbone
        self.weights = weights
        self.input_size = input_size
        self.resize = resize
        self.pooling = pooling
        self.layer = layer
        self.flip = flip
        self.preprocess = preprocess
        self.batch_size = batch_size
        self.device = device
        self.dtype = dtype
        self.jit_compile = jit_compile
        self.cache = cache
        self.cache_verify = cache_verify
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.on_error = on_error
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None) -> PretrainedFeaturizer:
        """Check X and record the output layout; no learning happens.

        Parameters
        ----------
        X : list of paths, pandas Series/DataFrame of paths, or array of images
            See the class docstring.
        y : ignored

        Returns
        -------
        self
        """
        sources = as_image_sources(X)
        if sources.kind == "paths":
            validate_data(self, X, skip_check_array=True)
        self._discard_model()
        named = isinstance(self.backbone, str)
        if named:
            spec = get_backbone_spec(self.backbone)
            self.backbone_name_ = spec.name
        else:
            if self.preprocess is None:
                raise ValueError("A custom backbone model needs preprocess=<callable or name>.")
            self.backbone_name_ = str(self.backbone.name)
        self.input_size_ = self._input_size()
        if not named:
            fixed = tuple(self.backbone.input_shape[1:3])
            if None not in fixed and fixed != self.input_size_:
                raise ValueError(
                    f"input_size={self.input_size!r} does not fit the custom backbone "
                    f"{self.backbone_name_!r}, whose input is fixed at {fixed}."
                )
        if named and self.layer is None and self.pooling is not None:
            self.feature_shape_ = (spec.feature_size,)  # known from the table: no model build
        else:
            self.feature_shape_ = tuple(int(d) for d in self._get_model().output_shape[1:])
        self.n_features_out_ = int(np.prod(self.feature_shape_))
        self.failed_images_ = []
        return self

    def _input_size(self) -> tuple[int, int]:
        return model_input_size(self.backbone, self.input_size)

    # ------------------------------------------------------------------ model
    def _get_model(self) -> Any:
        model = self.__dict__.get("_model")
        if model is None:
            model = self._model = self._build_model()
        return model

    def _build_model(self) -> Any:
        model = feature_model(self.backbone, weights=self.weights, input_size=self.input_size,
                              layer=self.layer, pooling=self.pooling, dtype=self.dtype,
                              device=self.device, random_state=self.random_state)
        if self.jit_compile != "auto":
            model.jit_compile = bool(self.jit_compile)  # read by predict_on_batch
        return model

    def _preprocess_fn(self) -> Callable:
        if callable(self.preprocess):
            return self.preprocess
        return get_backbone_spec(self.preprocess or self.backbone).preprocess_fn()

    def _run_model(self, batch: np.ndarray) -> np.ndarray:
        """One forward pass on a preprocessed batch (padded to ``batch_size``)."""
        import tensorflow as tf

        n = len(batch)
        if n < self.batch_size:  # a fixed shape avoids retracing for the last batch
            pad = np.zeros((self.batch_size - n, *batch.shape[1:]), batch.dtype)
            batch = np.concatenate([batch, pad])
        with tf.device(tf_device(self.device)):
            out = self._get_model().predict_on_batch(batch)
        return np.asarray(out, dtype=np.float32)[:n].reshape(n, -1)

    def _discard_model(self) -> None:
        self.__dict__.pop("_model", None)

    def __getstate__(self) -> dict:
        # A copy: BaseEstimator may return the object's own __dict__, and popping from it
        # would take the built model away from the featurizer being pickled.
        state = dict(super().__getstate__())
        state.pop("_model", None)  # rebuilt lazily after unpickling
        return state

    # ------------------------------------------------------------------ cache
    def _cache_settings(self) -> dict:
        pre = self.preprocess
        if callable(pre):
            pre = preprocess_cache_name(pre)
        # A custom model is keyed by what it computes (_weights_identity), not by its name:
        # Keras names models automatically (functional_3) by what the process built before.
        return {
            "preprocessing_version": PREPROCESSING_VERSION,
            "backbone": self.backbone_name_ if isinstance(self.backbone, str)
            else "custom model",
            "weights": self._weights_identity(),
            "input_size": list(self.input_size_),
            "resize": self.resize,
            "pooling": self.pooling,
            "layer": self.layer,
            "flip": bool(self.flip),
            "dtype": self.dtype,
            "preprocess": pre,
        }

    def _weights_identity(self) -> str:
        if not isinstance(self.backbone, str):
            return (f"model:{digest_architecture(self.backbone)}:"
                    f"{digest_weights(self.backbone)}")
        if self.weights is None:
            if self.random_state is None:
                return "random:" + digest_weights(self._get_model())
            return f"random:{self.random_state}"
        if isinstance(self.weights, str) and self.weights == "imagenet":
            return "imagenet"
        return "file:" + digest_file(os.fspath(self.weights))

    def _feature_cache(self) -> FeatureCache | None:
        location = resolve_cache_location(self.cache)
        if location is None:
            return None
        return FeatureCache(location, self._cache_settings(), self.feature_shape_,
                            verify=self.cache_verify)

    # ------------------------------------------------------------------ transform
    def transform(self, X: Any) -> np.ndarray:
        """Features of each image, computing only those not in the cache.

        Parameters
        ----------
        X : list of paths, pandas Series/DataFrame of paths, or array of images

        Returns
        -------
        ndarray of shape (n_images, ``n_features_out_``), float32
        """
        check_is_fitted(self, "feature_shape_")
        sources = as_image_sources(X)
        out, failures = extract_features(
            sources,
            load=lambda i: self._load_one(sources, i),
            make_preprocess=self._preprocess_fn,
            run_model=self._run_model,
            feature_shape=self.feature_shape_,
            batch_size=self.batch_size,
            cache=self._feature_cache(),
            n_jobs=self.n_jobs,
            stop_at_first_error=self.on_error == "raise",
            progress={"unit": "img", "desc": f"{self.backbone_name_} features"}
            if self.verbose else None,
        )
        self.failed_images_ = report_failures(sources, failures,
                                              raise_errors=self.on_error == "raise")
        return out

    def _load_one(self, sources: ImageSources, i: int) -> np.ndarray:
        # prepare_image decodes a large file small and within the process's pixel budget.
        return prepare_image(sources.items[i], self.input_size_, self.resize,
                             flip=self.flip, index=i)

    # ------------------------------------------------------------------ metadata
    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Output names: ``"<backbone>__<k>"``, or ``"<backbone>__h<i>w<j>c<k>"`` for maps.

        The backbone prefix lets a multi-branch head find each backbone's columns in a
        ``FeatureUnion``.
        """
        check_is_fitted(self, "feature_shape_")
        prefix = self.backbone_name_
        if len(self.feature_shape_) == 3:
            h, w, c = self.feature_shape_
            names = [f"{prefix}__h{i}w{j}c{k}" for i in range(h) for j in range(w)
                     for k in range(c)]
        else:
            names = [f"{prefix}__{k}" for k in range(self.n_features_out_)]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.requires_fit = True
        return tags
