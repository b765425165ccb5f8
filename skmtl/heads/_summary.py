"""One line on what a fitted head chose for itself (C, epochs kept), for progress output."""

from __future__ import annotations

from typing import Any

__all__ = ["describe_head", "final_head"]


def final_head(model: Any) -> Any:
    """The estimator at the end of ``model``: through pipelines and wrappers' fitted parts."""
    while True:
        steps = getattr(model, "steps", None)
        if steps:
            model = steps[-1][1]
        elif hasattr(model, "head_"):  # FlipTTAClassifier
            model = model.head_
        elif hasattr(model, "estimator_"):  # SkipUnreadable and other meta-estimators
            model = model.estimator_
        else:
            return model


def describe_head(model: Any) -> str:
    """``"C=0.316"``, ``"base C=0.1, epochs kept [12, 0, 7]"``, or ``""``."""
    head = final_head(model)
    parts = []
    if getattr(head, "C_", None) is not None:
        parts.append(f"C={head.C_:.3g}")
    if getattr(head, "linear_C_", None) is not None:
        parts.append(f"base C={head.linear_C_:.3g}")
    kept = getattr(head, "best_epoch_", None)
    if kept is not None:  # one epoch (FineTunedClassifier) or one per model
        parts.append(f"epoch kept {kept}" if isinstance(kept, int) else
                     f"epochs kept {list(kept)}")
    return ", ".join(parts)
