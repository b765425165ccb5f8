"""Decode and resize images: the first step of the data flow.

Files become uint8 RGB arrays whatever they hold (EXIF rotation, grayscale, palette, alpha,
CMYK, 16-bit); in-memory arrays are checked and brought to RGB; both are then resized to a
backbone's input as float32 on the 0-255 scale.

NumPy and Pillow only (no TensorFlow), and thread-safe: the featurizer calls these
functions from worker threads, no global Pillow state is read-modified-written, and Pillow
releases the GIL while decoding and resampling. ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` is
left as it is (False by default), so truncated files raise :class:`ImageDecodeError`.
"""

from __future__ import annotations

import io
import os
import struct
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

import skmtl.io._large_images as _large
from skmtl.io.transforms import (
    RESIZE_MODES,
    _checked_fit,
    _fit,
    _resampled_size,
    resize_image,
)

__all__ = [
    "ALPHA_BACKGROUND",
    "RESIZE_MODES",
    "ImageDecodeError",
    "decode_image",
    "flip_horizontal",
    "load_image",
    "prepare_image",
    "read_bytes",
    "resize_image",
    "to_rgb_array",
]

#: Alpha is composited onto white: transparent PNGs in Kaggle data are usually drawings
#: meant to be seen on white, and the colours stored under fully transparent pixels are
#: arbitrary (often black, sometimes garbage), so simply dropping alpha would expose them.
ALPHA_BACKGROUND = (255, 255, 255)

_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa")


class ImageDecodeError(ValueError):
    """A missing, unreadable, truncated or non-image file.

    Parameters
    ----------
    message : str
        What went wrong. When ``path`` or ``index`` is given it is prefixed with
        ``"Cannot decode image #<index> '<path>': "``; otherwise it is used as is, so
        ``type(exc)(new_message)`` re-raises with a different message.
    path : str or os.PathLike, optional
        The file.
    index : int, optional
        Its position in X.

    Attributes
    ----------
    path : str or None
        The file, when known.
    index : int or None
        Its position in X, when known.
    """

    def __init__(self, message: str, *, path: Any = None, index: int | None = None) -> None:
        self.path = None if path is None else str(os.fspath(path))
        self.index = index
        where = [f"#{index}"] if index is not None else []
        where += [f"'{self.path}'"] if path is not None else []
        if where:
            message = f"Cannot decode image {' '.join(where)}: {message}"
        super().__init__(message)


