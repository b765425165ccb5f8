"""Learning-rate schedules of the fine-tuning phases, as multipliers of a base rate.

Each is a plain function of the step, so tests can check its values and the training loop
sets every layer group's optimizer to ``base_rate * multiplier(step)``.
"""

from __future__ import annotations

import math

__all__ = ["SCHEDULES", "lr_multiplier"]

SCHEDULES = ("cosine", "one_cycle", "constant")


def _cos(progress: float, start: float, end: float) -> float:
    """From ``start`` (progress 0) to ``end`` (progress 1) along half a cosine."""
    return end + (start - end) * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0))) / 2


def lr_multiplier(schedule: str, step: int, total: int, warmup: float) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based) of ``total`` steps.

    - ``"cosine"``: linear warm-up over the first ``warmup`` fraction of the steps (from a
      tenth of the rate), then cosine decay to zero at ``total``.
    - ``"one_cycle"``: fastai's one cycle: cosine from 1/25 of the rate up to the rate over
      the first ``warmup`` fraction (at least a quarter if ``warmup`` is 0), then cosine
      down to 1/25 000 of it.
    - ``"constant"``: 1.
    """
    if schedule == "constant" or total <= 0:
        return 1.0
    warm = round(warmup * total)
    if schedule == "one_cycle":
        warm = warm or max(1, total // 4)
        if step < warm:
            return _cos(step / warm, 1 / 25, 1.0)
        return _cos((step - warm) / max(1, total - warm), 1.0, 1 / 25_000)
    if step < warm:
        return 0.1 + 0.9 * step / warm
    return _cos((step - warm) / max(1, total - warm), 1.0, 0.0)
