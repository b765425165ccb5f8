"""Replace the last layer: train a new head on a labelled folder, predict a test folder,
write an ``id,label`` submission (Dogs vs. Cats style).

    python examples/submission_from_folder.py [--train DIR --test DIR] [--quick] [--out DIR]

The ImageNet classifier of the backbone is dropped (``include_top=False``: 1000 ImageNet
classes are not our classes) and a new head is trained on the pooled features: the
logistic head, C chosen by inner cross-validation. The test folder is a flat folder of
unlabelled images whose file names are the ids, and the submission has one row per image
with the probability of the positive class (``classes_[1]``), as Dogs vs. Cats wants.

Data, by default: Dogs vs. Cats from ``../shared/data/cats_dogs``: ``train/`` is the
labelled folder, and the images of ``val/`` are laid out as a flat test folder (links under
``--out``), so the submission can be scored against their labels. ``--quick``: an
offline stand-in built from scikit-learn's digits (0 = "cats", 1 = "dogs", written as PNG
files under ``--out``), at 96 px. ``--train``/``--test`` take your own folders.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import SHARED_DATA, confidently_wrong_figure, parser, require
from sklearn.metrics import accuracy_score, log_loss

import skmtl


def digits_folders(out: Path) -> tuple[Path, Path, pd.Series]:
    """train/<class>/*.png and a flat test/*.png from the digits 0 and 1, and the answers."""
    from PIL import Image

    from skmtl.cli.demo import digits_as_images

    images, y = digits_as_images()
    keep = np.flatnonzero(y < 2)[:200]
    answers = {}
    for n, i in enumerate(keep):
        label = ["cats", "dogs"][y[i]]
        if n % 4:  # three quarters to train on
            path = out / "train" / label / f"{i}.png"
        else:
            path = out / "test" / f"{i}.png"
            answers[str(i)] = label
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i]).save(path)
    return out / "train", out / "test", pd.Series(answers)


def flat_test_folder(val: Path, out: Path) -> tuple[Path, pd.Series]:
    """Lay the labelled ``val/<class>/*`` out as a flat, unlabelled test folder of links."""
    labelled = skmtl.load_image_folder(val)
    test = out / "test"
    test.mkdir(parents=True, exist_ok=True)
    answers = {}
    for n, (path, label) in enumerate(zip(labelled.path, labelled.label, strict=True)):
        link = test / f"{n + 1}{Path(path).suffix}"  # ids 1..n, as on Kaggle
        if not link.exists():
            os.symlink(path, link)
        answers[str(n + 1)] = label
    return test, pd.Series(answers)


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = parser(__doc__)
    p.add_argument("--train", type=Path, help="labelled folder, <class>/<image>")
    p.add_argument("--test", type=Path, help="flat folder of unlabelled test images")
    p.add_argument("--data", type=Path, default=SHARED_DATA)
    args = p.parse_args(argv)
    start = time.perf_counter()
    answers = None
    if (args.train is None) != (args.test is None):
        p.error("give both --train and --test, or neither")
    if args.train is not None:
        train_dir, test_dir = require(args.train, "--train"), require(args.test, "--test")
    elif args.quick:
        train_dir, test_dir, answers = digits_folders(args.out / "digits")
    else:
        root = require(args.data / "cats_dogs", "Dogs vs. Cats")
        train_dir = root / "train"
        test_dir, answers = flat_test_folder(root / "val", args.out / "cats_dogs")

    train = skmtl.load_image_folder(train_dir)  # columns path, label
    test = skmtl.load_test_folder(test_dir)  # columns id, path
    # New last layer: the ImageNet head is gone, a logistic head learns our two classes.
    model = skmtl.make_transfer_pipeline(
        "efficientnet_lite0", head="logistic", cache=args.cache,
        **({"input_size": 96} if args.quick else {}))
    model.fit(train.path, train.label)
    proba = model.predict_proba(test.path)
    classes = model.classes_
    out = args.out / "submission.csv"
    skmtl.write_submission(test.id, proba[:, 1], classes, out, kind="binary")
    print(f"trained on {len(train)} images of {list(classes)}, predicted {len(test)}: wrote "
          f"{out} (id,label = P({classes[1]})) in {time.perf_counter() - start:.0f} s")

    scores = {}
    if answers is not None:  # the "test" images are labelled here: score the submission
        truth = answers[test.id].to_numpy()
        scores = {"accuracy": accuracy_score(truth, classes[proba.argmax(1)]),
                  "log_loss": log_loss(truth, proba, labels=classes)}
        print(f"against the answers: accuracy {scores['accuracy']:.4f}, "
              f"log loss {scores['log_loss']:.4f}")
        confidently_wrong_figure(test.path.to_numpy(), proba, truth, classes,
                                 args.out / "submission_wrong.png", n=6)
    return scores


if __name__ == "__main__":
    main()