def read_bytes(path: str | os.PathLike, *, index: int | None = None) -> bytes:
    """Read an image file's bytes.

    The cache hashes these bytes and :func:`decode_image` decodes them, so a file is read
    once.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    index : int, optional
        Its position in X, named in error messages.

    Returns
    -------
    bytes
        The file's content.

    Raises
    ------
    ImageDecodeError
        The file does not exist ("no such file"), is a directory, or cannot be read.
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"Expected a file path (str or os.PathLike), got {type(path).__name__}.")
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise ImageDecodeError("no such file", path=path, index=index) from None
    except IsADirectoryError:
        raise ImageDecodeError("is a directory, not a file", path=path, index=index) from None
    except PermissionError:
        raise ImageDecodeError("permission denied", path=path, index=index) from None
    except OSError as exc:
        reason = f"cannot read the file ({exc.strerror or exc})"
        raise ImageDecodeError(reason, path=path, index=index) from exc


def _sniff(data: bytes) -> str:
    """Why Pillow could not identify ``data``, in words."""
    head = data[:64].lstrip().lower()
    if not data:
        return "empty file"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftyphevc", b"ftypmif1", b"ftypmsf1"):
        return "HEIC/HEIF image, which Pillow cannot decode without the pillow-heif plugin"
    if head.startswith((b"<!doctype html", b"<html")):
        return "an HTML page, not an image (a failed download?)"
    if head.startswith((b"<svg", b"<?xml")):
        return "SVG/XML text, not a raster image"
    return "not an image file (unknown format)"


def decode_image(
    data: bytes, *, path: str | os.PathLike | None = None, index: int | None = None
) -> np.ndarray:
    """Decode an encoded image (JPEG, PNG, BMP, GIF, WebP, TIFF...) to uint8 RGB.

    Parameters
    ----------
    data : bytes
        The encoded file content.
    path : str or os.PathLike, optional
        Where it came from, named in error messages.
    index : int, optional
        Its position in X, named in error messages.

    Returns
    -------
    ndarray of shape (height, width, 3), dtype uint8
        Multi-frame files (GIF, TIFF) give their first frame. EXIF orientation is applied
        (a corrupt EXIF block is ignored: the pixels are still good). Grayscale, palette,
        CMYK, YCbCr, LAB... are converted to RGB; alpha and palette/colour-key
        transparency are composited onto :data:`ALPHA_BACKGROUND` (white); 16-bit values
        are scaled to 8 bits as ``round(v / 257)`` (65535 -> 255, not clipped); 32-bit
        float images are clipped to [0, 255] and rounded.

    Raises
    ------
    ImageDecodeError
        Not an image, a truncated or corrupt file, or too large (Pillow's decompression
        bomb guard).
    """
    return _decode(data, path, index, None)


def _decode(data: bytes, path: Any, index: int | None, fit: tuple | None) -> np.ndarray:
    """:func:`decode_image`, then, when ``fit`` is (height, width, mode), resize to it.

    With ``fit``, a large image is decoded small (see :mod:`skmtl.io._large_images`). All
    of it happens within :data:`DECODE_BUDGET`, so the full-size pixels count until the
    resized result alone is left.
    """
    fmt = "image"
    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt = image.format or fmt
            full = image.size
            scale = 1
            if fit is not None and image.format in _large.DRAFTABLE:
                scale = _large.draft(image, _needed(image, full, fit))
            with _large.DECODE_BUDGET.reserve(image.width * image.height):
                image.load()  # truncated and corrupt files fail here, not later
                shrunk = fit and _large.shrink(image, full, _needed(image, full, fit), scale)
                if shrunk:  # drafted or reduced: resample the full image's exact extent
                    small, box = shrunk
                    upright = full[::-1] if not _large.swaps_axes(image) else full
                    return _fit(_to_rgb(small), *fit, upright, box)
                try:
                    image = ImageOps.exif_transpose(image)
                except (OSError, ValueError, SyntaxError, KeyError, TypeError, struct.error):
                    pass  # unreadable orientation metadata; the pixels are still good
                rgb = _to_rgb(image)
                return rgb if fit is None else _fit(rgb, *fit, rgb.shape[:2])
    except UnidentifiedImageError:
        raise ImageDecodeError(_sniff(bytes(data)), path=path, index=index) from None
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(f"too large ({exc})", path=path, index=index) from exc
    except (MemoryError, ImageDecodeError):
        raise
    except Exception as exc:  # Pillow plugins raise OSError, SyntaxError, struct.error...
        text = str(exc) or type(exc).__name__
        reason = f"truncated {fmt} file ({text})" if "truncated" in text.lower() else (
            f"corrupt {fmt} file ({type(exc).__name__}: {text})"
        )
        raise ImageDecodeError(reason, path=path, index=index) from exc


def load_image(path: str | os.PathLike, *, index: int | None = None) -> np.ndarray:
    """Read and decode one image file: :func:`read_bytes` then :func:`decode_image`.

    Returns a uint8 array of shape (height, width, 3); raises :class:`ImageDecodeError`
    for a missing, unreadable, truncated or non-image file.
    """
    return decode_image(read_bytes(path, index=index), path=path, index=index)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=-1)


def _to_rgb(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in _SIXTEEN_BIT:
        # 'I' is how Pillow has long decoded 16-bit grayscale PNG/TIFF: read as 16-bit too.
        values = np.clip(np.asarray(image, dtype=np.float64), 0, 65535)
        return _gray_to_rgb(np.rint(values / 257.0).astype(np.uint8))
    if mode == "F":
        values = np.asarray(image, dtype=np.float32)
        if not np.isfinite(values).all():
            raise ValueError("float image contains NaN or infinite values")
        return _gray_to_rgb(np.rint(np.clip(values, 0, 255)).astype(np.uint8))
    if "transparency" in image.info and mode in ("P", "L", "1", "RGB"):
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in _ALPHA_MODES:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def to_rgb_array(image: np.ndarray, *, index: int | None = None) -> np.ndarray:
    """Check one in-memory image and bring it to (height, width, 3).

    Parameters
    ----------
    image : array-like of shape (h, w), (h, w, 1) or (h, w, 3)
        Grayscale is repeated to three channels. Four channels are refused: in-memory
        images must be RGB (drop or composite alpha yourself).
    index : int, optional
        Its position in X, named in error messages.

    Returns
    -------
    ndarray of shape (h, w, 3), dtype uint8 or float32
        uint8 stays uint8 (possibly the same array); other integer dtypes become uint8;
        floats become float32, read on the 0-255 scale (Keras' convention: no rescaling,
        so images scaled to [0, 1] must be multiplied by 255 first).

    Raises
    ------
    ValueError
        Wrong shape, empty image, integers outside [0, 255], NaN or infinite floats, or a
        dtype that cannot hold pixels (bool, complex, object, strings...).
    """
    where = f"Image #{index}" if index is not None else "Image"
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = _gray_to_rgb(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(
            f"{where} has shape {image.shape}; expected (height, width), (height, width, 1) "
            "or (height, width, 3)."
        )
    if min(image.shape[:2]) == 0:
        raise ValueError(f"{where} is empty (shape {image.shape}).")
    kind = image.dtype.kind
    if image.dtype == np.uint8:
        return image
    if kind in "ui":
        low, high = image.min(), image.max()
        if low < 0 or high > 255:
            raise ValueError(
                f"{where} has {image.dtype} values in [{low}, {high}]; integer images must "
                "lie in [0, 255]."
            )
        return image.astype(np.uint8)
    if kind == "f":
        with np.errstate(over="ignore"):  # float64 beyond float32's range -> inf, refused
            image = image.astype(np.float32, copy=False)
        if not np.isfinite(image).all():
            raise ValueError(f"{where} contains NaN or infinite values (as float32).")
        return image
    raise ValueError(
        f"{where} has dtype {image.dtype}; images must be uint8, other integers in "
        "[0, 255], or floats on the 0-255 scale."
    )


def _needed(image: Image.Image, full: tuple[int, int], fit: tuple) -> tuple[int, int]:
    """(width, height) in the file's orientation that a ``full``-size image is resampled to."""
    turned = _large.swaps_axes(image)
    nh, nw = _resampled_size(*(full if turned else full[::-1]), *fit)
    return (nh, nw) if turned else (nw, nh)


