"""make_head: a head by name, or a clone of the estimator given."""

from __future__ import annotations

from typing import Any

__all__ = ["make_head"]


def make_head(head: Any = "logistic", **params: Any) -> Any:
    """The head named by ``head``: ``"logistic"``, ``"multibranch"`` or an estimator.

    ``"logistic"`` is :class:`skmtl.LogisticHeadClassifier` (standardisation, then L2
    logistic regression with C chosen by inner cross-validation unless ``C`` is given);
    ``"multibranch"`` is :class:`skmtl.MultiBranchClassifier`. ``params`` go to the head;
    an estimator is cloned first, so the caller's object is never changed.
    """
    if not isinstance(head, str):
        from sklearn.base import clone

        return clone(head).set_params(**params)
    if head == "logistic":
        from skmtl.heads.logistic import LogisticHeadClassifier

        return LogisticHeadClassifier(**params)
    if head == "multibranch":
        from skmtl.heads.multibranch import MultiBranchClassifier

        return MultiBranchClassifier(**params)
    raise ValueError(f"head={head!r}: use 'logistic', 'multibranch' or an estimator.")
