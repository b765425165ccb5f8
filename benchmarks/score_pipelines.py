"""Score whole make_transfer_pipeline models on the shared sets, images to probabilities.

    python benchmarks/score_pipelines.py --cache /tmp/skmtl-bench/cache [--data ../shared/data] \
        [--models "lite0 + lite1, multibranch"]

cats_dogs: fit on train/, score on val/. cat_breeds: ``cross_val_predict`` with stratified
5-fold CV (shuffled, seed 0). Models: each single backbone and the concatenation of
Lite0 and Lite1 with the logistic head, and the concatenation with the multi-branch head
at its defaults. With the cache of benchmarks/shared_features.py no feature is computed
again; the figures go to docs/measurements.md.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from shared_features import shared_sets  # benchmarks/: the same loader as featurising
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import StratifiedKFold, cross_val_predict

import skmtl

MODELS = {
    "lite0, logistic": (["efficientnet_lite0"], "logistic"),
    "lite1, logistic": (["efficientnet_lite1"], "logistic"),
    "lite0 + lite1, logistic": (["efficientnet_lite0", "efficientnet_lite1"], "logistic"),
    "lite0 + lite1, multibranch": (["efficientnet_lite0", "efficientnet_lite1"], "multibranch"),
}


def scores(y, proba, classes) -> str:
    acc = accuracy_score(y, classes[proba.argmax(axis=1)])
    return f"{100 * acc:.2f}% / {log_loss(y, proba, labels=classes):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--models", default=";".join(MODELS),
                        help="';'-separated names of the rows to score (default: all)")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.models.split(";")]
    unknown = sorted(set(chosen) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {unknown}: choose from {list(MODELS)}")
    sets = shared_sets(args.data)
    train, val, breeds = sets["cats_dogs_train"], sets["cats_dogs_val"], sets["cat_breeds"]
    print("| model | cats_dogs val | cat_breeds 5-fold CV | seconds |")
    print("| --- | --- | --- | --- |")
    for name in chosen:
        backbones, head = MODELS[name]
        start = time.perf_counter()
        model = skmtl.make_transfer_pipeline(backbones, head=head, cache=args.cache)
        model.fit(train.path, train.label)
        dogs = scores(val.label, model.predict_proba(val.path), model.classes_)
        cv = StratifiedKFold(5, shuffle=True, random_state=0)
        proba = cross_val_predict(model, breeds.path, breeds.label, cv=cv,
                                  method="predict_proba")
        cats = scores(breeds.label, proba, np.unique(breeds.label))
        print(f"| {name} | {dogs} | {cats} | {time.perf_counter() - start:.0f} |", flush=True)


if __name__ == "__main__":
    main()
