"""Peak memory of ``transform`` for 1,000 vs 10,000 images, and Dask against one process.

    python benchmarks/bench_scale.py memory [--sizes 1000 10000]
    python benchmarks/bench_scale.py dask [--n 256] [--backbone efficientnet_lite0]

``memory``: each size runs in a fresh process (peak resident memory is the process's
``ru_maxrss``) on JPEG crops of scikit-learn's photos (about 320 x 240), featurised at
224 x 224 by a small random-weight conv net (decoding and resizing dominate; the model's
own memory is the same for any number of images). The output rows are counted apart: they
grow with the images by construction (here 16 floats per image). The notebook way's image
array, n x 224 x 224 x 3 float32, is given for comparison.

``dask``: ``featurize_on_dask`` on a ``LocalCluster`` of 2 worker processes (1 thread
each) against ``transform`` in this process, same images, no cache; the cluster's start
and each worker's first model build are outside the timing (one warm-up call).
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

_MEMORY_CHILD = """
import os, resource, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras
from skmtl import PretrainedFeaturizer
paths = open(sys.argv[1]).read().split("\\n")
keras.utils.set_random_seed(0)
inputs = keras.Input((224, 224, 3))
x = keras.layers.Conv2D(16, 7, strides=4, activation="relu")(inputs)
model = keras.Model(inputs, keras.layers.Conv2D(16, 3, strides=2)(x))
feat = PretrainedFeaturizer(model, preprocess=lambda x: x / 255.0, batch_size=32).fit(paths)
feat.transform(paths[:64])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
out = feat.transform(paths)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before / 1024, peak / 1024, out.nbytes / 2**20, time.perf_counter() - start)
"""


def memory(sizes: list[int]) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_featurizer import make_jpegs

    print(f"{os.cpu_count()} CPUs; peak resident memory of transform, fresh process each")
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_jpegs(Path(tmp), max(sizes), scale=0.5)
        for n in sizes:
            listing = Path(tmp) / "paths.txt"
            listing.write_text("\n".join(paths[:n]))
            out = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(listing)],
                                 capture_output=True, text=True, check=True).stdout.split()
            warm, peak, rows, seconds = (float(v) for v in out[-4:])
            notebook = n * 224 * 224 * 3 * 4 / 2**20
            print(f"  {n:6d} images: peak {peak:7.0f} MiB (after warm-up {warm:7.0f} MiB, "
                  f"output {rows:5.1f} MiB), {seconds:6.1f} s; notebook array alone "
                  f"{notebook:7.0f} MiB")


def dask(n: int, backbone: str, partition_size: int) -> None:
    from bench_featurizer import make_jpegs
    from distributed import Client, LocalCluster

    from skmtl import PretrainedFeaturizer
    from skmtl.distributed import featurize_on_dask

    with tempfile.TemporaryDirectory() as tmp:
        paths = make_jpegs(Path(tmp), n)
        feat = PretrainedFeaturizer(backbone, batch_size=32).fit(paths)
        feat.transform(paths[:32])
        start = time.perf_counter()
        local = feat.transform(paths)
        one = time.perf_counter() - start
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            featurize_on_dask(feat, paths[:128], client=client, partition_size=64)  # warm
            start = time.perf_counter()
            out = featurize_on_dask(feat, paths, client=client,
                                    partition_size=partition_size)
            two = time.perf_counter() - start
    import numpy as np

    np.testing.assert_allclose(out, local, rtol=1e-4, atol=1e-4)
    print(f"{backbone}, {n} JPEGs, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"  one process transform          {one:7.2f} s  {n / one:7.1f} images/s")
    print(f"  featurize_on_dask, 2 workers    {two:7.2f} s  {n / two:7.1f} images/s "
          f"(partitions of {partition_size})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    mem = sub.add_parser("memory")
    mem.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    dsk = sub.add_parser("dask")
    dsk.add_argument("--n", type=int, default=256)
    dsk.add_argument("--backbone", default="efficientnet_lite0")
    dsk.add_argument("--partition-size", type=int, default=64)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    if args.what == "memory":
        memory(args.sizes)
    else:
        dask(args.n, args.backbone, args.partition_size)


if __name__ == "__main__":
    main()
