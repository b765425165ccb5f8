"""A fully cached ``transform`` of 10,000 and 100,000 images: the feature store alone.

    python benchmarks/bench_store.py [--sizes 10000 100000] [--dim 1280]

Writes N small distinct files (their content does not matter: every one is cached), fills
the cache of ``PretrainedFeaturizer("efficientnet_lite0", cache=...)`` with synthetic
rows of ``--dim`` floats (Lite0's pooled size) through :class:`FeatureCache`, then times
``transform(paths)``:

1. first transform in this process, stat index empty: every file is read and hashed,
   every shard opened and its checksum verified;
2. the same again (the stat index and the opened shards are known to this process);
3. a new Python process (the stat index read from disk, every shard verified again);
4. ``cache_verify=True`` (every file read and hashed, shards already verified).

No TensorFlow is imported: a fully cached transform does not need it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from skmtl import PretrainedFeaturizer
from skmtl.features.store import FeatureCache, digest_bytes

_CHILD = """
import sys, time, pickle
from skmtl import PretrainedFeaturizer
paths = open(sys.argv[1]).read().split("\\n")
feat = PretrainedFeaturizer("efficientnet_lite0", cache=sys.argv[2]).fit(paths[:1])
start, cpu = time.perf_counter(), time.process_time()
out = feat.transform(paths)
print(time.perf_counter() - start, time.process_time() - cpu, float(out[-1, 0]))
"""


def make_files(folder: Path, n: int) -> list[str]:
    paths = []
    for i in range(n):
        path = folder / f"{i // 1000:03d}" / f"{i}.jpg"
        if i % 1000 == 0:
            path.parent.mkdir()
        path.write_bytes(b"not really a jpeg %d" % i)
        paths.append(str(path))
    return paths


def fill_cache(feat: PretrainedFeaturizer, paths: list[str], dim: int) -> None:
    cache = FeatureCache(feat.cache, feat._cache_settings(), (dim,), flush_rows=4096)
    rng = np.random.default_rng(0)
    for start in range(0, len(paths), 4096):
        rows = rng.random((min(4096, len(paths) - start), dim), dtype=np.float32)
        for path, row in zip(paths[start : start + 4096], rows, strict=True):
            cache.save(digest_bytes(Path(path).read_bytes()), row)
    cache.flush()


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process): on a shared machine the wall time
    includes waiting for a core, the CPU time does not."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dim", type=int, default=1280)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, rows of {args.dim} float32")
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "files").mkdir()
            paths = make_files(Path(tmp) / "files", n)
            feat = PretrainedFeaturizer("efficientnet_lite0", cache=Path(tmp) / "cache")
            feat.fit(paths[:1])
            fill_cache(feat, paths, args.dim)
            time.sleep(2.1)  # files changed in the last 2 s are never remembered by stat
            shards = list((Path(tmp) / "cache").rglob("*.shard"))
            run = feat.transform
            rows = [("first transform (hash every file, verify shards)",
                     timed(lambda: run(paths)))]  # noqa: B023
            rows.append(("same process again (stat index)", timed(lambda: run(paths))))  # noqa: B023
            listing = Path(tmp) / "paths.txt"
            listing.write_text("\n".join(paths))
            child = subprocess.run([sys.executable, "-c", _CHILD, str(listing),
                                    str(Path(tmp) / "cache")], capture_output=True, text=True,
                                   check=True)
            wall, cpu = child.stdout.split()[:2]
            rows.append(("new process (stat index from disk, verify shards)",
                         (float(wall), float(cpu))))
            verify = PretrainedFeaturizer("efficientnet_lite0", cache=Path(tmp) / "cache",
                                          cache_verify=True).fit(paths[:1])
            rows.append(("cache_verify=True (hash every file)",
                         timed(lambda: verify.transform(paths))))  # noqa: B023
            size = sum(s.stat().st_size for s in shards)
            print(f"{n} images, {len(shards)} shards, {size / 2**20:.0f} MiB")
            for name, (wall, cpu) in rows:
                print(f"  {name:52s} {wall:7.3f} s wall {cpu:7.3f} s CPU  "
                      f"{n / wall:8.0f} images/s")
            print(f"  load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
