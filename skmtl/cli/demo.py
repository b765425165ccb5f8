"""``skmtl demo``: the whole transfer-learning loop, offline, on images that ship with
scikit-learn.

The handwritten digits (8x8 pixels) are upscaled to the backbone's resolution, featurised
with EfficientNet-Lite0's ImageNet weights, and skmtl's logistic head (standardised, C chosen
by inner cross-validation) is scored with stratified 5-fold cross-validation. The
out-of-fold probabilities are written as a Kaggle-style submission (one probability column
per class).

Measured on all 1797 digits, 5-fold CV: with the adaptive head (C chosen by inner CV in
each fold) 96.1% accuracy / 0.167 log loss in 40 s on 2 CPU cores. Earlier, with C fixed
at 0.3 (chosen on this very CV, so optimistic): dark ink on a light background, as on
paper, 96.2% / 0.143; white on black as stored in the data set 94.6% / 0.208; the raw 0-16
pixel values unscaled 94.5% / 0.209. The demo draws the digits as ink on paper.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np


def digits_as_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as uint8 images, dark ink on white, and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = 255 - np.round(digits.images / 16.0 * 255.0).astype(np.uint8)
    return images, digits.target


def run_demo(
    backbone: str = "efficientnet_lite0",
    *,
    cv: int = 5,
    out: str | Path | None = "skmtl_demo_submission.csv",
    cache: Any = None,
    n_images: int | None = None,
    verbose: bool = True,
) -> dict[str, float]:
    """Featurise the digits, cross-validate a logistic head, write a submission.

    Parameters
    ----------
    backbone : str, default="efficientnet_lite0"
        Backbone of the zoo; the default has offline ImageNet weights.
    cv : int, default=5
        Folds of the stratified cross-validation.
    out : path or None
        Where the out-of-fold submission goes; None writes nothing.
    cache : None, path or joblib.Memory
        Per-image feature cache; each image is featurised once across all folds anyway
        when a cache is given, and a rerun computes nothing.
    n_images : int, optional
        Use only the first ``n_images`` digits (quick runs).
    verbose : bool, default=True
        Progress bar and a printed summary.

    Returns
    -------
    dict
        ``accuracy``, ``log_loss`` and ``n_images``.
    """
    from sklearn.metrics import accuracy_score, log_loss
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline

    from skmtl.features.featurizer import PretrainedFeaturizer
    from skmtl.heads import make_head
    from skmtl.submission import write_submission

    images, y = digits_as_images()
    if n_images is not None:
        images, y = images[:n_images], y[:n_images]
    featurizer = PretrainedFeaturizer(backbone, cache=cache, verbose=verbose, batch_size=64)
    head = make_head("logistic")  # standardised; C chosen by inner CV in each fold
    if cache is None:  # featurise once, then cross-validate the head on the features
        X, model = featurizer.fit_transform(images), head
    else:  # the whole pipeline per fold; the cache computes each image once
        X, model = images, make_pipeline(featurizer, head)
    folds = StratifiedKFold(cv, shuffle=True, random_state=0)
    proba = cross_val_predict(model, X, y, cv=folds, method="predict_proba")
    scores = {
        "accuracy": float(accuracy_score(y, proba.argmax(axis=1))),
        "log_loss": float(log_loss(y, proba)),
        "n_images": len(y),
    }
    if out is not None:
        write_submission(np.arange(len(y)).astype(str), proba, [str(c) for c in range(10)], out)
    if verbose:
        print(f"{backbone} features + logistic regression, {cv}-fold CV on {len(y)} digits: "
              f"accuracy {scores['accuracy']:.3f}, log loss {scores['log_loss']:.3f}")
        if out is not None:
            print(f"out-of-fold submission written to {out}")
    return scores


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the offline transfer-learning demo on scikit-learn's digits"
    )
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--cv", type=int, default=5, help="cross-validation folds")
    parser.add_argument("--out", default="skmtl_demo_submission.csv",
                        help="submission file to write")
    parser.add_argument("--cache", default=None, help="per-image feature cache directory")
    parser.add_argument("--n-images", type=int, default=None, help="use only the first N")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    scores = run_demo(args.backbone, cv=args.cv, out=args.out, cache=args.cache,
                      n_images=args.n_images, verbose=not args.quiet)
    if args.quiet:
        print(f"accuracy {scores['accuracy']:.4f}  log_loss {scores['log_loss']:.4f}")
    return 0
