"""Score a submission against the answers the way a Kaggle leaderboard does.

Multi-class log loss as Kaggle computes it: class columns matched by name, each row's
probabilities clipped to [1e-15, 1 - 1e-15] and renormalised to sum to one, the mean
negative log-probability of the true class. Accuracy is the share of rows whose most
probable class is the true one. The expected calibration error (ECE) says how far the
confidence of the top class is from how often it is right.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from skmtl._utils.messages import few
from skmtl.heads._logistic_cv import multiclass_log_loss

__all__ = ["expected_calibration_error", "reliability_table", "score_submission"]

_EPS = 1e-15


def _table(frame: Any, what: str) -> pd.DataFrame:
    if isinstance(frame, pd.DataFrame):
        return frame
    if not os.path.isfile(frame):
        raise FileNotFoundError(f"{what} '{frame}' does not exist.")
    return pd.read_csv(frame, dtype={0: str})


def reliability_table(proba: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> pd.DataFrame:
    """Confidence of the top class against its accuracy, in equal-width confidence bins.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
    labels : ndarray of shape (n_samples,)
        Column index of each row's true class.
    n_bins : int

    Returns
    -------
    DataFrame
        One row per non-empty bin: ``low``, ``high``, ``count``, ``confidence`` (mean top
        probability), ``accuracy``.
    """
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == labels
    edges = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    rows = [(edges[b], edges[b + 1], int(np.sum(which == b)),
             float(confidence[which == b].mean()), float(correct[which == b].mean()))
            for b in range(n_bins) if np.any(which == b)]
    return pd.DataFrame(rows, columns=["low", "high", "count", "confidence", "accuracy"])


def expected_calibration_error(proba: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """Row-weighted mean ``|confidence - accuracy|`` over the bins of :func:`reliability_table`."""
    table = reliability_table(proba, labels, n_bins)
    gaps = (table.confidence - table.accuracy).abs()
    return float(np.average(gaps, weights=table["count"]))


def score_submission(submission: Any, solution: Any, *, n_bins: int = 15) -> dict[str, float]:
    """Log loss, accuracy and calibration of a per-class probability submission.

    Parameters
    ----------
    submission : path or DataFrame
        ``id`` (first column) and one probability column per class.
    solution : path or DataFrame
        ``id`` (first column) and the true class (second column).
    n_bins : int
        Confidence bins of the calibration error.

    Returns
    -------
    dict
        ``log_loss``, ``accuracy``, ``ece`` (expected calibration error), ``mean_confidence``
        and ``n_rows``.

    Raises
    ------
    ValueError
        Ids that differ between the files, a true class with no column, or probabilities
        that are not finite and non-negative.
    """
    sub = _table(submission, "Submission")
    sol = _table(solution, "Solution")
    sub_ids, sol_ids = sub.iloc[:, 0].astype(str), sol.iloc[:, 0].astype(str)
    if sub_ids.duplicated().any():
        raise ValueError(f"Duplicate ids in the submission: "
                         f"{few(sub_ids[sub_ids.duplicated()].unique())}.")
    missing = sorted(set(sol_ids) - set(sub_ids))
    extra = sorted(set(sub_ids) - set(sol_ids))
    if missing or extra:
        raise ValueError(f"The submission's ids differ from the solution's: {len(missing)} "
                         f"missing ({few(missing)}), {len(extra)} extra ({few(extra)}).")
    classes = [str(c) for c in sub.columns[1:]]
    truth = sol.iloc[:, 1].astype(str).to_numpy()
    unknown = sorted(set(truth) - set(classes))
    if unknown:
        raise ValueError(f"The submission has no column for the classes {few(unknown)}.")
    proba = pd.DataFrame(sub.iloc[:, 1:].to_numpy(dtype=float), index=sub_ids.to_numpy())
    proba = proba.loc[sol_ids.to_numpy()].to_numpy()
    if not np.isfinite(proba).all() or proba.min() < 0:
        raise ValueError("The submission's probabilities must be finite and non-negative.")
    proba = np.clip(proba, _EPS, 1 - _EPS)
    proba /= proba.sum(axis=1, keepdims=True)
    column = {c: i for i, c in enumerate(classes)}
    labels = np.array([column[t] for t in truth])
    return {
        "log_loss": multiclass_log_loss(proba, labels),
        "accuracy": float(np.mean(proba.argmax(axis=1) == labels)),
        "ece": expected_calibration_error(proba, labels, n_bins),
        "mean_confidence": float(proba.max(axis=1).mean()),
        "n_rows": len(labels),
    }
