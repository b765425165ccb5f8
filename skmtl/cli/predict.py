"""``skmtl predict``: a submission file from a saved model and a test folder or CSV of ids.

A model file is a pickle, and loading a pickle runs code: only use model files from a
source you trust. ``skmtl fit`` writes ``<model>.sha256`` beside the model; ``predict``
refuses a model that no longer matches it, and warns when it is missing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from skmtl.cli._options import add_featurizer_options


def load_test_set(test: str | Path | None = None, test_csv: str | Path | None = None,
                  images: str | Path | None = None) -> Any:
    """``id`` and ``path`` of the test images: a folder, or a CSV of ids (its first column,
    as in ``sample_submission.csv``) with the folder holding their images."""
    from skmtl.io.datasets import load_test_csv, load_test_folder

    if (test is None) == (test_csv is None):
        raise ValueError("give the test images as --test DIR, or as --test-csv CSV with "
                         "--images DIR (not both).")
    if test is not None:
        if images is not None:
            raise ValueError("--images goes with --test-csv; --test is a folder of images.")
        return load_test_folder(test)
    if images is None:
        raise ValueError("--images DIR is needed with --test-csv.")
    return load_test_csv(test_csv, images)


def run_predict(model: str | Path, test: str | Path | None, out: str | Path, *,
                sample_submission: str | Path | None = None, kind: str = "proba",
                clip: float | None = None, quiet: bool = False,
                on_error: str | None = None, test_csv: str | Path | None = None,
                images: str | Path | None = None, cache: str | None = None,
                weights: Any = None, batch_size: int | None = None,
                device: str | None = None) -> Any:
    """Predict the test images and write a checked submission.

    ``model`` must come from a trusted source: loading it unpickles it, which runs code.
    Its checksum file ``<model>.sha256`` (written by ``skmtl fit``) is checked first: a
    model changed since is refused (ValueError); a missing one gives a warning.
    The test images are the folder ``test``, or the ids of ``test_csv`` found in
    ``images``. ``on_error`` ("raise" or "warn") overrides the saved featurizers' setting;
    with "warn", unreadable test images get the training class prior and are named on
    stderr. ``cache`` overrides the saved feature cache folder (``"none"``: no cache);
    ``weights`` (``--weights`` items), ``batch_size`` and ``device`` override the saved
    featurizers' settings.
    """
    from skmtl.cli._model_file import load_model
    from skmtl.cli._options import parse_weights, set_featurizer_options
    from skmtl.submission import write_submission

    if batch_size is not None and batch_size < 1:
        raise ValueError(f"--batch-size {batch_size}: give a positive number of images.")
    test_set = load_test_set(test, test_csv, images)
    estimator = load_model(model)
    featurizers = list(_featurizers(estimator))
    names = sorted({f.backbone for f in featurizers if isinstance(f.backbone, str)})
    params: dict[str, Any] = {"batch_size": batch_size, "device": device,
                              "on_error": on_error}
    if quiet:
        params["verbose"] = False
    set_featurizer_options(featurizers, weights=parse_weights(weights, names), **params)
    if cache is not None:
        for featurizer in featurizers:
            featurizer.cache = None if cache.lower() == "none" else cache
    if on_error == "warn" and not _skips_unreadable(estimator):
        raise ValueError(f"--on-error warn: the model in '{model}' has no SkipUnreadable "
                         "head (it was saved by an older skmtl); fit it again.")
    proba = estimator.predict_proba(test_set.path)
    frame = write_submission(test_set.id, proba, estimator.classes_, out, kind=kind,
                             sample_submission=sample_submission, clip=clip)
    failed = sorted({i for f in _featurizers(estimator) for i, *_ in f.failed_images_})
    if failed:
        from skmtl._utils.messages import few

        print(f"skmtl predict: warning: {len(failed)} test image(s) could not be read and "
              f"got the training class prior: "
              f"{few(f'{test_set.id[i]} ({test_set.path[i]})' for i in failed)}",
              file=sys.stderr)
    print(f"wrote {len(frame)} rows to {out}")
    return frame


def _models(estimator: Any) -> list:
    return list(getattr(estimator, "estimators_", [estimator]))


def _featurizers(estimator: Any) -> Iterator[Any]:
    from skmtl.ensemble import featurizers_in

    for model in _models(estimator):
        yield from featurizers_in(getattr(model, "features_", model))


def _skips_unreadable(estimator: Any) -> bool:
    from skmtl.ensemble.unreadable import SkipUnreadable

    def head(model: Any) -> Any:
        model = getattr(model, "head_", model)
        steps = getattr(model, "steps", None)
        return steps[-1][1] if steps else model

    return all(isinstance(head(m), SkipUnreadable) for m in _models(estimator))


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict", help="write a submission for a test folder",
        description="Write a submission for a test folder. The model file is a pickle: "
                    "loading it runs code, so only use model files from a source you "
                    "trust. Its checksum file MODEL.sha256, written by 'skmtl fit', is "
                    "checked before loading.")
    parser.add_argument("--model", required=True,
                        help="model saved by 'skmtl fit' (trusted source only: loading a "
                             "model file runs code); checked against MODEL.sha256")
    parser.add_argument("--test", help="folder of test images (ids: file names without "
                                       "suffix)")
    parser.add_argument("--test-csv", metavar="CSV",
                        help="test ids in the first column (e.g. sample_submission.csv), "
                             "their images in --images")
    parser.add_argument("--images", metavar="DIR", help="image folder (with --test-csv)")
    parser.add_argument("--sample-submission", help="Kaggle's sample_submission.csv")
    parser.add_argument("--kind", default="proba", choices=["proba", "binary", "label"],
                        help="one column per class, P(positive class), or labels")
    parser.add_argument("--clip", type=float, help="clip probabilities to [c, 1 - c]")
    parser.add_argument("--on-error", choices=["raise", "warn"],
                        help="an unreadable test image stops (raise) or gets the training "
                             "class prior, named in a warning (warn); default: as at fit")
    parser.add_argument("--cache", metavar="DIR",
                        help="feature cache folder instead of the one saved at fit; 'none' "
                             "for no cache (a read-only folder cannot take new images)")
    add_featurizer_options(parser, at_fit=False)
    parser.add_argument("--out", default="submission.csv")
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    run_predict(args.model, args.test, args.out, sample_submission=args.sample_submission,
                kind=args.kind, clip=args.clip, quiet=args.quiet, on_error=args.on_error,
                test_csv=args.test_csv, images=args.images, cache=args.cache,
                weights=args.weights, batch_size=args.batch_size, device=args.device)
    return 0
