"""What ``skmtl fit`` + ``skmtl predict`` score on a held-out set, from saved features.

    python benchmarks/kfold_heldout.py --features /tmp/skmtl-bench --set birds \\
        --backbones efficientnet_lite0 'logistic={"C": 0.01}' logistic

The CLI's model on features saved by ``benchmarks/shared_features.py``: a 5-fold
``KFoldEnsembleClassifier`` of the head, fitted on ``<set>_train`` and averaged on the
held-out split (birds: the competition's test images, scored against their answers).
Prints the 5-fold CV log loss, the held-out log loss and accuracy, the calibration error
of the averaged probabilities, the C each fold chose, and the wall time.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from compare_heads import HELD_OUT, make, train_and_held_out
from sklearn.metrics import accuracy_score, log_loss

from skmtl import KFoldEnsembleClassifier
from skmtl.heads._summary import describe_head
from skmtl.scoring import expected_calibration_error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("heads", nargs="+")
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--set", default="birds", choices=sorted(HELD_OUT))
    parser.add_argument("--backbones", default="efficientnet_lite0")
    args = parser.parse_args()
    backbones = args.backbones.split(",")
    X, X_test, y, y_test = train_and_held_out(args.features, args.set, backbones)
    for spec in args.heads:
        start = time.perf_counter()
        model = KFoldEnsembleClassifier(make(spec), cv=5).fit(X, y)
        proba = model.predict_proba(X_test)
        labels = np.searchsorted(model.classes_, y_test)
        chosen = sorted({describe_head(m) for m in model.estimators_})
        print(f"| {args.backbones} | {spec} | {model.cv_log_loss_:.4f} | "
              f"{100 * accuracy_score(y_test, model.classes_[proba.argmax(1)]):.2f}% / "
              f"{log_loss(y_test, proba, labels=model.classes_):.4f} | "
              f"{expected_calibration_error(proba, labels):.4f} | {'; '.join(chosen)} | "
              f"{time.perf_counter() - start:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
