"""``skmtl fit``: train K-fold models on a folder or labels CSV and save them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from skmtl.cli._options import add_featurizer_options

#: CLI defaults (docs/measurements.md, "Adaptive logistic head"): all three EfficientNet-Lite
#: backbones concatenated score best on every shared set, birds included; the logistic head
#: chooses its C by inner cross-validation; training on mirrored images did not lower the
#: log loss of the adaptive head on the sets measured, so flip TTA stays opt-in.
DEFAULT_BACKBONES = "efficientnet_lite0,efficientnet_lite1,efficientnet_lite2"
DEFAULT_HEAD = "logistic"
DEFAULT_TTA = "none"


def load_training_data(train: str | Path, images: str | Path | None = None) -> Any:
    """A DataFrame with ``path`` and ``label`` from a class-folder tree or a labels CSV."""
    from skmtl.io.datasets import load_image_folder, load_labels_csv

    train = Path(train)
    if train.suffix.lower() == ".csv":
        if images is None:
            raise ValueError("--images DIR is needed with a labels CSV.")
        return load_labels_csv(train, images)
    return load_image_folder(train)


def build_model(backbones: list[str], *, head: str = DEFAULT_HEAD, cv: int = 5,
                tta: str | None = None, cache: Any = None, verbose: bool = True,
                on_error: str = "raise", head_params: dict | None = None,
                weights: dict | None = None, seed: int = 0,
                **featurizer_params: Any) -> Any:
    """K-fold ensemble of (flip-TTA) transfer pipelines.

    The head is always wrapped in :class:`skmtl.SkipUnreadable` (a no-op on readable
    images), so that ``skmtl predict --on-error warn`` works with any saved model.
    ``head_params`` go to the head (unknown names are a ValueError), ``weights`` maps
    backbone names to their weights ("imagenet", None or a file), ``seed`` seeds the folds,
    the head and random backbone weights; ``featurizer_params`` (``input_size``,
    ``batch_size``, ``device``) go to every featurizer.
    """
    from skmtl.cli._options import set_featurizer_options
    from skmtl.ensemble import FlipTTAClassifier, KFoldEnsembleClassifier
    from skmtl.ensemble.unreadable import SkipUnreadable
    from skmtl.pipeline import make_head, make_transfer_pipeline

    head_params = dict(head_params or {})
    known = make_head(head).get_params(deep=False)
    unknown = sorted(set(head_params) - set(known))
    if unknown:
        raise ValueError(f"--head-param {unknown[0]!r} is not a parameter of the {head} head; "
                         f"it has: {', '.join(sorted(known))}.")
    if "random_state" in known:
        head_params.setdefault("random_state", seed)
    featurizer_params = {k: v for k, v in featurizer_params.items() if v is not None}
    model = make_transfer_pipeline(backbones, head=SkipUnreadable(make_head(head, **head_params)),
                                   cache=cache, verbose=verbose, on_error=on_error,
                                   random_state=seed, **featurizer_params)
    set_featurizer_options((f for _, f in model.named_steps["features"].transformer_list),
                           weights=weights)
    if tta == "flip":
        model = FlipTTAClassifier(model)
    return KFoldEnsembleClassifier(model, cv=cv, random_state=seed, verbose=verbose)


def oof_ids(data: Any, train: str | Path) -> list[str]:
    """Row ids of the training data: the CSV's ids, else the image's path below the class
    folders' root without its suffix (``<class>/<name>``)."""
    if "id" in data.columns:
        return [str(i) for i in data.id]
    root = Path(train).resolve()
    return [Path(p).relative_to(root).with_suffix("").as_posix() for p in data.path]


