"""``skmtl finetune``: fine-tune a backbone end to end on a folder or labels CSV, and save it.

The saved model is a :class:`skmtl.FineTunedClassifier` (with its checksum file), so
``skmtl predict --model`` writes a submission from it like from a ``skmtl fit`` model.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def trainable_layers_arg(value: str) -> int | str:
    """``--trainable-layers``: a count or ``all``."""
    if value == "all":
        return value
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'all', got {value!r}") from None
    if count < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0 or 'all', got {value!r}")
    return count


def run_finetune(train: str | Path, out: str | Path, *, images: str | Path | None = None,
                 backbone: str = "efficientnet_lite0", weights: str | None = "imagenet",
                 trainable_layers: int | str = "all", epochs: int = 4,
                 input_size: int | None = None, batch_size: int = 32,
                 validation_fraction: float = 0.1, tta: str | None = None,
                 random_state: int = 0, verbose: bool = True,
                 **params: Any) -> dict[str, Any]:
    """Fine-tune, print the best epoch's validation scores, and save the model.

    ``params`` are further :class:`skmtl.FineTunedClassifier` parameters. The model goes to
    ``out`` (joblib) and its SHA-256 to ``<out>.sha256``, which ``skmtl predict`` checks.
    Returns the best epoch's ``val_loss`` and ``val_accuracy``, ``n_images`` and ``epochs``.
    """
    from skmtl.cli._model_file import save_model
    from skmtl.cli.fit import load_training_data
    from skmtl.finetune import FineTunedClassifier

    data = load_training_data(train, images)
    model = FineTunedClassifier(
        backbone, weights=None if weights in (None, "none") else weights,
        trainable_layers=trainable_layers, epochs=epochs, input_size=input_size,
        batch_size=batch_size, validation_fraction=validation_fraction, tta=tta,
        random_state=random_state, verbose=int(verbose), **params)
    model.fit(data.path, data.label)
    out = Path(out)
    save_model(model, out)
    best = model.best_epoch_ - 1
    scores = {"val_loss": model.history_["val_loss"][best],
              "val_accuracy": model.history_["val_accuracy"][best],
              "n_images": len(data), "epochs": model.n_epochs_}
    print(f"fine-tuned {model.backbone_name_} on {len(data)} images ({scores['epochs']} "
          f"epochs): kept epoch {best + 1}, validation log loss {scores['val_loss']:.4f}, "
          f"accuracy {scores['val_accuracy']:.4f}; model saved to {out}")
    return scores


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "finetune", help="fine-tune a backbone end to end and save it",
        description="Fine-tune a pretrained backbone (new head first, then the top layers) "
                    "with early stopping on a stratified validation split, and save the "
                    "model for 'skmtl predict'. Slow on a CPU: see docs/measurements.md.")
    parser.add_argument("--train", required=True, help="class-folder tree or labels CSV")
    parser.add_argument("--images", help="image folder (with a labels CSV)")
    parser.add_argument("--backbone", default="efficientnet_lite0",
                        help="backbone name (default: efficientnet_lite0; see "
                             "'skmtl backbones')")
    parser.add_argument("--weights", default="imagenet",
                        help="imagenet (default), none (random), or a weights file")
    parser.add_argument("--trainable-layers", type=trainable_layers_arg, default="all",
                        help="backbone layers unfrozen after the head phase, from the top: "
                             "a number (0: the head alone) or all (default)")
    parser.add_argument("--epochs", type=int, default=4,
                        help="epochs after the head phase (default: 4)")
    parser.add_argument("--input-size", type=int, help="image size (default: the backbone's)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--validation-fraction", type=float, default=0.1,
                        help="share of the images held out for early stopping (default 0.1)")
    parser.add_argument("--tta", default="none", choices=["flip", "none"],
                        help="average predictions on mirrored images (default: none)")
    parser.add_argument("--seed", type=int, default=0, help="random_state (default: 0)")
    parser.add_argument("--out", default="model.joblib",
                        help="where the model goes (and its checksum, to OUT.sha256)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    run_finetune(args.train, args.out, images=args.images, backbone=args.backbone,
                 weights=args.weights, trainable_layers=args.trainable_layers,
                 epochs=args.epochs, input_size=args.input_size, batch_size=args.batch_size,
                 validation_fraction=args.validation_fraction,
                 tta=None if args.tta == "none" else args.tta, random_state=args.seed,
                 verbose=not args.quiet)
    return 0
