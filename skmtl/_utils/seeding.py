"""Seed Keras for one build or fit without leaking global random state."""

from __future__ import annotations

import random
from typing import Any

import numpy as np


class seeded:
    """Context manager: ``keras.utils.set_random_seed(seed)`` inside, then restore Python's
    and NumPy's global generators. ``seed=None`` does nothing.

    Unlike scikeras' own seeding, this never switches on TensorFlow's global
    op-determinism, which would make every later unseeded random op fail.
    """

    def __init__(self, seed: int | None) -> None:
        self.seed = seed

    def __enter__(self) -> None:
        if self.seed is not None:
            import keras

            self._states = (random.getstate(), np.random.get_state())  # noqa: NPY002
            keras.utils.set_random_seed(int(self.seed))

    def __exit__(self, *exc: Any) -> None:
        if self.seed is not None:
            random.setstate(self._states[0])
            np.random.set_state(self._states[1])  # noqa: NPY002
