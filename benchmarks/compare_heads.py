"""Score heads on features of the shared sets (from benchmarks/shared_features.py).

    python benchmarks/compare_heads.py --features /tmp/skmtl-bench \\
        --backbones efficientnet_lite0,efficientnet_lite1 \\
        logistic 'multibranch' 'multibranch={"units": 256}' 'kfold5:multibranch'

hymenoptera and cats_dogs: fit on train, score on val; birds: fit on train, score on the
competition's test images (their answers). cat_breeds: stratified 5-fold CV
(shuffled with seed 0, or with each of ``--cv-seeds``: repeated CV, one cell per seed and
their mean). ``--save-proba DIR`` keeps the predicted probabilities (``.npy``, one per head,
set and seed) for paired comparisons. Prints accuracy and log loss per set; ``--flip``
trains on original + mirrored features and averages both views at prediction (what
FlipTTAClassifier does).
A head is ``logistic``, ``multibranch``, either with ``={json params}``, optionally
prefixed ``kfoldK:`` to wrap it in ``KFoldEnsembleClassifier(cv=K)``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import StratifiedKFold

from skmtl import KFoldEnsembleClassifier
from skmtl.ensemble._pipeline_parts import fit_with_validation
from skmtl.heads import make_head

SETS = ("hymenoptera", "cats_dogs", "cat_breeds", "birds")
#: The held-out split of each train/held-out set (cat_breeds is cross-validated).
HELD_OUT = {"hymenoptera": "val", "cats_dogs": "val", "birds": "test"}


def load(folder: Path, split: str, backbones: list[str], flip: int) -> pd.DataFrame:
    parts = [pd.DataFrame(np.load(folder / f"{split}__{b}__flip{flip}.npy"),
                          columns=[f"{b}__{k}" for k in range(1280)]) for b in backbones]
    return pd.concat(parts, axis=1)


def train_and_held_out(folder: Path, name: str, backbones: list[str]) -> tuple:
    """(X, X_held_out, y, y_held_out) of a set's saved unflipped features."""
    held_out = HELD_OUT[name]
    return (load(folder, f"{name}_train", backbones, 0),
            load(folder, f"{name}_{held_out}", backbones, 0),
            np.load(folder / f"{name}_train__labels.npy"),
            np.load(folder / f"{name}_{held_out}__labels.npy"))


def make(spec: str):
    wrap = None
    if spec.startswith("kfold"):
        wrap, spec = spec.split(":", 1)
    name, _, params = spec.partition("=")
    head = make_head(name, **(json.loads(params) if params else {}))
    return KFoldEnsembleClassifier(head, cv=int(wrap[5:])) if wrap else head


def fit_predict(head, train: tuple, test: tuple, y, flip: bool) -> np.ndarray:
    if flip:
        # An image and its mirror are one group, as FlipTTAClassifier passes them.
        model = fit_with_validation(clone(head), pd.concat(train, ignore_index=True),
                                    np.concatenate([y, y]), None,
                                    groups=np.tile(np.arange(len(y)), 2))
        return (model.predict_proba(test[0]) + model.predict_proba(test[1])) / 2
    return clone(head).fit(train[0], y).predict_proba(test[0])


def score(head, folder: Path, data_set: str, backbones: list[str], flip: bool,
          cv_seed: int = 0) -> tuple:
    """(accuracy, log loss, predicted probabilities) of ``head`` on ``data_set``."""
    views = (0, 1) if flip else (0,)
    if data_set in HELD_OUT:
        held_out = HELD_OUT[data_set]
        train = [load(folder, f"{data_set}_train", backbones, v) for v in views]
        val = [load(folder, f"{data_set}_{held_out}", backbones, v) for v in views]
        y, y_val = (np.load(folder / f"{data_set}_{s}__labels.npy") for s in ("train", held_out))
        proba = fit_predict(head, train, val, y, flip)
        classes = np.unique(y)
        return (accuracy_score(y_val, classes[proba.argmax(1)]),
                log_loss(y_val, proba, labels=classes), proba)
    X = [load(folder, data_set, backbones, v) for v in views]
    y = np.load(folder / f"{data_set}__labels.npy")
    classes = np.unique(y)
    proba = np.zeros((len(y), len(classes)))
    for train, test in StratifiedKFold(5, shuffle=True, random_state=cv_seed).split(X[0], y):
        proba[test] = fit_predict(head, [x.iloc[train] for x in X],
                                  [x.iloc[test] for x in X], y[train], flip)
    return accuracy_score(y, classes[proba.argmax(1)]), log_loss(y, proba, labels=classes), proba


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("heads", nargs="+")
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--backbones", default="efficientnet_lite0,efficientnet_lite1")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--flip", action="store_true")
    parser.add_argument("--cv-seeds", default="0", help="comma-separated, for cat_breeds")
    parser.add_argument("--save-proba", type=Path, default=None)
    args = parser.parse_args()
    backbones = args.backbones.split(",")
    cv_seeds = [int(s) for s in args.cv_seeds.split(",")]
    for spec in args.heads:
        cells = []
        start = time.perf_counter()
        for data_set in args.sets.split(","):
            scores = []
            for seed in cv_seeds if data_set == "cat_breeds" else [0]:
                acc, loss, proba = score(make(spec), args.features, data_set, backbones,
                                         args.flip, seed)
                scores.append((acc, loss))
                if args.save_proba is not None:
                    args.save_proba.mkdir(parents=True, exist_ok=True)
                    name = "".join(c if c.isalnum() else "_" for c in spec)
                    np.save(args.save_proba / f"{name}__{data_set}__cv{seed}.npy", proba)
            cells.append(", ".join(f"{100 * a:.2f}% / {v:.4f}" for a, v in scores))
            if len(scores) > 1:
                acc, loss = np.mean(scores, axis=0)
                cells[-1] += f" (mean {100 * acc:.2f}% / {loss:.4f})"
        print(f"| {spec} | " + " | ".join(cells) + f" | {time.perf_counter() - start:.0f} s |",
              flush=True)


if __name__ == "__main__":
    main()
