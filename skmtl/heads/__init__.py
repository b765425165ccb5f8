"""Heads: classifiers on a table of backbone features (they never see images).

- :class:`LogisticHeadClassifier` (``"logistic"``): standardised L2 logistic regression
  whose C is chosen by inner cross-validation (:mod:`skmtl.heads._logistic_cv`).
- :class:`MultiBranchClassifier` (``"multibranch"``): one Keras branch per backbone,
  several members averaged, a logistic base, temperature scaling.
- :func:`make_head`: either of them by name, or a clone of a given estimator.

Importing this package does not import TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

from skmtl.heads.factory import make_head
from skmtl.heads.logistic import LogisticHeadClassifier

__all__ = ["LogisticHeadClassifier", "MultiBranchClassifier", "make_head"]


def __getattr__(name: str) -> Any:
    if name == "MultiBranchClassifier":  # scikeras imports TensorFlow: load on demand
        return importlib.import_module("skmtl.heads.multibranch").MultiBranchClassifier
    raise AttributeError(f"module 'skmtl.heads' has no attribute {name!r}")
