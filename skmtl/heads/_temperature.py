"""Temperature scaling of class probabilities (the ``calibrate`` option of the head)."""

from __future__ import annotations

import numpy as np

__all__ = ["apply_temperature", "fit_temperature"]


def fit_temperature(held_out: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """The temperature T minimising the log loss of ``apply_temperature(proba, T)``.

    ``held_out``: (probabilities, true class indices) of rows the models did not train on.
    """
    from scipy.optimize import minimize_scalar

    proba = np.concatenate([p for p, _ in held_out]).astype(np.float64)
    labels = np.concatenate([y for _, y in held_out])
    rows = np.arange(len(labels))

    def loss(log_t: float) -> float:
        return -np.log(apply_temperature(proba, np.exp(log_t))[rows, labels]).mean()

    best = minimize_scalar(loss, bounds=(np.log(0.1), np.log(10.0)), method="bounded")
    return float(np.exp(best.x))


def apply_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Soften (T > 1) or sharpen (T < 1) probabilities: softmax(log(p) / T)."""
    if temperature == 1.0:
        return proba
    logits = np.log(np.clip(proba, 1e-12, None)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)
