"""Throughput of PretrainedFeaturizer: JPEG files vs bare model.predict vs fully cached.

    python benchmarks/bench_featurizer.py [--backbone efficientnet_lite0] [--n 256]

Writes JPEG crops of scikit-learn's sample photos to a temporary folder, then reports
images/s for (1) transform from the JPEG files (decode + resize in threads, model, no
cache), (2) the bare Keras ``model.predict`` on pre-decoded, pre-resized arrays with the
same batch size, (3) the first transform with a cache (compute + write), and (4) a fully
cached transform (read only). Numbers go to docs/measurements.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_images

from skmtl import PretrainedFeaturizer


def make_jpegs(folder: Path, n: int) -> list[str]:
    rng = np.random.default_rng(0)
    photos = load_sample_images().images
    paths = []
    for i in range(n):
        photo = photos[i % 2]
        h, w = photo.shape[:2]
        top, left = rng.integers(0, h // 4), rng.integers(0, w // 4)
        path = folder / f"{i}.jpg"
        Image.fromarray(photo[top : top + 3 * h // 4, left : left + 3 * w // 4]).save(path)
        paths.append(str(path))
    return paths


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_jpegs(Path(tmp), args.n)
        feat = PretrainedFeaturizer(args.backbone, batch_size=args.batch_size).fit(paths)
        feat.transform(paths[: args.batch_size])  # build + trace once, outside the timings
        rows = [("transform from JPEG files", timed(lambda: feat.transform(paths)))]

        size = feat.input_size_
        arrays = np.stack([np.asarray(Image.open(p).convert("RGB").resize(size[::-1],
                                                                           Image.BILINEAR),
                                      np.float32) for p in paths])
        model, pre = feat._get_model(), feat._preprocess_fn()
        rows.append(("bare model.predict on arrays", timed(
            lambda: model.predict(pre(arrays), batch_size=args.batch_size, verbose=0))))

        cached = PretrainedFeaturizer(args.backbone, batch_size=args.batch_size,
                                      cache=Path(tmp) / "cache").fit(paths)
        cached._get_model().predict_on_batch(np.zeros((args.batch_size, *size, 3)))
        rows.append(("first transform with cache", timed(lambda: cached.transform(paths))))
        rows.append(("fully cached transform", timed(lambda: cached.transform(paths))))
    print(f"{args.backbone}, {args.n} images, batch {args.batch_size}, "
          f"{os.cpu_count()} CPUs")
    for name, seconds in rows:
        print(f"  {name:32s} {seconds:7.2f} s  {args.n / seconds:8.1f} images/s")


if __name__ == "__main__":
    main()
