"""Stacking per-backbone models with scikit-learn's StackingClassifier (Dogs vs. Cats).

    python examples/stacking.py [--data ../shared/data] [--cache features/] [--quick]

Each base estimator is one backbone with a logistic head; a logistic regression learns
how to combine their out-of-fold probabilities. All of them share one feature cache, so
the inner cross-validation of the stack computes each image's features once per backbone.
On the 600 training images and 400 validation images: the stack's log loss is 0.024
against 0.036 (Lite0) and 0.030 (Lite1) alone. ``--quick``: 30 images a class to train
on, 20 to score, at 96 px, 3 folds.
"""

from __future__ import annotations

from pathlib import Path

from _common import SHARED_DATA, parser, require
from sklearn.ensemble import StackingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss

import skmtl


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = parser(__doc__)
    p.add_argument("--data", type=Path, default=SHARED_DATA)
    args = p.parse_args(argv)
    root = require(args.data / "cats_dogs", "Dogs vs. Cats")

    train = skmtl.load_image_folder(root / "train")
    val = skmtl.load_image_folder(root / "val")
    featurizer_params, cv = {}, 5
    if args.quick:
        train, val = train.groupby("label").head(30), val.groupby("label").head(20)
        featurizer_params, cv = {"input_size": 96}, 3
    cache = args.cache or args.out / "features"
    backbones = ["efficientnet_lite0", "efficientnet_lite1"]
    stack = StackingClassifier(
        [(name, skmtl.make_transfer_pipeline(name, head="logistic", cache=cache,
                                             **featurizer_params))
         for name in backbones],
        final_estimator=LogisticRegression(),
        cv=cv,
        stack_method="predict_proba",
    )
    stack.fit(train.path, train.label)
    # the stack fits its base models on label-encoded y: columns follow stack.classes_
    scores = {}
    for name, model in [*stack.named_estimators_.items(), ("stack", stack)]:
        proba = model.predict_proba(val.path)
        scores[name] = log_loss(val.label, proba, labels=stack.classes_)
        print(f"{name}: accuracy "
              f"{accuracy_score(val.label, stack.classes_[proba.argmax(1)]):.4f}, "
              f"log loss {scores[name]:.4f}")
    args.out.mkdir(parents=True, exist_ok=True)
    proba = stack.predict_proba(val.path)
    skmtl.write_submission(range(1, len(val) + 1), proba[:, 1], stack.classes_,
                           args.out / "stacking_submission.csv", kind="binary")
    return scores


if __name__ == "__main__":
    main()
