"""scikit-learn tags for skmtl classifiers.

scikeras 0.13 predates scikit-learn 1.6's ``__sklearn_tags__``: a bare ``KerasClassifier``
reports no classifier tags, so ``is_classifier`` is False, ``cross_val_predict`` and
``GridSearchCV`` silently use plain (unstratified) K-fold, and ``StackingClassifier``
refuses it. This mixin states the tags explicitly.
"""

from __future__ import annotations

from sklearn.utils import ClassifierTags


class ClassifierTagsMixin:
    """Declare an estimator a classifier in scikit-learn >= 1.6 terms (put it first)."""

    _estimator_type = "classifier"  # read by older scikit-learn code

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier"
        tags.classifier_tags = ClassifierTags(multi_class=True, multi_label=False)
        tags.regressor_tags = None
        tags.transformer_tags = None
        tags.target_tags.required = True
        return tags
