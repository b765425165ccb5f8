"""Paired difference of two heads' predictions on the same images (from compare_heads.py).

    python benchmarks/paired_difference.py --features /tmp/skmtl-bench --set cat_breeds \\
        /tmp/skmtl-proba/logistic__cat_breeds__cv{1,2,3}.npy \\
        -- /tmp/skmtl-proba/multibranch__cat_breeds__cv{1,2,3}.npy

The first half of the files are head A's, the second half head B's; each is paired with
the file at the same place in the other half (same images, same folds). Prints, over all
pairs pooled, the images only A or only B gets right, and the mean differences B - A in
accuracy and log loss with a 95% bootstrap interval (resampling whole images, keeping the
pairing).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def per_image(proba: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(correct, negative log-probability of the true class) of each image."""
    picked = np.clip(proba[np.arange(len(labels)), labels], 1e-15, None)
    return proba.argmax(1) == labels, -np.log(picked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="A files, then --, then B files")
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--set", default="cat_breeds", help="cat_breeds, or <set>_val")
    parser.add_argument("--boot", type=int, default=10000)
    args = parser.parse_args()
    half = len(args.files) // 2
    if len(args.files) % 2:
        parser.error("give as many B files as A files")
    a_files, b_files = args.files[:half], args.files[half:]
    y = np.load(args.features / f"{args.set}__labels.npy")
    labels = np.searchsorted(np.unique(y), y)
    a = [per_image(np.load(f), labels) for f in a_files]
    b = [per_image(np.load(f), labels) for f in b_files]
    correct = np.stack([x[0] for x in a]), np.stack([x[0] for x in b])
    loss = np.stack([x[1] for x in a]), np.stack([x[1] for x in b])
    d_acc = (correct[1].astype(float) - correct[0]).mean(axis=0)  # per image, over pairs
    d_loss = (loss[1] - loss[0]).mean(axis=0)
    rng = np.random.default_rng(0)
    draws = rng.integers(0, len(labels), (args.boot, len(labels)))
    print(f"pairs: {len(a)}, images: {len(labels)}")
    print(f"only A right: {int((correct[0] & ~correct[1]).sum())}, "
          f"only B right: {int((correct[1] & ~correct[0]).sum())} (summed over pairs)")
    for name, d, scale in (("accuracy", d_acc, 100), ("log loss", d_loss, 1)):
        low, high = np.percentile(d[draws].mean(axis=1), [2.5, 97.5])
        print(f"B - A {name}: {scale * d.mean():+.4f} "
              f"(95% bootstrap interval {scale * low:+.4f} to {scale * high:+.4f})")


if __name__ == "__main__":
    main()
