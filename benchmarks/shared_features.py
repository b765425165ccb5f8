"""Featurise the shared data sets once, for the head measurements in docs/measurements.md.

    python benchmarks/shared_features.py --out /tmp/skmtl-bench [--data ../shared/data]

For every set (hymenoptera train/val, cats_dogs train/val, cat_breeds, birds train/test), every
EfficientNet-Lite backbone and both views (original, mirrored), runs
:class:`skmtl.PretrainedFeaturizer` through a per-image cache in ``OUT/cache`` and saves the
features as ``OUT/<set>__<backbone>__flip<0|1>.npy`` with the labels in
``OUT/<set>__labels.npy``. Rerunning computes nothing that is cached. Nothing is written
into the repository.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

import skmtl

BACKBONES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def shared_sets(data: Path) -> dict:
    """{set name: DataFrame with path and label} of the three shared sets."""
    sets = {}
    for name in ("hymenoptera", "cats_dogs"):
        for split in ("train", "val"):
            sets[f"{name}_{split}"] = skmtl.load_image_folder(data / name / split)
    sets["cat_breeds"] = skmtl.load_labels_csv(data / "cat_breeds" / "labels.csv",
                                               data / "cat_breeds" / "images")
    birds = data / "birds"
    if birds.is_dir():
        sets["birds_train"] = skmtl.load_labels_csv(birds / "train.csv", birds / "train")
        test = skmtl.load_labels_csv(birds / "test_solution.csv", birds / "test")
        sets["birds_test"] = test
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--backbones", default=",".join(BACKBONES))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sets = shared_sets(args.data)
    for set_name, frame in sets.items():
        np.save(args.out / f"{set_name}__labels.npy", frame.label.to_numpy(dtype=str))
    # Every original view first (what most comparisons need), then the mirrored ones.
    for flip in (False, True):
        for set_name, frame in sets.items():
            for backbone in args.backbones.split(","):
                target = args.out / f"{set_name}__{backbone}__flip{int(flip)}.npy"
                if target.exists():
                    continue
                start = time.perf_counter()
                featurizer = skmtl.PretrainedFeaturizer(
                    backbone, flip=flip, cache=args.out / "cache")
                features = featurizer.fit_transform(frame.path)
                np.save(target, features.astype(np.float32))
                print(f"{target.name}: {features.shape} in "
                      f"{time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
