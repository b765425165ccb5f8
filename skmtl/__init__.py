"""skmtl: the Kaggle transfer-learning playbook for image classification, as scikit-learn
estimators.

Data flows one way: image paths or arrays -> decoded, resized images -> backbone features
(through a per-image cache) -> a head -> probabilities -> a submission file.

TensorFlow is imported only when a model is built or trained, so ``import skmtl`` is fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public name -> module that defines it. Resolved on first access (PEP 562).
_EXPORTS = {
    "PretrainedFeaturizer": "skmtl.features.featurizer",
    "LogisticHeadClassifier": "skmtl.heads.logistic",
    "MultiBranchClassifier": "skmtl.heads.multibranch",
    "FlipTTAClassifier": "skmtl.ensemble.flip",
    "KFoldEnsembleClassifier": "skmtl.ensemble.kfold",
    "FineTunedClassifier": "skmtl.finetune.classifier",
    "SkipUnreadable": "skmtl.ensemble.unreadable",
    "make_transfer_pipeline": "skmtl.pipeline",
    "build_backbone": "skmtl.backbones",
    "list_backbones": "skmtl.backbones",
    "get_backbone_spec": "skmtl.backbones",
    "load_image_folder": "skmtl.io.datasets",
    "load_labels_csv": "skmtl.io.datasets",
    "load_test_csv": "skmtl.io.datasets",
    "load_test_folder": "skmtl.io.datasets",
    "write_submission": "skmtl.submission",
    "validate_submission": "skmtl.submission",
    "ImageDecodeError": "skmtl.io.images",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'skmtl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
