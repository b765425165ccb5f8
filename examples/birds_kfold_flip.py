"""Two backbones + flips + 5-fold averaging, and a 100-class submission (birds).

    python examples/birds_kfold_flip.py [--data ../shared/data] [--cache DIR] [--quick]

The birds set of ``../shared/data`` is laid out as a Kaggle competition: ``train.csv``
(id,species) and ``train/``, an unlabelled ``test/`` folder and a ``sample_submission.csv``
with one probability column per species. The model is the competition recipe:
Lite0 + Lite1 features, the logistic head (C chosen by inner cross-validation, which
matters with 100 classes of 15-30 images), trained on original and mirrored images
(``FlipTTAClassifier``), one model per fold of a 5-fold split (``KFoldEnsembleClassifier``),
and at prediction the 5 folds x 2 views averaged. The submission follows the sample's rows
and columns and is scored against ``test_solution.csv`` as the leaderboard would
(:func:`skmtl.scoring.score_submission`). A reliability diagram of the test predictions
is saved.

The full run featurises about 23,600 images (2 backbones x 2 views x 5,902 photos): long
on 2 CPU cores the first time, minutes with a warm ``--cache``. ``--quick``: 10 species
(100 of their test images), 96 px, 3 folds, and a submission with the columns of those
species only (not the sample's).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from _common import SHARED_DATA, parser, reliability_figure, require

import skmtl
from skmtl.scoring import score_submission


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = parser(__doc__)
    p.add_argument("--data", type=Path, default=SHARED_DATA)
    args = p.parse_args(argv)
    root = require(args.data / "birds", "The birds competition")
    start = time.perf_counter()

    train = skmtl.load_labels_csv(root / "train.csv", root / "train")  # id, path, label
    test = skmtl.load_test_folder(root / "test")  # id, path
    solution = skmtl.load_labels_csv(root / "test_solution.csv", root / "test")
    sample, featurizer_params, cv = root / "sample_submission.csv", {}, 5
    if args.quick:  # 10 species; 100 test images of those species
        species = sorted(train.label.unique())[:10]
        train = train[train.label.isin(species)]
        solution = solution[solution.label.isin(species)].head(100)
        test = test[test.id.isin(solution.id)]
        sample, featurizer_params, cv = None, {"input_size": 96}, 3
    print(f"{len(train)} training images of {train.label.nunique()} species, "
          f"{len(test)} test images")

    pipe = skmtl.make_transfer_pipeline(
        ["efficientnet_lite0", "efficientnet_lite1"], head="logistic",
        cache=args.cache or args.out / "features", **featurizer_params)
    model = skmtl.KFoldEnsembleClassifier(skmtl.FlipTTAClassifier(pipe), cv=cv, verbose=True)
    model.fit(train.path, train.label)
    print(f"{cv}-fold CV (both views averaged): accuracy {model.cv_accuracy_:.3f}, "
          f"log loss {model.cv_log_loss_:.3f} ({time.perf_counter() - start:.0f} s)")

    proba = model.predict_proba(test.path)  # folds x views averaged
    out = args.out / "birds_submission.csv"
    skmtl.write_submission(test.id, proba, model.classes_, out, sample_submission=sample)
    scores = score_submission(out, solution[["id", "label"]])
    print(f"wrote {out}: test log loss {scores['log_loss']:.3f}, "
          f"accuracy {scores['accuracy']:.3f} ({time.perf_counter() - start:.0f} s)")
    truth = solution.set_index("id").label[test.id].to_numpy()
    reliability_figure(proba, truth, model.classes_, args.out / "birds_reliability.png")
    return {k: float(np.asarray(v)) for k, v in scores.items()}


if __name__ == "__main__":
    main()
