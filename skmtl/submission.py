"""Kaggle submission files, checked before they are written.

Three common layouts: one probability column per class (dog-breed style), a single
probability column for the positive class (Dogs vs. Cats ``id,label``), or predicted labels.
With a ``sample_submission.csv`` the file follows its id order and column order and is
refused if ids or columns differ. Files are written atomically, and an invalid submission
is never written.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skmtl._utils.files import atomic_write
from skmtl._utils.messages import few

__all__ = ["validate_submission", "write_submission"]

KINDS = ("proba", "binary", "label")
_TOLERANCE = 1e-6



def _read_sample(sample: Any) -> pd.DataFrame:
    if isinstance(sample, pd.DataFrame):
        return sample
    path = Path(sample)
    if not path.is_file():
        raise FileNotFoundError(f"Sample submission '{path}' does not exist.")
    return pd.read_csv(path, dtype={0: str})


def _check_ids(ids: pd.Series, expected: Sequence[Any] | None = None) -> None:
    duplicated = ids[ids.duplicated()].unique()
    if len(duplicated):
        raise ValueError(f"Duplicate ids in the submission: {few(duplicated)}.")
    if expected is not None:
        missing = sorted(set(expected) - set(ids))
        extra = sorted(set(ids) - set(expected))
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"{len(missing)} ids of the sample submission are missing: "
                             f"{few(missing)}")
            if extra:
                parts.append(f"{len(extra)} ids are not in the sample submission: "
                             f"{few(extra)}")
            raise ValueError("; ".join(parts) + ".")


def _check_proba(values: np.ndarray, *, rows_sum_to_one: bool) -> None:
    if not np.isfinite(values).all():
        raise ValueError("Probabilities contain NaN or infinite values.")
    if values.min(initial=0) < 0 or values.max(initial=0) > 1:
        raise ValueError(
            f"Probabilities must lie in [0, 1]; found [{values.min():.4g}, {values.max():.4g}]."
        )
    if rows_sum_to_one:
        sums = values.sum(axis=1)
        bad = np.flatnonzero(np.abs(sums - 1) > _TOLERANCE)
        if len(bad):
            raise ValueError(
                f"{len(bad)} rows of probabilities do not sum to 1 (row {bad[0]} sums to "
                f"{sums[bad[0]]:.6g})."
            )


def _clip(proba: np.ndarray, eps: float, renormalise: bool) -> np.ndarray:
    if not 0 < eps < 0.5:
        raise ValueError(f"clip={eps} must lie in (0, 0.5).")
    clipped = np.clip(proba, eps, 1 - eps)
    return clipped / clipped.sum(axis=1, keepdims=True) if renormalise else clipped


def write_submission(
    ids: Sequence[Any],
    proba: Any,
    classes: Sequence[Any],
    path: str | os.PathLike,
    *,
    kind: str = "proba",
    sample_submission: Any = None,
    id_col: str = "id",
    label_col: str = "label",
    positive_class: Any = None,
    clip: float | None = None,
) -> pd.DataFrame:
    """Write a Kaggle submission file after checking it.

    Parameters
    ----------
    ids : sequence
        One id per row of ``proba`` (kept as strings, so ``"00123"`` keeps its zeros).
    proba : array-like of shape (n, n_classes), or (n,) for ``kind="binary"``
        Predicted probabilities, columns in the order of ``classes``.
    classes : sequence
        Class labels of the columns (``estimator.classes_``).
    path : path
        The CSV to write (parent folders are created).
    kind : {"proba", "binary", "label"}, default="proba"
        One probability column per class; one column with the probability of
        ``positive_class``; or the predicted label.
    sample_submission : path or DataFrame, optional
        Kaggle's ``sample_submission.csv``: its first column names the id column, rows
        follow its id order and columns its column order; ids and columns must match.
    id_col, label_col : str
        Column names when there is no sample submission.
    positive_class : label, optional
        For ``kind="binary"``; defaults to ``classes[1]`` (scikit-learn's convention).
    clip : float, optional
        Clip probabilities to ``[clip, 1 - clip]`` (and, for ``kind="proba"``, renormalise
        rows): a confident mistake then costs at most ``-log(clip)`` of log loss.

    Returns
    -------
    pandas.DataFrame
        What was written.

    Raises
    ------
    ValueError
        Wrong shapes, invalid probabilities, duplicate ids, or a mismatch with the sample
        submission. Nothing is written then.
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not one of {KINDS}.")
    ids = pd.Series([str(i) for i in ids], dtype=object)
    classes = list(classes)
    proba = np.asarray(proba, dtype=np.float64)
    if kind == "binary" and proba.ndim == 1:
        proba = np.column_stack([1 - proba, proba]) if len(classes) == 2 else proba[:, None]
    if proba.ndim != 2 or proba.shape != (len(ids), len(classes)):
        raise ValueError(
            f"proba has shape {proba.shape}; expected ({len(ids)} ids, {len(classes)} classes)."
        )
    _check_proba(proba, rows_sum_to_one=False)
    if clip is not None and kind != "label":
        proba = _clip(proba, clip, renormalise=kind == "proba")

    sample = None if sample_submission is None else _read_sample(sample_submission)
    if sample is not None:
        id_col = sample.columns[0]
    if kind == "proba":
        frame = pd.DataFrame(proba, columns=[str(c) for c in classes])
    elif kind == "binary":
        positive = classes[1] if positive_class is None else positive_class
        if positive not in classes:
            raise ValueError(f"positive_class={positive!r} is not one of the classes {classes}.")
        if sample is not None:
            label_col = sample.columns[1]
        frame = pd.DataFrame({label_col: proba[:, classes.index(positive)]})
    else:
        if sample is not None:
            label_col = sample.columns[1]
        frame = pd.DataFrame({label_col: np.asarray(classes, dtype=object)[proba.argmax(1)]})
    frame.insert(0, id_col, ids.to_numpy())

    if sample is not None:
        frame = _follow_sample(frame, sample, id_col)
    validate_submission(frame, sample, kind=kind)
    _write_atomically(frame, Path(path))
    return frame


def _follow_sample(frame: pd.DataFrame, sample: pd.DataFrame, id_col: str) -> pd.DataFrame:
    expected_ids = sample[id_col].astype(str)
    _check_ids(frame[id_col], list(expected_ids))
    missing = [c for c in sample.columns if c not in frame.columns]
    extra = [c for c in frame.columns if c not in sample.columns]
    if missing or extra:
        raise ValueError(
            "Columns differ from the sample submission: "
            + "; ".join(p for p in (missing and f"missing {few(missing)}",
                                    extra and f"not in the sample {few(extra)}") if p)
            + "."
        )
    return frame.set_index(id_col).loc[expected_ids].reset_index()[list(sample.columns)]


def validate_submission(
    submission: str | os.PathLike | pd.DataFrame,
    sample_submission: Any = None,
    *,
    kind: str = "proba",
) -> None:
    """Check a submission (a file or a DataFrame) the way :func:`write_submission` does.

    Raises
    ------
    ValueError
        Duplicate ids, ids or columns that differ from the sample, probabilities outside
        [0, 1], or (``kind="proba"``) rows that do not sum to 1.
    """
    frame = _read_sample(submission)
    id_col = frame.columns[0]
    sample = None if sample_submission is None else _read_sample(sample_submission)
    if sample is not None:
        if list(frame.columns) != list(sample.columns):
            raise ValueError(f"Columns {list(frame.columns)} differ from the sample "
                             f"submission's {list(sample.columns)}.")
        _check_ids(frame[id_col].astype(str), list(sample[sample.columns[0]].astype(str)))
    else:
        _check_ids(frame[id_col].astype(str))
    if kind == "label":
        return
    values = frame.iloc[:, 1:].to_numpy(dtype=np.float64)
    _check_proba(values, rows_sum_to_one=kind == "proba")


def _write_atomically(frame: pd.DataFrame, path: Path) -> None:
    with atomic_write(path, "w", newline="") as f:
        frame.to_csv(f, index=False, float_format="%.8g")
