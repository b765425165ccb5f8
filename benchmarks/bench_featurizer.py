"""Throughput of PretrainedFeaturizer: JPEG files against the bare forward pass and the
notebook way, then what a cached rerun costs.

    python benchmarks/bench_featurizer.py [--backbone efficientnet_lite0] [--n 2000]

Writes JPEG crops of scikit-learn's sample photos to a temporary folder, then times, in one
run and on the same images:

1. ``transform`` from the JPEG files (decode + resize in threads, model, no cache);
2. the bare compiled forward pass on pre-decoded, pre-resized arrays (the featurizer's own
   step, batch by batch: the floor for any file -> features pipeline);
3. the notebook way: every image decoded and resized into one float32 array (one thread),
   then ``model.predict`` on it (memory grows with the number of images);
4. the first ``transform`` with a cache (compute + write shards);
5. a fully cached rerun in the same process (twice: the first opens and verifies the
   shards), and in a new process (stat index and shards read from disk), as a fraction
   of (4).

Wall and CPU seconds are printed: on a shared machine the wall time includes waiting for a
core. Numbers go to docs/measurements.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_images

from skmtl import PretrainedFeaturizer
from skmtl.io.images import load_image, resize_image

_RERUN = """
import sys, time
from skmtl import PretrainedFeaturizer
paths = open(sys.argv[1]).read().split("\\n")
feat = PretrainedFeaturizer(sys.argv[2], batch_size=int(sys.argv[3]), cache=sys.argv[4])
feat.fit(paths[:1])
start, cpu = time.perf_counter(), time.process_time()
feat.transform(paths)
print(time.perf_counter() - start, time.process_time() - cpu)
"""


def make_jpegs(folder: Path, n: int, scale: float = 1.0) -> list[str]:
    """``n`` distinct JPEG crops (3/4 of each side) of the two sample photos."""
    rng = np.random.default_rng(0)
    photos = load_sample_images().images
    if scale != 1.0:
        photos = [np.asarray(Image.fromarray(p).resize(
            (int(p.shape[1] * scale), int(p.shape[0] * scale)))) for p in photos]
    paths = []
    for i in range(n):
        photo = photos[i % 2]
        h, w = photo.shape[:2]
        top, left = rng.integers(0, h // 4), rng.integers(0, w // 4)
        path = folder / f"{i}.jpg"
        Image.fromarray(photo[top : top + 3 * h // 4, left : left + 3 * w // 4]).save(path)
        paths.append(str(path))
    return paths


def timed(fn) -> tuple[float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    n, bs = args.n, args.batch_size
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_jpegs(Path(tmp), n)
        feat = PretrainedFeaturizer(args.backbone, batch_size=bs).fit(paths)
        feat.transform(paths[:bs])  # build + trace once, outside the timings
        rows = [("transform from JPEG files (no cache)", timed(lambda: feat.transform(paths)))]

        size, pre = feat.input_size_, feat._preprocess_fn()

        def decode_all() -> np.ndarray:
            return np.stack([resize_image(load_image(p), size) for p in paths])

        arrays = decode_all()
        rows.append(("bare compiled forward pass on arrays", timed(
            lambda: [feat._run_model(np.asarray(pre(arrays[s : s + bs]), np.float32))
                     for s in range(0, n, bs)])))
        model = feat._get_model()
        arrays = None  # free it before the notebook way allocates its own
        rows.append(("notebook way: one float array, predict", timed(
            lambda: model.predict(pre(decode_all()), batch_size=bs, verbose=0))))

        cache = Path(tmp) / "cache"
        cached = PretrainedFeaturizer(args.backbone, batch_size=bs, cache=cache).fit(paths)
        cached._get_model().predict_on_batch(np.zeros((bs, *size, 3)))
        rows.append(("first transform with cache (compute + write)",
                     timed(lambda: cached.transform(paths))))
        # The first transform remembered each file's key by its stat (the files are older
        # than 2 s); the first rerun opens and verifies the shards, the second reuses them.
        rows.append(("cached rerun, same process (open shards)",
                     timed(lambda: cached.transform(paths))))
        rows.append(("cached rerun, same process again",
                     timed(lambda: cached.transform(paths))))
        listing = Path(tmp) / "paths.txt"
        listing.write_text("\n".join(paths))
        child = subprocess.run([sys.executable, "-c", _RERUN, str(listing), args.backbone,
                                str(bs), str(cache)], capture_output=True, text=True,
                               check=True)
        wall, cpu = (float(v) for v in child.stdout.split()[-2:])
        rows.append(("cached rerun, new process", (wall, cpu)))
    print(f"{args.backbone}, {n} JPEGs, batch {bs}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    compute = rows[3][1][0]
    for name, (wall, cpu) in rows:
        share = f"{100 * wall / compute:6.2f}% of compute" if "cached rerun" in name else ""
        print(f"  {name:46s} {wall:8.2f} s wall {cpu:8.2f} s CPU {n / wall:9.1f} images/s"
              f"  {share}")


if __name__ == "__main__":
    main()
