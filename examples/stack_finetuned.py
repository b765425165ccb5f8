"""Stack several fine-tuned backbones (the Dogs-vs-Cats recipe), offline, small settings.

    python examples/stack_finetuned.py [--data ../shared/data] [--set cats_dogs]
        [--n-train 200] [--input-size 128] [--epochs 1] [--cv 3] [--quick] [--out DIR]

Each base estimator is one EfficientNet-Lite backbone fine-tuned end to end
(``FineTunedClassifier``); scikit-learn's ``StackingClassifier`` learns how to combine
their out-of-fold probabilities. The defaults are cut down so that the run takes minutes
on a CPU: a stratified subsample of the training images, 128 px images, one fine-tuning
epoch (``--quick``: 40 images at 64 px, 2 folds). Scores are on the set's ``val/``
folder; the stack's probabilities on it are written to ``<out>/stack_finetuned_val.csv``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from sklearn.ensemble import StackingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split

import skmtl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, parser, require


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--data", type=Path, default=SHARED_DATA)
    p.add_argument("--set", default="cats_dogs")
    p.add_argument("--n-train", type=int, default=200,
                   help="stratified subsample of train/ (0: all)")
    p.add_argument("--input-size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--cv", type=int, default=3)
    args = p.parse_args()
    if args.quick:
        args.n_train, args.input_size, args.cv = 40, 64, 2

    require(args.data / args.set, f"the {args.set} set")

    train = skmtl.load_image_folder(args.data / args.set / "train")
    val = skmtl.load_image_folder(args.data / args.set / "val")
    if 0 < args.n_train < len(train):
        train, _ = train_test_split(train, train_size=args.n_train, stratify=train.label,
                                    random_state=0)
    settings = {"input_size": args.input_size, "epochs": args.epochs, "verbose": 0}
    backbones = ["efficientnet_lite0", "efficientnet_lite1"]
    stack = StackingClassifier(
        [(name, skmtl.FineTunedClassifier(name, **settings)) for name in backbones],
        final_estimator=LogisticRegression(), cv=args.cv, stack_method="predict_proba")
    started = time.perf_counter()
    stack.fit(train.path, train.label)
    print(f"fitted on {len(train)} images in {time.perf_counter() - started:.0f} s")
    # the stack fits its base models on label-encoded y: columns follow stack.classes_
    for name, model in [*stack.named_estimators_.items(), ("stack", stack)]:
        proba = model.predict_proba(val.path)
        print(f"{name}: accuracy "
              f"{accuracy_score(val.label, stack.classes_[proba.argmax(1)]):.4f}, "
              f"log loss {log_loss(val.label, proba, labels=stack.classes_):.4f}")
    out = args.out / "stack_finetuned_val.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    columns = {str(c): proba[:, k] for k, c in enumerate(stack.classes_)}
    import pandas as pd

    pd.DataFrame({"id": [Path(p).stem for p in val.path], **columns}).to_csv(out, index=False)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
