"""5-fold K-fold ensembles on a many-class, few-image set: time and held-out score.

    python benchmarks/bench_kfold_few_images.py --features /tmp/skmtl-bench \\
        --per-class 10 --backbones efficientnet_lite0,efficientnet_lite1 \\
        logistic multibranch

A stand-in for a competition of 100+ classes and 2-20 photos a class (issue 12's
120-class dog-breed set, 1,000 photos, which is not shared): ``--per-class`` training
photos of each of the 100 birds species (seeded draw from the saved ``birds_train``
features), the competition's 2,999 test photos as the held-out split. Each head is wrapped
in ``KFoldEnsembleClassifier(cv=5)``, as ``skmtl fit`` does, and prints the wall and CPU
seconds of the fit, the 5-fold CV log loss and the held-out accuracy / log loss.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from compare_heads import make, train_and_held_out
from sklearn.metrics import accuracy_score, log_loss


def few_per_class(y: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Sorted row positions of ``per_class`` rows of every class (all of a smaller one)."""
    rng = np.random.default_rng(seed)
    rows = [rng.permutation(np.flatnonzero(y == label))[:per_class] for label in np.unique(y)]
    return np.sort(np.concatenate(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("heads", nargs="+", help="as in compare_heads.py, without kfold")
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backbones", default="efficientnet_lite0,efficientnet_lite1")
    args = parser.parse_args()
    X, X_test, y, y_test = train_and_held_out(args.features, "birds",
                                              args.backbones.split(","))
    rows = few_per_class(y, args.per_class, args.seed)
    X, y = X.iloc[rows], y[rows]
    print(f"{len(y)} training rows x {X.shape[1]} features, {len(np.unique(y))} classes; "
          f"{len(y_test)} held-out rows; {os.cpu_count()} CPUs", flush=True)
    for spec in args.heads:
        model = make(f"kfold5:{spec}")
        wall, cpu = time.perf_counter(), time.process_time()
        model.fit(X, y)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        proba = model.predict_proba(X_test)
        cv = log_loss(y, model.oof_proba_, labels=model.classes_)
        print(f"| {spec} | {wall:.0f} s ({cpu:.0f} CPU-s) | {cv:.4f} | "
              f"{accuracy_score(y_test, model.classes_[proba.argmax(1)]):.2%} / "
              f"{log_loss(y_test, proba, labels=model.classes_):.4f} | "
              f"load {os.getloadavg()[0]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
