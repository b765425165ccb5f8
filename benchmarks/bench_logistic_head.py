"""Time the adaptive logistic head against fixed-C fits on the same features.

    python benchmarks/bench_logistic_head.py [--rows 5000 --features 3840 --classes 100]
    python benchmarks/bench_logistic_head.py --real /tmp/skmtl-bench --set birds_train

Synthetic features by default: ``classes`` Gaussian classes in a low-dimensional subspace
of ``features`` columns, plus noise, at a difficulty where the best C is neither tiny nor
huge (like pooled CNN features of a fine-grained set). ``--real`` reads the arrays saved by
``benchmarks/shared_features.py`` instead (Lite0 + Lite1 + Lite2 concatenated). Prints the
wall and CPU time of ``LogisticHeadClassifier(C="auto")`` (inner 3-fold CV along the C path,
then the final fit), of one fit at the C it chose, and of one fit at C=0.01 (the former
default); ``--repeat`` runs it all again.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from skmtl.heads.logistic import LogisticHeadClassifier

LITE = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def synthetic(rows: int, features: int, classes: int, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    latent = 64
    centres = rng.normal(size=(classes, latent))
    y = rng.integers(0, classes, rows)
    mixing = rng.normal(size=(latent, features)) / np.sqrt(latent)
    X = (centres[y] + 1.5 * rng.normal(size=(rows, latent))) @ mixing
    X += rng.normal(size=(rows, features))
    return np.maximum(X, 0).astype(np.float32), y  # ReLU-like, as pooled CNN features


def real(folder: Path, name: str) -> tuple:
    X = np.hstack([np.load(folder / f"{name}__{b}__flip0.npy") for b in LITE])
    return X, np.load(folder / f"{name}__labels.npy")


def timed(head: LogisticHeadClassifier, X: np.ndarray, y: np.ndarray) -> tuple:
    """(wall seconds, CPU seconds of this process) of ``head.fit(X, y)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    head.fit(X, y)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--features", type=int, default=3840)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--real", type=Path, default=None)
    parser.add_argument("--set", default="birds_train")
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    X, y = real(args.real, args.set) if args.real else synthetic(
        args.rows, args.features, args.classes)
    print(f"{X.shape[0]} rows x {X.shape[1]} features, {len(np.unique(y))} classes")
    for repeat in range(args.repeat):
        auto = LogisticHeadClassifier(n_jobs=args.n_jobs)
        t_auto = timed(auto, X, y)
        t_chosen = timed(LogisticHeadClassifier(C=auto.C_), X, y)
        t_fixed = timed(LogisticHeadClassifier(C=0.01), X, y)
        curve = ", ".join(f"{c:.3g}: {s:.4f}" for c, s in zip(auto.Cs_, auto.cv_log_loss_,
                                                              strict=True))
        print(f"run {repeat}: inner-CV log loss by C: {curve}")
        print(f"| adaptive (C={auto.C_:.3g}, {len(auto.Cs_)} values x 3 folds + final) "
              f"| {t_auto[0]:.1f} s ({t_auto[1]:.1f} CPU-s) |")
        print(f"| fixed C={auto.C_:.3g} (the chosen one) | {t_chosen[0]:.1f} s "
              f"({t_chosen[1]:.1f} CPU-s) |")
        print(f"| fixed C=0.01 (former default) | {t_fixed[0]:.1f} s ({t_fixed[1]:.1f} CPU-s) |")
        print(f"adaptive / fixed at the chosen C: {t_auto[0] / t_chosen[0]:.1f}x wall, "
              f"{t_auto[1] / t_chosen[1]:.1f}x CPU; / fixed C=0.01: "
              f"{t_auto[0] / t_fixed[0]:.1f}x wall (load {os.getloadavg()[0]:.1f})",
              flush=True)

if __name__ == "__main__":
    main()
