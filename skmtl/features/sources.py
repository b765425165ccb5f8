"""What X may be: image file paths or in-memory images, normalised to one interface."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from skmtl.features._file_keys import FileKeys
from skmtl.features.store import digest_array, digest_bytes
from skmtl.io.images import decode_image, read_bytes, to_rgb_array

__all__ = ["ImageSources", "as_image_sources"]

_EXPECTED = (
    "Expected image file paths (list, 1-D array, pandas Series, or a DataFrame with one "
    "column or a 'path' column) or images as an array of shape (n, height, width, 3) or "
    "(n, height, width)"
)


@dataclass(frozen=True)
class ImageSources:
    """A sequence of images to featurise.

    ``kind`` is ``"paths"`` (items are path strings) or ``"arrays"`` (items are
    individual images as numpy arrays).
    """

    kind: str
    items: Sequence[Any]

    def __len__(self) -> int:
        return len(self.items)

    def key(self, i: int) -> str:
        """Content hash of image ``i`` (reads the file for paths)."""
        item = self.items[i]
        if self.kind == "paths":
            return digest_bytes(read_bytes(item, index=i))
        return digest_array(item)

    def keys(self, pool: Any, file_keys: FileKeys | None = None) -> list[Any]:
        """Content key of every image, or the exception raised reading it.

        With ``file_keys``, a file whose path, inode, size, mtime and ctime are remembered
        is not read; the others are read and hashed in ``pool`` and remembered.
        """
        n = len(self.items)
        if self.kind != "paths" or file_keys is None:
            return list(pool.map(_attempt(self.key), range(n)))
        looked = file_keys.lookup_many(self.items)
        keys: list[Any] = [key for key, _ in looked]
        missing = [i for i, key in enumerate(keys) if key is None]

        def read(i: int) -> Any:
            key = self.key(i)
            stat_id = looked[i][1]
            return key, (stat_id if stat_id and file_keys.still(self.items[i], stat_id)
                         else None)

        learned = []
        for i, got in zip(missing, pool.map(_attempt(read), missing), strict=True):
            if isinstance(got, Exception):
                keys[i] = got
            else:
                keys[i] = got[0]
                if got[1] is not None:
                    learned.append((got[1], got[0]))
        file_keys.remember(learned)
        return keys

    def decode(self, i: int) -> np.ndarray:
        """Image ``i`` as an RGB array of shape (h, w, 3), uint8 or float32."""
        item = self.items[i]
        if self.kind == "paths":
            return decode_image(read_bytes(item, index=i), path=item, index=i)
        return to_rgb_array(item, index=i)

    def describe(self, i: int) -> str:
        """How to name image ``i`` in messages."""
        return f"'{self.items[i]}'" if self.kind == "paths" else f"array image #{i}"


def _attempt(fn: Any) -> Any:
    """``fn`` returning, not raising, the error of an unreadable image."""

    def call(i: int) -> Any:
        try:
            return fn(i)
        except (ValueError, OSError) as exc:
            return exc

    return call


def _paths(values: Sequence[Any]) -> ImageSources:
    bad = [i for i, v in enumerate(values) if not isinstance(v, str | os.PathLike)]
    if bad:
        i = bad[0]
        raise TypeError(
            f"X[{i}] is {values[i]!r} of type {type(values[i]).__name__}, not a file path. "
            + _EXPECTED
            + "."
        )
    return ImageSources("paths", [os.fspath(v) for v in values])


def as_image_sources(X: Any) -> ImageSources:
    """Recognise what X holds and check it, with errors that say what was expected.

    Raises
    ------
    ValueError
        Empty X, or an array whose shape or dtype cannot hold images.
    TypeError
        Anything that is neither paths nor image arrays.
    """
    if isinstance(X, str | os.PathLike):
        raise TypeError(f"X is a single path ({X!r}); pass a list of paths. " + _EXPECTED + ".")
    if hasattr(X, "iloc") and hasattr(X, "columns"):  # DataFrame
        if "path" in X.columns:
            X = X["path"]
        elif X.shape[1] == 1:
            X = X.iloc[:, 0]
        else:
            raise ValueError(
                f"X is a DataFrame with columns {list(X.columns)}; it needs one column of "
                "paths or a 'path' column."
            )
    if hasattr(X, "iloc"):  # Series
        X = X.to_numpy()
    if isinstance(X, np.ndarray):
        return _from_array(X)
    if isinstance(X, list | tuple):
        if len(X) == 0:
            raise ValueError("X is empty: there are no images to featurise.")
        if all(isinstance(v, np.ndarray) for v in X):
            for i, v in enumerate(X):
                if v.ndim not in (2, 3):
                    raise ValueError(
                        f"Image #{i} in X has shape {v.shape}; expected (height, width, 3) "
                        "or (height, width)."
                    )
            return ImageSources("arrays", list(X))
        return _paths(list(X))
    raise TypeError(f"X of type {type(X).__name__} is not supported. " + _EXPECTED + ".")


def _from_array(X: np.ndarray) -> ImageSources:
    if len(X) == 0:
        raise ValueError("X is empty: there are no images to featurise.")
    if X.dtype.kind in "USO":
        if X.ndim != 1:
            raise ValueError(f"X holds strings but has shape {X.shape}; paths must be 1-D.")
        return _paths(list(X))
    if X.dtype.kind not in "uif":
        raise ValueError(
            f"X has dtype {X.dtype}; images must be unsigned/signed integers on the 0-255 "
            "scale or floats."
        )
    if X.ndim == 3 or (X.ndim == 4 and X.shape[-1] in (1, 3)):
        return ImageSources("arrays", list(X))
    raise ValueError(f"X has shape {X.shape}. " + _EXPECTED + ".")
