"""Stacking per-backbone models with scikit-learn's StackingClassifier (Dogs vs. Cats).

    python examples/stacking.py [--data ../shared/data] [--cache features/]

Each base estimator is one backbone with a logistic head; a logistic regression learns
how to combine their out-of-fold probabilities. All of them share one feature cache, so
the inner cross-validation of the stack computes each image's features once per backbone.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sklearn.ensemble import StackingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss

import skmtl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--cache", default="features/")
    args = parser.parse_args()

    train = skmtl.load_image_folder(args.data / "cats_dogs" / "train")
    val = skmtl.load_image_folder(args.data / "cats_dogs" / "val")
    backbones = ["efficientnet_lite0", "efficientnet_lite1"]
    stack = StackingClassifier(
        [(name, skmtl.make_transfer_pipeline(name, head="logistic", cache=args.cache))
         for name in backbones],
        final_estimator=LogisticRegression(),
        cv=5,
        stack_method="predict_proba",
    )
    stack.fit(train.path, train.label)
    # the stack fits its base models on label-encoded y: columns follow stack.classes_
    for name, model in [*stack.named_estimators_.items(), ("stack", stack)]:
        proba = model.predict_proba(val.path)
        print(f"{name}: accuracy "
              f"{accuracy_score(val.label, stack.classes_[proba.argmax(1)]):.4f}, "
              f"log loss {log_loss(val.label, proba, labels=stack.classes_):.4f}")


if __name__ == "__main__":
    main()
