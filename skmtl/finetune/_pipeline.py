"""The input pipeline: image files (or arrays) to preprocessed, augmented batches.

A ``tf.data`` pipeline over image positions: parallel calls decode and resize each image
with skmtl's own rules (:func:`skmtl.io.images.prepare_image`: EXIF, CMYK, 16-bit, alpha...),
augment it, apply the backbone's preprocessing, then batch and prefetch. Memory is bounded
by a few batches. Without augmentation an image's pixels are exactly what
:class:`~skmtl.PretrainedFeaturizer` feeds the same backbone.

Augmentation draws are made up front from one NumPy generator (a flip flag and a crop box
per image and epoch), so a fit is reproducible under ``random_state`` and the decoding
threads share no random state.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from skmtl.features.sources import ImageSources
from skmtl.io.images import prepare_image
from skmtl.io.transforms import resize_image

__all__ = ["AUGMENTATIONS", "augmentation_draws", "load_one", "make_dataset", "raising"]

#: ``augment`` value -> (flip, random resized crop)
AUGMENTATIONS = {None: (False, False), "flip": (True, False), "crop": (False, True),
                 "flip_crop": (True, True)}

FULL = (0.0, 0.0, 1.0, 1.0)  # a crop box (top, left, height, width) as fractions: no crop

#: Random resized crops keep 35-100% of the image area, aspect ratio 3/4 to 4/3.
CROP_SCALE, CROP_RATIO = (0.35, 1.0), (3 / 4, 4 / 3)


def augmentation_draws(n: int, augment: str | None, rng: np.random.Generator
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Per-image flip flags and crop boxes for one epoch."""
    flip, crop = AUGMENTATIONS[augment]
    flips = rng.random(n) < 0.5 if flip else np.zeros(n, bool)
    boxes = np.tile(np.asarray(FULL, np.float32), (n, 1))
    if crop:
        for i in range(n):
            boxes[i] = _crop_box(rng)
    return flips, boxes


def _crop_box(rng: np.random.Generator) -> tuple[float, float, float, float]:
    for _ in range(10):
        area = rng.uniform(*CROP_SCALE)
        ratio = math.exp(rng.uniform(*np.log(CROP_RATIO)))
        h, w = math.sqrt(area / ratio), math.sqrt(area * ratio)
        if h <= 1 and w <= 1:
            return (rng.uniform(0, 1 - h), rng.uniform(0, 1 - w), h, w)
    return FULL


def load_one(sources: ImageSources, i: int, size: tuple[int, int], resize: str,
             preprocess: Callable, flip: bool = False, box: Any = FULL) -> np.ndarray:
    """Image ``i`` decoded, resized, cropped to ``box`` and resized back, mirrored, and
    preprocessed, as float32 of shape (height, width, 3)."""
    image = prepare_image(sources.items[i], size, resize, index=i)
    top, left, h, w = (float(v) for v in box)
    if (h, w) != (1.0, 1.0):
        rows, cols = image.shape[:2]
        r0, c0 = round(top * rows), round(left * cols)
        r1, c1 = max(r0 + 1, round((top + h) * rows)), max(c0 + 1, round((left + w) * cols))
        image = resize_image(image[r0:r1, c0:c1], size, "squash")
    if flip:
        image = image[:, ::-1]
    batch = np.ascontiguousarray(image, dtype=np.float32)[None]
    return np.asarray(preprocess(batch), dtype=np.float32)[0]


def make_dataset(sources: ImageSources, *, size: tuple[int, int], resize: str,
                 preprocess: Callable, batch_size: int, labels: np.ndarray | None = None,
                 flips: np.ndarray | None = None, boxes: np.ndarray | None = None,
                 n_jobs: int | None = None, failures: dict | None = None) -> Any:
    """A ``tf.data.Dataset`` of preprocessed image batches (and label batches).

    ``failures`` collects the exception of an image that cannot be read (by position), so
    that the caller can raise it with its own message instead of TensorFlow's.
    """
    import tensorflow as tf

    n = len(sources)
    flips = np.zeros(n, bool) if flips is None else np.asarray(flips, bool)
    boxes = np.tile(np.asarray(FULL, np.float32), (n, 1)) if boxes is None else boxes
    height, width = size

    def load(i: np.ndarray, flip: np.ndarray, box: np.ndarray) -> np.ndarray:
        try:
            return load_one(sources, int(i), size, resize, preprocess, bool(flip), box)
        except Exception as exc:
            if failures is not None:
                failures[int(i)] = exc
            raise

    def load_tensor(i: Any, flip: Any, box: Any) -> Any:
        image = tf.numpy_function(load, [i, flip, box], tf.float32, stateful=False)
        image.set_shape((height, width, 3))
        return image

    positions = tf.data.Dataset.from_tensor_slices(
        (np.arange(n, dtype=np.int64), flips, boxes.astype(np.float32)))
    threads = n_jobs or min(4, os.cpu_count() or 1)
    images = positions.map(load_tensor, num_parallel_calls=threads, deterministic=True)
    if labels is not None:
        images = tf.data.Dataset.zip(
            (images, tf.data.Dataset.from_tensor_slices(np.asarray(labels, np.int32))))
    return images.batch(batch_size).prefetch(2)


def raising(dataset: Any, failures: dict) -> Any:
    """Iterate ``dataset``; an image that could not be read raises its own error (an
    :class:`~skmtl.ImageDecodeError` naming the file), not TensorFlow's wrapper of it."""
    import tensorflow as tf

    try:
        yield from dataset
    except tf.errors.OpError:
        if failures:
            raise failures[min(failures)] from None
        raise
