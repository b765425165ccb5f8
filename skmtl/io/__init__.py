"""Images in: decoding (:mod:`~skmtl.io.images`), resizing and mirroring
(:mod:`~skmtl.io.transforms`), and competition folders and CSVs (:mod:`~skmtl.io.datasets`).

Nothing here imports Keras or TensorFlow.
"""

from skmtl.io.datasets import (
    load_image_folder,
    load_labels_csv,
    load_test_csv,
    load_test_folder,
)
from skmtl.io.images import ImageDecodeError, decode_image, prepare_image
from skmtl.io.transforms import RESIZE_MODES, resize_image

__all__ = ["RESIZE_MODES", "ImageDecodeError", "decode_image", "load_image_folder",
           "load_labels_csv", "load_test_csv", "load_test_folder", "prepare_image", "resize_image"]
