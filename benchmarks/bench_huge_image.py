"""Peak memory of decoding + resizing huge images with skmtl's own image loader.

    python benchmarks/bench_huge_image.py [--size 224] [--baseline REV] [--tmp /tmp/...]

Writes a 12000x12000 PNG, a 12000x9000 JPEG and four 6000x6000 PNGs to a temporary folder
(never to the repository), then, each case in a fresh subprocess, measures the peak RSS
increase (``resource.getrusage(RUSAGE_SELF).ru_maxrss`` after minus before) of
``skmtl.io.images.prepare_image(path, size, mode)``: one huge PNG, one huge JPEG ("squash"
and "center_crop"), and the four PNGs prepared by four threads at once (what the
featurizer's read-ahead does). ``--baseline REV`` also runs every case on the ``skmtl``
package of git revision REV (extracted with ``git archive`` to the temporary folder), to
compare before and after. Linux only (``ru_maxrss`` in KiB).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Run in a subprocess: print the peak RSS increase in MiB and the output's checksum.
_MEASURE = """
import resource, sys
from concurrent.futures import ThreadPoolExecutor
import numpy as np
from skmtl.io.images import prepare_image
size, mode, paths = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with ThreadPoolExecutor(len(paths)) as pool:
    out = list(pool.map(lambda p: prepare_image(p, size, mode), paths))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) / 1024, float(np.mean(out)))
"""


def _make_images(folder: Path) -> dict[str, list[str]]:
    """Smooth gradients + stripes + mild noise: realistic-ish, and compresses well."""
    import numpy as np
    from PIL import Image

    def picture(h: int, w: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
        x = np.linspace(0, 1, w, dtype=np.float32)[None, :]
        img = np.empty((h, w, 3), np.uint8)
        img[..., 0] = 255 * y * (1 - x) + 0 * x
        img[..., 1] = 127.5 + 127 * np.sin(40 * x + 25 * y)
        img[..., 2] = rng.integers(100, 140, (h, w), dtype=np.uint8)
        return img

    cases = {"png": [folder / "huge.png"], "jpg": [folder / "huge.jpg"],
             "png4": [folder / f"big{i}.png" for i in range(4)]}
    if not cases["png"][0].exists():
        Image.fromarray(picture(12000, 12000, 0)).save(cases["png"][0], compress_level=1)
    if not cases["jpg"][0].exists():
        Image.fromarray(picture(9000, 12000, 1)).save(cases["jpg"][0], quality=90)
    for i, path in enumerate(cases["png4"]):
        if not path.exists():
            Image.fromarray(picture(6000, 6000, 2 + i)).save(path, compress_level=1)
    return {k: [str(p) for p in v] for k, v in cases.items()}


def _measure(src: Path, size: int, mode: str, paths: list[str]) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    # cwd=src too: ``python -c`` puts the working directory first on sys.path.
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(size), mode, *paths],
                         env=env, cwd=src, check=True, capture_output=True, text=True).stdout
    peak, mean = out.split()
    return float(peak), float(mean)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--baseline", help="git revision to compare with")
    parser.add_argument("--tmp", default=None, help="folder for the images (default: new)")
    args = parser.parse_args()
    tmp = Path(args.tmp or tempfile.mkdtemp(prefix="skmtl_huge_"))
    tmp.mkdir(parents=True, exist_ok=True)
    print(f"images in {tmp}", flush=True)
    cases = _make_images(tmp)
    sources = {"this tree": REPO}
    if args.baseline:
        old = tmp / f"src_{args.baseline}"
        if not old.exists():
            old.mkdir()
            archive = subprocess.run(["git", "-C", str(REPO), "archive", args.baseline,
                                      "skmtl"], check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        sources = {args.baseline: old, **sources}
    runs = [("12000x12000 PNG", "png", "squash"), ("12000x9000 JPEG", "jpg", "squash"),
            ("12000x9000 JPEG", "jpg", "center_crop"),
            ("4 x 6000x6000 PNG, 4 threads", "png4", "squash")]
    print(f"{'case':32} {'mode':12} " + " ".join(f"{name:>22}" for name in sources))
    for label, case, mode in runs:
        cells = []
        for src in sources.values():
            peak, mean = _measure(src, args.size, mode, cases[case])
            cells.append(f"{peak:8.0f} MiB (mean {mean:6.2f})")
        print(f"{label:32} {mode:12} " + " ".join(f"{c:>22}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
