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
