"""Several backbones in one model: a multi-branch head on Lite0 + Lite1 (+ Lite2) features.

    python examples/multi_backbone.py [--dataset hymenoptera|digits] [--quick] [--out DIR]

``make_transfer_pipeline`` concatenates the features of each backbone in a ``FeatureUnion``
whose columns are named ``<backbone>__<k>``; ``MultiBranchClassifier`` finds one branch per
backbone from those names (Dense -> BatchNorm -> Dropout each), concatenates the branches
and ends in a softmax, on top of a frozen logistic regression of all the features. The
same features then go to the logistic head alone, for comparison: with a feature cache
(``--cache``, by default a folder under ``--out``) switching heads computes nothing again.

Writes the held-out predictions, the multi-branch head's training curves (one line per
member model, training and held-out loss per epoch) and its confusion matrix.

``--dataset hymenoptera`` (the default): ants vs bees from ``../shared/data``, trained on
``train/`` and scored on ``val/``, three backbones at their native sizes (about 3 minutes on
2 CPU cores). ``--dataset digits``: scikit-learn's digits, 2/3 for training and 1/3 held
out, so it runs anywhere. ``--quick``: a subset at 96 px, two backbones, two member models.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from _common import SHARED_DATA, confusion_matrix_figure, parser, require, training_curves_figure
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split

import skmtl
from skmtl.cli.demo import digits_as_images


def load(dataset: str, data: Path, quick: bool):
    """(X_train, y_train, X_test, y_test): image paths or arrays, and labels."""
    if dataset == "digits":
        images, y = digits_as_images()
        if quick:
            images, y = images[:300], y[:300]
        X_train, X_test, y_train, y_test = train_test_split(
            images, y, test_size=1 / 3, stratify=y, random_state=0)
        return X_train, y_train, X_test, y_test
    root = require(data / "hymenoptera", "The ants vs bees set")
    train = skmtl.load_image_folder(root / "train")
    val = skmtl.load_image_folder(root / "val")
    if quick:  # 30 images of each class to train on, 20 each to score
        train = train.groupby("label").head(30)
        val = val.groupby("label").head(20)
    return train.path.to_numpy(), train.label.to_numpy(), val.path.to_numpy(), val.label.to_numpy()


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    p = parser(__doc__)
    p.add_argument("--dataset", choices=["hymenoptera", "digits"], default="hymenoptera")
    p.add_argument("--data", type=Path, default=SHARED_DATA)
    args = p.parse_args(argv)
    start = time.perf_counter()
    X_train, y_train, X_test, y_test = load(args.dataset, args.data, args.quick)

    backbones = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
    featurizer_params = {}
    head_params = {}
    if args.quick:
        backbones = backbones[:2]
        featurizer_params = {"input_size": 96}
        head_params = {"n_models": 2, "epochs": 40, "patience": 5}
    cache = args.cache or args.out / "features"
    pipe = skmtl.make_transfer_pipeline(backbones, head="multibranch", cache=cache,
                                        head_params=head_params, **featurizer_params)
    results = {}
    for name, head in [("multi-branch", pipe.named_steps["head"]),
                       ("logistic", skmtl.LogisticHeadClassifier())]:
        pipe.set_params(head=head)
        pipe.fit(X_train, y_train)  # features from the cache after the first head
        proba = pipe.predict_proba(X_test)
        classes = pipe.classes_
        results[name] = {"accuracy": accuracy_score(y_test, classes[proba.argmax(1)]),
                         "log_loss": log_loss(y_test, proba, labels=classes)}
        print(f"{' + '.join(backbones)}, {name} head: held-out accuracy "
              f"{results[name]['accuracy']:.3f}, log loss {results[name]['log_loss']:.3f} "
              f"({time.perf_counter() - start:.0f} s)")
        if name == "multi-branch":
            fitted = pipe.named_steps["head"]
            args.out.mkdir(parents=True, exist_ok=True)
            skmtl.write_submission(np.arange(len(proba)), proba, classes,
                                   args.out / "multibranch_heldout.csv")
            training_curves_figure(fitted.histories_, args.out / "multibranch_training.png")
            confusion_matrix_figure(y_test, classes[proba.argmax(1)], classes,
                                    args.out / "multibranch_confusion.png")
    return results


if __name__ == "__main__":
    main()
