"""Where a MultiBranchClassifier fit spends its time, on saved features.

    python benchmarks/profile_multibranch.py --features /tmp/skmtl-bench --set birds \\
        --backbones efficientnet_lite0,efficientnet_lite1,efficientnet_lite2 \\
        [--per-class 10] ['{"n_models": 3}' ...]

Fits the head (defaults, or the JSON parameters given) on ``<set>_train`` and prints, as
they happen: the time choosing the logistic base's C (inner CV), each member's logistic
base, its Keras training (epochs run, seconds per epoch, steps per epoch, the epoch kept),
the averaging, the temperature, prediction on the held-out split and its log loss.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from bench_kfold_few_images import few_per_class
from compare_heads import HELD_OUT, train_and_held_out
from sklearn.metrics import accuracy_score, log_loss

import skmtl.heads.logistic as logistic
import skmtl.heads.multibranch as heads
from skmtl.heads._folds import training_batch_size


def timed(owner, name: str, label: str, times: dict) -> None:
    """Wrap ``owner.name`` so that each call adds its wall time to ``times[label]``."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent = time.perf_counter() - start
            times[label] = times.get(label, 0.0) + spent
            print(f"  {label}: {spent:.1f} s", flush=True)

    setattr(owner, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("params", nargs="*", default=["{}"])
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--set", default="birds", choices=sorted(HELD_OUT))
    parser.add_argument("--history", type=Path, help="save each fit's history_ (JSON)")
    parser.add_argument("--per-class", type=int, default=None,
                        help="train on this many rows of each class (seeded draw)")
    parser.add_argument("--backbones", default="efficientnet_lite0,efficientnet_lite1,"
                                                "efficientnet_lite2")
    args = parser.parse_args()
    backbones = args.backbones.split(",")
    X, X_test, y, y_test = train_and_held_out(args.features, args.set, backbones)
    if args.per_class:
        rows = few_per_class(y, args.per_class, seed=0)
        X, y = X.iloc[rows], y[rows]
    held_out = HELD_OUT[args.set]
    times: dict = {}
    timed(logistic, "choose_C", "choose linear_C (inner CV)", times)
    for name in ("set_logistic_base", "fit_temperature", "average_models"):
        if hasattr(heads, name):
            timed(heads, name, name, times)
    original_member = heads.MultiBranchClassifier._fit_member

    def member(self, model, X, y, *rest, **kwargs):
        before = times.get("set_logistic_base", 0.0)
        start = time.perf_counter()
        history, best = original_member(self, model, X, y, *rest, **kwargs)
        spent = time.perf_counter() - start - (times.get("set_logistic_base", 0.0) - before)
        epochs = len(history["loss"])
        batch = training_batch_size(self.batch_size, len(y))
        steps = int(np.ceil(len(y) / batch))
        times["keras training"] = times.get("keras training", 0.0) + spent
        print(f"  member: {epochs} epochs in {spent:.1f} s ({spent / epochs:.2f} s/epoch, "
              f"{steps} steps of {batch}), kept epoch {best}", flush=True)
        return history, best

    heads.MultiBranchClassifier._fit_member = member
    histories = []
    for spec in args.params:
        times.clear()
        head = heads.MultiBranchClassifier(**json.loads(spec))
        print(f"{args.set} {X.shape}, {len(np.unique(y))} classes: {spec}", flush=True)
        start, cpu = time.perf_counter(), time.process_time()
        head.fit(X, y)
        fit, cpu = time.perf_counter() - start, time.process_time() - cpu
        start = time.perf_counter()
        proba = head.predict_proba(X_test)
        predict = time.perf_counter() - start
        accounted = sum(v for k, v in times.items() if k != "keras training")
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
        print(f"  fit {fit:.1f} s wall, {cpu:.1f} CPU-s ({parts}, "
              f"other {fit - accounted - times.get('keras training', 0.0):.1f} s); "
              f"predict {predict:.1f} s; linear_C_ {head.linear_C_}", flush=True)
        print(f"  {held_out}: {100 * accuracy_score(y_test, head.classes_[proba.argmax(1)]):.2f}%"
              f" / {log_loss(y_test, proba, labels=head.classes_):.4f}", flush=True)
        histories.append({"params": spec, "history": head.histories_, "best": head.best_epoch_})
        if args.history:
            args.history.write_text(json.dumps(histories))


if __name__ == "__main__":
    main()
