"""Fine-tuned EfficientNet-Lite0 against frozen Lite0 features + the logistic head.

    python benchmarks/finetune_vs_frozen.py [--data ../shared/data] [--sets hymenoptera,cats_dogs]
        [--json results.json] [--param epochs=2 ...]

On each set: fit on ``train/``, score on ``val/`` (log loss and accuracy), both models on
the same split, with the wall time of fit + predict. The fine-tuned model uses
``FineTunedClassifier()``'s defaults unless ``--param name=value`` overrides one; its
per-epoch history is printed and saved with ``--json``. No feature cache: both models read
every image. The figures go to docs/measurements.md ("Fine-tuning").
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from sklearn.metrics import accuracy_score, log_loss

import skmtl


def score(name: str, model, train, val) -> dict:
    started = time.perf_counter()
    model.fit(train.path, train.label)
    fitted = time.perf_counter()
    proba = model.predict_proba(val.path)
    done = time.perf_counter()
    labels = model.classes_
    row = {"model": name, "log_loss": log_loss(val.label, proba, labels=labels),
           "accuracy": accuracy_score(val.label, labels[proba.argmax(1)]),
           "fit_s": fitted - started, "predict_s": done - fitted}
    print(f"{name}: val log loss {row['log_loss']:.4f}, accuracy {row['accuracy']:.4f}, "
          f"fit {row['fit_s']:.0f} s, predict {row['predict_s']:.0f} s", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--sets", default="hymenoptera,cats_dogs")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--param", action="append", default=[],
                        help="FineTunedClassifier parameter as name=value (Python literal)")
    parser.add_argument("--skip-frozen", action="store_true")
    args = parser.parse_args()
    params = {}
    for item in args.param:
        key, _, value = item.partition("=")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value
    results = []
    for name in args.sets.split(","):
        train = skmtl.load_image_folder(args.data / name / "train")
        val = skmtl.load_image_folder(args.data / name / "val")
        print(f"== {name}: {len(train)} train, {len(val)} val images", flush=True)
        rows = []
        if not args.skip_frozen:
            frozen = skmtl.make_transfer_pipeline("efficientnet_lite0", head="logistic")
            rows.append(score("frozen lite0 + logistic", frozen, train, val))
        tuned = skmtl.FineTunedClassifier("efficientnet_lite0", **params)
        rows.append(score(f"fine-tuned lite0 {params or 'defaults'}", tuned, train, val))
        rows[-1]["history"] = tuned.history_
        rows[-1]["best_epoch"] = tuned.best_epoch_
        results.append({"set": name, "rows": rows})
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
