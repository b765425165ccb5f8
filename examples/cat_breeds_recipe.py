"""The whole Kaggle recipe on the cat breeds set: 5 folds x 2 views, then a submission.

    python examples/cat_breeds_recipe.py [--data ../shared/data] [--cache features/]

Lite0 + Lite1 features, each through its own branch of a MultiBranchClassifier; one
model per fold, each trained on original and mirrored images and early-stopped on its
own held-out fold; predictions average the folds and both views. 20% of the labelled
images play the part of Kaggle's test set, so the submission can be scored here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split

import skmtl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--cache", default="features/")
    parser.add_argument("--out", default="submission.csv")
    args = parser.parse_args()

    labels = skmtl.load_labels_csv(args.data / "cat_breeds" / "labels.csv",
                                   args.data / "cat_breeds" / "images")
    train, test = train_test_split(labels, test_size=0.2, stratify=labels.label,
                                   random_state=0)

    pipe = skmtl.make_transfer_pipeline(
        ["efficientnet_lite0", "efficientnet_lite1"], head="multibranch", cache=args.cache)
    model = skmtl.KFoldEnsembleClassifier(skmtl.FlipTTAClassifier(pipe), cv=5, verbose=True)
    model.fit(train.path, train.label)
    print(f"5-fold CV: accuracy {model.cv_accuracy_:.3f}, log loss {model.cv_log_loss_:.3f}")

    proba = model.predict_proba(test.path)
    skmtl.write_submission(test.id, proba, model.classes_, args.out)
    print(f"held-out 'test' images: accuracy "
          f"{accuracy_score(test.label, model.classes_[proba.argmax(1)]):.3f}, "
          f"log loss {log_loss(test.label, proba, labels=model.classes_):.3f}; "
          f"wrote {args.out}")


if __name__ == "__main__":
    main()
