"""``skmtl predict``: a submission file from a saved model and a test folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def run_predict(model: str | Path, test: str | Path, out: str | Path, *,
                sample_submission: str | Path | None = None, kind: str = "proba",
                clip: float | None = None, quiet: bool = False) -> Any:
    """Predict the images of ``test`` and write a checked submission."""
    import joblib

    from skmtl.datasets import load_test_folder
    from skmtl.submission import write_submission

    model_path = Path(model)
    if not model_path.is_file():
        raise FileNotFoundError(f"Model file '{model_path}' does not exist.")
    estimator = joblib.load(model_path)
    test_set = load_test_folder(test)
    if quiet:
        _silence(estimator)
    proba = estimator.predict_proba(test_set.path)
    frame = write_submission(test_set.id, proba, estimator.classes_, out, kind=kind,
                             sample_submission=sample_submission, clip=clip)
    print(f"wrote {len(frame)} rows to {out}")
    return frame


def _silence(estimator: Any) -> None:
    from skmtl.ensemble import featurizers_in

    for model in getattr(estimator, "estimators_", [estimator]):
        inner = getattr(model, "features_", model)
        for featurizer in featurizers_in(inner):
            featurizer.verbose = False


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("predict", help="write a submission for a test folder")
    parser.add_argument("--model", required=True, help="model saved by 'skmtl fit'")
    parser.add_argument("--test", required=True, help="folder of test images")
    parser.add_argument("--sample-submission", help="Kaggle's sample_submission.csv")
    parser.add_argument("--kind", default="proba", choices=["proba", "binary", "label"],
                        help="one column per class, P(positive class), or labels")
    parser.add_argument("--clip", type=float, help="clip probabilities to [c, 1 - c]")
    parser.add_argument("--out", default="submission.csv")
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    run_predict(args.model, args.test, args.out, sample_submission=args.sample_submission,
                kind=args.kind, clip=args.clip, quiet=args.quiet)
    return 0
