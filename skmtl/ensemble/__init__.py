"""Competition tricks as meta-estimators: flip test-time augmentation, K-fold averaging,
and leaving unreadable images out.

Each wraps a pipeline whose first steps featurise images with
:class:`~skmtl.PretrainedFeaturizer` (directly or inside a ``FeatureUnion``) and whose last
steps are the head, and splits it there (see :mod:`skmtl.ensemble._pipeline_parts`).
"""

from skmtl.ensemble._pipeline_parts import featurizers_in, split_features_and_head
from skmtl.ensemble.flip import FlipTTAClassifier
from skmtl.ensemble.kfold import KFoldEnsembleClassifier
from skmtl.ensemble.unreadable import SkipUnreadable

__all__ = ["FlipTTAClassifier", "KFoldEnsembleClassifier", "SkipUnreadable",
           "featurizers_in", "split_features_and_head"]