def flip_horizontal(image: np.ndarray) -> np.ndarray:
    """Mirror an image left-right (a view: ``image[:, ::-1]``).

    The featurizer's ``flip=True`` flips *after* resizing, so features with ``flip=True``
    equal the features of the mirrored input arrays exactly in "squash" mode. Resizing
    and flipping commute for "squash" (``resize(flip(x)) == flip(resize(x))`` up to
    floating point rounding) and for "center_crop" and "pad" when the crop or pad margin
    is even; with an odd margin the two orders differ by a one-pixel shift, because the
    extra row/column always goes to the same side.

    """
    return image[:, ::-1]


def prepare_image(
    source: Any,
    size: int | tuple[int, int],
    mode: str = "squash",
    *,
    flip: bool = False,
    index: int | None = None,
) -> np.ndarray:
    """Path, encoded bytes or array -> resized (optionally mirrored) float32 RGB.

    Parameters
    ----------
    source : str, os.PathLike, bytes or array-like
        An image file, its encoded content, or an in-memory image (see
        :func:`to_rgb_array`).
    size : int or (int, int)
        Target (height, width).
    mode : {"squash", "center_crop", "pad"}, default="squash"
        See :func:`resize_image`.
    flip : bool, default=False
        Mirror left-right after resizing (see :func:`flip_horizontal`).
    index : int, optional
        Position in X, named in error messages.

    Returns
    -------
    ndarray of shape (height, width, 3), dtype float32
    """
    fit = (*_checked_fit(size, mode), mode)
    if isinstance(source, bytes | bytearray | memoryview):
        resized = _decode(bytes(source), None, index, fit)
    elif isinstance(source, str | os.PathLike):
        resized = _decode(read_bytes(source, index=index), source, index, fit)
    else:
        resized = resize_image(to_rgb_array(source, index=index), size, mode)
    return flip_horizontal(resized) if flip else resized
