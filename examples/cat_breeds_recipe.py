"""The whole Kaggle recipe on the cat breeds set: 5 folds x 2 views, then a submission.

    python examples/cat_breeds_recipe.py [--data ../shared/data] [--cache features/] [--quick]

Lite0 + Lite1 features, each through its own branch of a MultiBranchClassifier; one
model per fold, each trained on original and mirrored images and early-stopped on its
own held-out fold; predictions average the folds and both views. 20% of the labelled
images play the part of Kaggle's test set, so the submission can be scored here.
``--quick``: 30 images of each breed, 96 px, 3 folds, 2 member models of few epochs.
"""

from __future__ import annotations

from pathlib import Path

from _common import SHARED_DATA, parser, require
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split

import skmtl


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = parser(__doc__)
    p.add_argument("--data", type=Path, default=SHARED_DATA)
    args = p.parse_args(argv)
    root = require(args.data / "cat_breeds", "The cat breeds set")

    labels = skmtl.load_labels_csv(root / "labels.csv", root / "images")
    featurizer_params, head_params, cv = {}, {}, 5
    if args.quick:
        labels = labels.groupby("label").head(30)
        featurizer_params, cv = {"input_size": 96}, 3
        head_params = {"n_models": 2, "epochs": 30, "patience": 5}
    train, test = train_test_split(labels, test_size=0.2, stratify=labels.label,
                                   random_state=0)

    pipe = skmtl.make_transfer_pipeline(
        ["efficientnet_lite0", "efficientnet_lite1"], head="multibranch",
        cache=args.cache or args.out / "features", head_params=head_params,
        **featurizer_params)
    model = skmtl.KFoldEnsembleClassifier(skmtl.FlipTTAClassifier(pipe), cv=cv, verbose=True)
    model.fit(train.path, train.label)
    print(f"{cv}-fold CV: accuracy {model.cv_accuracy_:.3f}, log loss {model.cv_log_loss_:.3f}")

    proba = model.predict_proba(test.path)
    out = args.out / "cat_breeds_submission.csv"
    skmtl.write_submission(test.id, proba, model.classes_, out)
    scores = {"accuracy": accuracy_score(test.label, model.classes_[proba.argmax(1)]),
              "log_loss": log_loss(test.label, proba, labels=model.classes_)}
    print(f"held-out 'test' images: accuracy {scores['accuracy']:.3f}, "
          f"log loss {scores['log_loss']:.3f}; wrote {out}")
    return scores


if __name__ == "__main__":
    main()
