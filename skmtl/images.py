"""Decode and resize images: the first step of the data flow.

Files become uint8 RGB arrays whatever they hold (EXIF rotation, grayscale, palette, alpha,
CMYK, 16-bit); arrays are checked and brought to RGB; both are resized to a backbone's
input. NumPy and Pillow only, thread-safe: the featurizer calls this from worker threads,
and Pillow releases the GIL while decoding and resampling.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
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

RESIZE_MODES = ("squash", "center_crop", "pad")

#: Alpha is composited onto white: transparent Kaggle PNGs are usually drawn on white, and
#: the colours stored under fully transparent pixels are arbitrary.
ALPHA_BACKGROUND = (255, 255, 255)


class ImageDecodeError(ValueError):
    """A missing, unreadable, truncated or non-image file.

    Attributes
    ----------
    path : str or None
        The file.
    index : int or None
        Its position in X, when known.
    """

    def __init__(self, message: str, *, path: Any = None, index: int | None = None) -> None:
        self.path = None if path is None else os.fspath(path)
        self.index = index
        where = f"#{index} " if index is not None else ""
        super().__init__(f"Cannot read image {where}'{self.path}': {message}")


def read_bytes(path: str | os.PathLike, *, index: int | None = None) -> bytes:
    """The bytes of an image file, with an :class:`ImageDecodeError` naming it on failure."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise ImageDecodeError("no such file", path=path, index=index) from None
    except OSError as exc:
        raise ImageDecodeError(f"cannot open the file ({exc})", path=path, index=index) from exc


def decode_image(data: bytes, *, path: Any = None, index: int | None = None) -> np.ndarray:
    """Decode encoded image bytes to a uint8 RGB array of shape (height, width, 3).

    Multi-frame files (GIF, TIFF) give their first frame. EXIF orientation is applied.
    Alpha is composited onto white; 16-bit images are scaled to 8 bits.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # truncated files fail here, not later
            image = ImageOps.exif_transpose(image)
            return _to_rgb(image)
    except UnidentifiedImageError:
        raise ImageDecodeError("not an image file (unknown format)", path=path,
                               index=index) from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        reason = "truncated file" if "truncated" in str(exc).lower() else str(exc)
        raise ImageDecodeError(reason, path=path, index=index) from exc


def load_image(path: str | os.PathLike, *, index: int | None = None) -> np.ndarray:
    """Read and decode one image file; see :func:`decode_image`."""
    return decode_image(read_bytes(path, index=index), path=path, index=index)


def _to_rgb(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64)
        if mode == "I" and values.max(initial=0) <= 255:
            gray = values  # 32-bit container holding 8-bit values
        else:
            gray = values / 257.0
        gray = np.clip(np.round(gray), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if mode == "F":
        gray = np.clip(np.asarray(image, dtype=np.float32), 0, 255).round().astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def to_rgb_array(image: np.ndarray, *, index: int | None = None) -> np.ndarray:
    """Check one in-memory image and bring it to (height, width, 3).

    uint8 stays uint8; other integers must lie in [0, 255]; floats stay float32 and are
    read on the 0-255 scale (Keras' convention, no rescaling).
    """
    where = f"Image #{index}" if index is not None else "Image"
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(
            f"{where} has shape {image.shape}; expected (height, width, 3), "
            "(height, width, 1) or (height, width)."
        )
    if min(image.shape[:2]) == 0:
        raise ValueError(f"{where} is empty (shape {image.shape}).")
    kind = image.dtype.kind
    if image.dtype == np.uint8:
        return image
    if kind in "ui":
        if image.min() < 0 or image.max() > 255:
            raise ValueError(
                f"{where} has {image.dtype} values in [{image.min()}, {image.max()}]; "
                "integer images must lie in [0, 255]."
            )
        return image.astype(np.uint8)
    if kind == "f":
        if not np.isfinite(image).all():
            raise ValueError(f"{where} contains NaN or infinite values.")
        return image.astype(np.float32, copy=False)
    raise ValueError(f"{where} has dtype {image.dtype}; use uint8, integers or floats.")


def _resample(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize to (height, width), float32 out; uint8 goes through Pillow as is."""
    if image.shape[:2] == (height, width):
        return image.astype(np.float32)
    if image.dtype == np.uint8:
        resized = Image.fromarray(image).resize((width, height), Image.BILINEAR)
        return np.asarray(resized, dtype=np.float32)
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c], dtype=np.float32), "F")
                   .resize((width, height), Image.BILINEAR))
        for c in range(image.shape[-1])
    ]
    return np.stack(channels, axis=-1)


def resize_image(
    image: np.ndarray, size: int | tuple[int, int], mode: str = "squash"
) -> np.ndarray:
    """Resize an RGB image to ``size`` = (height, width), float32 on the 0-255 scale.

    Parameters
    ----------
    image : ndarray of shape (h, w, 3)
        uint8 or float.
    size : int or (int, int)
        Target (height, width); an int means a square.
    mode : {"squash", "center_crop", "pad"}
        ``"squash"`` stretches the whole image to the size, ignoring aspect ratio (Keras'
        loaders do this). ``"center_crop"`` fits the shorter side and crops the centre.
        ``"pad"`` fits the longer side and pads with black (0) on both sides.
        Resampling is bilinear (Pillow) in every mode.
    """
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode {mode!r} is not one of {RESIZE_MODES}.")
    h, w = image.shape[:2]
    if mode == "squash" or (h, w) == (height, width):
        return _resample(image, height, width)
    if mode == "center_crop":
        scale = max(height / h, width / w)
        nh, nw = max(height, round(h * scale)), max(width, round(w * scale))
        resized = _resample(image, nh, nw)
        top, left = (nh - height) // 2, (nw - width) // 2
        return resized[top : top + height, left : left + width]
    scale = min(height / h, width / w)
    nh, nw = min(height, max(1, round(h * scale))), min(width, max(1, round(w * scale)))
    out = np.zeros((height, width, 3), dtype=np.float32)
    top, left = (height - nh) // 2, (width - nw) // 2
    out[top : top + nh, left : left + nw] = _resample(image, nh, nw)
    return out


def flip_horizontal(image: np.ndarray) -> np.ndarray:
    """Mirror left-right.

    The featurizer flips *after* resizing, so that features with ``flip=True`` equal the
    features of mirrored arrays of the input size exactly.
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
    """Path, encoded bytes or array -> resized (and optionally mirrored) float32 RGB."""
    if isinstance(source, bytes):
        image = decode_image(source, index=index)
    elif isinstance(source, str | os.PathLike):
        image = load_image(source, index=index)
    else:
        image = to_rgb_array(source, index=index)
    resized = resize_image(image, size, mode)
    return flip_horizontal(resized) if flip else resized
