"""Resize decoded images to a backbone's input (re-exported by :mod:`skmtl.io.images`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from skmtl._utils.sizes import size_pair

__all__ = ["RESIZE_MODES", "resize_image"]

#: The ways :func:`resize_image` fits an image to the backbone's input.
RESIZE_MODES = ("squash", "center_crop", "pad")

_BILINEAR = Image.Resampling.BILINEAR


def _target(size: Any) -> tuple[int, int]:
    return size_pair(size)


def _resample(image: np.ndarray, height: int, width: int, box: Any = None) -> np.ndarray:
    """Bilinear (Pillow) resize of ``box`` (default: all) to (height, width) -> float32.

    Without a box, a no-op size only casts.
    """
    if image.shape[:2] == (height, width) and box is None:
        return image.astype(np.float32)
    if image.dtype == np.uint8:
        resized = Image.fromarray(np.ascontiguousarray(image)).resize((width, height),
                                                                      _BILINEAR, box)
        return np.asarray(resized, dtype=np.float32)
    # Floats: one 32-bit float ('F') Pillow image per channel, so no precision is lost.
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(image[..., c], dtype=np.float32))
            .resize((width, height), _BILINEAR, box),
            dtype=np.float32,
        )
        for c in range(image.shape[-1])
    ]
    return np.stack(channels, axis=-1)


def resize_image(
    image: np.ndarray, size: int | tuple[int, int], mode: str = "squash"
) -> np.ndarray:
    """Resize an RGB image to the backbone's input, float32 on the 0-255 scale.

    Parameters
    ----------
    image : ndarray of shape (h, w, 3)
        uint8 (resized by Pillow as is) or float (resized per channel as 32-bit float
        images, keeping precision), as returned by :func:`load_image` or
        :func:`to_rgb_array`.
    size : int or (int, int)
        Target (height, width); an int means a square.
    mode : {"squash", "center_crop", "pad"}, default="squash"
        ``"squash"`` stretches the whole image to ``size`` ignoring its aspect ratio, as
        Keras' ``image_dataset_from_directory`` does. ``"center_crop"`` scales it so the
        shorter side fits (keeping the aspect ratio) and crops the centre.
        ``"pad"`` scales it so the longer side fits (keeping the aspect ratio) and pads
        both sides symmetrically with black (0); an odd margin puts the extra row or
        column at the bottom or right. Resampling is Pillow's bilinear filter in every
        mode (antialiased when shrinking); small images are upscaled the same way.

    Returns
    -------
    ndarray of shape (height, width, 3), dtype float32
        A new array; an image already of the target size is only cast, not resampled.

    Raises
    ------
    ValueError
        Unknown mode, a bad size, or an image that is not (h, w, 3).
    """
    height, width = _checked_fit(size, mode)
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or min(image.shape[:2]) == 0:
        raise ValueError(f"Expected an RGB image of shape (h, w, 3), got {image.shape}.")
    return _fit(image, height, width, mode, image.shape[:2])


def _checked_fit(size: Any, mode: str) -> tuple[int, int]:
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode {mode!r} is not one of {RESIZE_MODES}.")
    return _target(size)


def _resampled_size(h: int, w: int, height: int, width: int, mode: str) -> tuple[int, int]:
    """The size :func:`resize_image` resamples an (h, w) image to, before crop or pad."""
    if mode == "squash" or (h, w) == (height, width):
        return height, width
    if mode == "center_crop":
        scale = max(height / h, width / w)
        return max(height, round(h * scale)), max(width, round(w * scale))
    scale = min(height / h, width / w)
    return min(height, max(1, round(h * scale))), min(width, max(1, round(w * scale)))


def _fit(image: np.ndarray, height: int, width: int, mode: str, shape: tuple[int, int],
         box: Any = None) -> np.ndarray:
    """:func:`resize_image`, with crop and pad geometry from ``shape``, the (h, w) of the
    full-size image; ``image`` may be a reduced version of it, with the full image's
    extent in ``box`` (see :func:`skmtl.io._large_images.shrink`)."""
    nh, nw = _resampled_size(*shape, height, width, mode)
    resized = _resample(image, nh, nw, box)
    if mode == "squash" or (nh, nw) == (height, width):
        return resized
    if mode == "center_crop":
        top, left = (nh - height) // 2, (nw - width) // 2
        return resized[top : top + height, left : left + width].copy()
    top, left = (height - nh) // 2, (width - nw) // 2
    out = np.zeros((height, width, 3), dtype=np.float32)
    out[top : top + nh, left : left + nw] = resized
    return out
