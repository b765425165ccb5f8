"""Fine-tuning a pretrained backbone end to end: :class:`FineTunedClassifier`.

The estimator (:mod:`~skmtl.finetune.classifier`) is built from small private steps that a
subclass can override: the network (:mod:`._network`), the input pipeline
(:mod:`._pipeline`), the learning-rate schedules (:mod:`._schedule`), the training loop
(:mod:`._training`) and persistence in the Keras format (:mod:`._persist`). TensorFlow is
imported only when a model is built or trained.
"""

from skmtl.finetune.classifier import FineTunedClassifier

__all__ = ["FineTunedClassifier"]