def run_fit(train: str | Path, out: str | Path, *, images: str | Path | None = None,
            backbones: str = DEFAULT_BACKBONES, head: str = DEFAULT_HEAD, cv: int = 5,
            tta: str | None = None, cache: str | None = None,
            verbose: bool = True, on_error: str = "raise", oof: str | Path | None = None,
            head_params: dict | None = None, weights: Any = None, seed: int = 0,
            input_size: Any = None, batch_size: int | None = None,
            device: str | None = None) -> dict[str, float]:
    """Fit, print and return the CV scores, and save the fitted model with joblib.

    The model's SHA-256 goes to ``<out>.sha256``, which ``skmtl predict`` checks before
    loading the model. With ``on_error="warn"``, unreadable images are left out of
    training with a warning naming them. ``oof`` is a CSV for the out-of-fold
    probabilities: ``id`` (see :func:`oof_ids`) and one column per class, for blending.
    ``weights`` is a list of ``--weights`` items or a dict (backbone -> weights).
    """
    from skmtl.cli._model_file import save_model
    from skmtl.cli._options import parse_weights

    names = [b.strip() for b in backbones.split(",") if b.strip()]
    if not isinstance(weights, dict):
        weights = parse_weights(weights, names)
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"--batch-size {batch_size}: give a positive number of images.")
    model = build_model(names, head=head, cv=cv, tta=tta, cache=cache, verbose=verbose,
                        on_error=on_error, head_params=head_params, weights=weights,
                        seed=seed, input_size=input_size, batch_size=batch_size,
                        device=device)
    data = load_training_data(train, images)
    model.fit(data.path, data.label)
    out = Path(out)
    save_model(model, out)
    scores = {"log_loss": model.cv_log_loss_, "accuracy": model.cv_accuracy_,
              "n_images": len(data)}
    if oof is not None:
        from skmtl.submission import write_submission

        write_submission(oof_ids(data, train), model.oof_proba_, model.classes_, oof)
    print(f"{cv}-fold CV on {len(data)} images: log loss {scores['log_loss']:.4f}, "
          f"accuracy {scores['accuracy']:.4f}; model saved to {out}"
          + ("" if oof is None else f", out-of-fold probabilities to {oof}"))
    return scores


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("fit", help="train K-fold models and save them")
    parser.add_argument("--train", required=True, help="class-folder tree or labels CSV")
    parser.add_argument("--images", help="image folder (with a labels CSV)")
    parser.add_argument("--backbones", default=DEFAULT_BACKBONES,
                        help=f"comma-separated backbone names (default: {DEFAULT_BACKBONES})")
    parser.add_argument("--head", default=DEFAULT_HEAD, choices=["logistic", "multibranch"])
    parser.add_argument("--cv", type=int, default=5, help="folds (default: 5)")
    parser.add_argument("--tta", default=DEFAULT_TTA, choices=["flip", "none"],
                        help="flip augmentation + test-time averaging (default: none)")
    parser.add_argument("--cache", help="per-image feature cache directory")
    parser.add_argument("--out", default="model.joblib",
                        help="where the model goes (and its checksum, to OUT.sha256)")
    parser.add_argument("--on-error", default="raise", choices=["raise", "warn"],
                        help="an unreadable image stops the fit (raise, the default) or is "
                             "left out with a warning naming it (warn)")
    parser.add_argument("--oof", metavar="CSV",
                        help="write the out-of-fold probabilities (id + one column per "
                             "class) for blending")
    parser.add_argument("--head-param", action="append", metavar="KEY=VALUE",
                        help="a head parameter, e.g. C=0.1 or Cs=0.01,0.1,1 (numbers, "
                             "true/false, none, lists with commas); repeat for several")
    parser.add_argument("--input-size", metavar="N|HxW",
                        help="image size fed to the backbones (default: each one's native)")
    add_featurizer_options(parser, at_fit=True)
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the folds, the head and random weights (default: 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from skmtl.cli._options import parse_head_params, parse_input_size

    run_fit(args.train, args.out, images=args.images, backbones=args.backbones,
            head=args.head, cv=args.cv, tta=None if args.tta == "none" else args.tta,
            cache=args.cache, verbose=not args.quiet, on_error=args.on_error,
            oof=args.oof, head_params=parse_head_params(args.head_param),
            weights=args.weights, seed=args.seed,
            input_size=parse_input_size(args.input_size), batch_size=args.batch_size,
            device=args.device)
    return 0
