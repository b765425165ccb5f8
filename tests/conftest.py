"""Shared test fixtures: quiet TensorFlow, tiny images, the optional real data sets."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

#: ../shared/data next to the repository; absent on a fresh machine.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_data(name: str) -> Path:
    """Path of one shared data set, skipping the test when it is absent."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} is not available on this machine")
    return path


@pytest.fixture(scope="session")
def sample_photos() -> list[np.ndarray]:
    """Real photos that ship with scikit-learn (china, flower), uint8 RGB."""
    from sklearn.datasets import load_sample_images

    return [np.asarray(img) for img in load_sample_images().images]


@pytest.fixture(scope="module")
def competition(tmp_path_factory, sample_photos):
    """A tiny competition: train/<class>/, labels.csv + images/, test/, sample submission."""
    import pandas as pd
    from PIL import Image

    root = tmp_path_factory.mktemp("competition")
    rng = np.random.default_rng(0)
    rows = []
    for label, photo in zip(["temple", "flower"], sample_photos, strict=True):
        h, w = photo.shape[:2]
        for k in range(9):
            top, left = rng.integers(0, h // 3), rng.integers(0, w // 3)
            crop = Image.fromarray(photo[top : top + h // 2, left : left + w // 2])
            (root / "train" / label).mkdir(parents=True, exist_ok=True)
            crop.save(root / "train" / label / f"{label}{k}.jpg")
            (root / "images").mkdir(exist_ok=True)
            crop.save(root / "images" / f"{label}{k}.jpg")
            rows.append((f"{label}{k}", label))
            if k < 2:
                (root / "test").mkdir(exist_ok=True)
                crop.save(root / "test" / f"t_{label}{k}.jpg")
    pd.DataFrame(rows, columns=["id", "kind"]).to_csv(root / "labels.csv", index=False)
    ids = sorted(p.stem for p in (root / "test").iterdir())[::-1]
    pd.DataFrame({"id": ids, "temple": 0.5, "flower": 0.5}).to_csv(root / "sample.csv",
                                                                    index=False)
    return root
