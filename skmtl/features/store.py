"""Per-image feature cache.

Features are stored one file per image, keyed by a hash of the image's *content* (file
bytes or array bytes) inside a folder keyed by every setting that changes features. So
``cross_val_predict`` and ``GridSearchCV``, which pass different subsets and orders of X,
are served from the same entries, and changing any setting can never return stale
features: it addresses another folder.

Layout::

    <location>/skmtl-features/<settings hash>/settings.json
    <location>/skmtl-features/<settings hash>/<key[:2]>/<key>.npy

Writes go to a temporary file in the same folder and are renamed into place, which is
atomic on POSIX and Windows: two processes sharing one cache (``GridSearchCV(n_jobs=2)``)
at worst both compute an image, and a reader never sees half a file. An entry that cannot
be read back, or has the wrong shape, is reported with a warning and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from skmtl._utils.files import atomic_write

__all__ = [
    "FeatureCache",
    "digest_architecture",
    "digest_array",
    "digest_bytes",
    "digest_file",
    "digest_weights",
    "resolve_cache_location",
]

_DIGEST_SIZE = 20


def digest_bytes(data: bytes) -> str:
    """Content key of an encoded image file."""
    return hashlib.blake2b(data, digest_size=_DIGEST_SIZE).hexdigest()


def digest_array(image: np.ndarray) -> str:
    """Content key of an in-memory image: its dtype, shape and bytes."""
    image = np.ascontiguousarray(image)
    h = hashlib.blake2b(digest_size=_DIGEST_SIZE)
    h.update(f"{image.dtype.str}{image.shape}".encode())
    h.update(memoryview(image).cast("B"))
    return h.hexdigest()


def digest_weights(model: Any) -> str:
    """Hash of a Keras model's weights: part of the cache key of a custom backbone."""
    h = hashlib.blake2b(digest_size=16)
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


def digest_architecture(model: Any) -> str:
    """Hash of a Keras model's architecture: with :func:`digest_weights`, the cache key of
    a custom backbone, so two models whose weights hold the same values do not share
    features.

    The model's serialised config (layers, their settings and connections) is hashed with
    layer names replaced by their position, so the automatic names Keras gives
    (``conv2d_7``) do not change the key between sessions. A model that cannot be
    serialised is described by each layer's class, weight shapes and output shape.
    """
    import keras

    positions = {layer.name: f"<layer {i}>" for i, layer in enumerate(model.layers)}
    positions[model.name] = "<model>"

    def canonical(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: canonical(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [canonical(v) for v in obj]
        if isinstance(obj, str):
            return positions.get(obj, obj)
        return obj

    try:
        config = keras.saving.serialize_keras_object(model)
        text = json.dumps(canonical(config), sort_keys=True, default=repr)
    except Exception:  # a custom layer without a usable get_config
        text = repr([
            (type(layer).__module__, type(layer).__qualname__,
             [tuple(w.shape) for w in layer.weights],
             str(getattr(layer, "output", None) and layer.output.shape))
            for layer in model.layers
        ])
    text = f"{type(model).__module__}.{type(model).__qualname__}:{text}"
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


_FILE_DIGESTS: dict[tuple, str] = {}

#: A file changed less than this long ago may change again within the resolution of its
#: timestamps (coarse on many file systems), so its digest is not memoised.
_RACY_NS = 2_000_000_000


def digest_file(path: str) -> str:
    """Hash of a file's bytes: weights files.

    Memoised by path, inode, size, mtime and ctime: a file rewritten in place, even with
    its size and mtime restored (``os.utime``), gets a new ctime and is hashed again. A
    file modified in the last two seconds is never memoised (timestamps may be too coarse
    to show a second change).
    """
    stat = os.stat(path)
    memo = (os.path.abspath(path), stat.st_ino, stat.st_size, stat.st_mtime_ns,
            stat.st_ctime_ns)
    if memo in _FILE_DIGESTS:
        return _FILE_DIGESTS[memo]
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    if time.time_ns() - max(stat.st_mtime_ns, stat.st_ctime_ns) > _RACY_NS:
        _FILE_DIGESTS[memo] = digest
    return digest


def resolve_cache_location(cache: Any) -> Path | None:
    """Turn the ``cache`` parameter (None, a path or a ``joblib.Memory``) into a folder."""
    if cache is None:
        return None
    if isinstance(cache, joblib.Memory):
        return None if cache.location is None else Path(cache.location)
    if isinstance(cache, str | os.PathLike):
        return Path(cache)
    raise TypeError(
        f"cache must be None, a directory path or a joblib.Memory, got {type(cache).__name__}."
    )


class FeatureCache:
    """Features of single images under one set of settings.

    Parameters
    ----------
    location : path
        Root folder, shared by all settings (created on first write).
    settings : mapping
        Everything that changes features. Hashed with :func:`joblib.hash`; also written
        to ``settings.json`` so a person can tell the folders apart.
    feature_shape : tuple of int
        Expected shape of one image's features; entries of another shape are damaged.
    """

    def __init__(
        self, location: str | os.PathLike, settings: Mapping[str, Any], feature_shape: tuple
    ) -> None:
        self.settings = dict(settings)
        self.feature_shape = tuple(feature_shape)
        self.directory = Path(location) / "skmtl-features" / joblib.hash(self.settings)

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.npy"

    def load(self, key: str) -> np.ndarray | None:
        """Features stored for ``key``, or None when absent or damaged (with a warning)."""
        path = self._path(key)
        try:
            features = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            return None
        except Exception as exc:  # truncated, garbage, permission...
            warnings.warn(
                f"Damaged feature cache entry '{path}' ({exc}); recomputing it.",
                RuntimeWarning,
                stacklevel=3,
            )
            return None
        if features.shape != self.feature_shape or not np.issubdtype(features.dtype, np.floating):
            warnings.warn(
                f"Damaged feature cache entry '{path}': shape {features.shape} "
                f"{features.dtype}, expected {self.feature_shape} float; recomputing it.",
                RuntimeWarning,
                stacklevel=3,
            )
            return None
        return features

    def save(self, key: str, features: np.ndarray) -> None:
        """Store one image's features atomically."""
        path = self._path(key)
        if not self.directory.is_dir():
            self._write_settings()
        with atomic_write(path) as f:
            np.save(f, np.asarray(features), allow_pickle=False)

    def _write_settings(self) -> None:
        with atomic_write(self.directory / "settings.json", "w") as f:
            json.dump(self.settings, f, indent=1, sort_keys=True, default=str)

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("*/*.npy"))
