"""SkipUnreadable: a head that lets a pipeline get through unreadable images.

``PretrainedFeaturizer(on_error="warn")`` gives an unreadable image a row of NaN features
(and a warning naming the file). A plain head then fails on the NaN. Wrapped in
:class:`SkipUnreadable`, the head is fitted without those rows and, at predict time,
those rows get the class prior of the training rows, so that every test id still gets a
row in a submission. ``make_transfer_pipeline(..., on_error="warn")`` puts it in place.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.utils import get_tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from skmtl._utils.messages import few
from skmtl._utils.sklearn_private import HasMethods, _fit_context, _safe_indexing
from skmtl.ensemble._pipeline_parts import _fit_accepts, _indexable, fit_with_validation

__all__ = ["SkipUnreadable"]


def _nan_rows(X: Any) -> np.ndarray:
    """Boolean mask of the rows of a numeric table that hold a NaN."""
    values = np.asarray(X, dtype=np.float64)
    return np.isnan(values.reshape(len(values), -1)).any(axis=1)


def _row_names(X: Any, rows: np.ndarray) -> str:
    """``#3, #7`` (positions), with the index labels when X has a non-trivial index."""
    index = getattr(X, "index", None)
    names = []
    for i in rows:
        label = None if index is None else index[i]
        label = label.item() if isinstance(label, np.generic) else label
        names.append(f"#{i}" if label is None or label == i else f"#{i} (index {label!r})")
    return few(names, 10)


class SkipUnreadable(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """A classifier head that skips rows of unreadable images (rows of NaN features).

    ``PretrainedFeaturizer(on_error="warn")`` turns an image it cannot read into a row
    of NaN and warns naming the file. This wrapper makes such a pipeline usable:

    - ``fit`` drops the rows holding a NaN (and those of ``validation_data``), warns
      naming their positions, and fits a clone of ``estimator`` on the other rows;
    - ``predict_proba`` gives such rows the class prior ``class_prior_`` (the class
      frequencies of the rows fitted on), warns naming their positions and records
      them in ``failed_rows_``; the other rows get ``estimator``'s probabilities.

    Parameters
    ----------
    estimator : classifier
        The head, with ``fit`` and ``predict_proba``; cloned at fit.

    Attributes
    ----------
    estimator_ : classifier
        The fitted head.
    classes_ : ndarray of shape (n_classes,)
        Class labels (those of ``estimator_``).
    class_prior_ : ndarray of shape (n_classes,)
        Frequency of each class among the rows ``estimator_`` was fitted on.
    dropped_rows_ : list of int
        Positions, in the ``X`` given to ``fit``, of the rows left out for holding NaN.
    failed_rows_ : list of int
        Positions, in the ``X`` given to the last ``predict_proba``/``predict`` call, of
        the rows that got ``class_prior_``; empty after ``fit``.
    n_features_in_ : int
        Number of feature columns seen at fit.
    feature_names_in_ : ndarray of str
        Column names seen at fit, when ``X`` was a DataFrame with string column names.

    See Also
    --------
    skmtl.make_transfer_pipeline : builds the pipeline with this head for
        ``on_error="warn"``.

    Notes
    -----
    The rows are named by position (and by index label when ``X`` is a DataFrame whose
    index is not ``0..n-1``); the featurizer's own warning, raised just before, names the
    files. In a :class:`KFoldEnsembleClassifier` each fold model predicts the prior of its
    own training rows, so an unreadable test image gets the mean of the folds' priors.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skmtl import SkipUnreadable
    >>> X = np.array([[0.0], [1.0], [np.nan], [3.0], [4.0]])
    >>> y = np.array(["a", "a", "a", "b", "b"])
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # "1 row(s) hold NaN features ..."
    ...     head = SkipUnreadable(LogisticRegression()).fit(X, y)
    ...     proba = head.predict_proba(np.array([[np.nan], [4.0]]))
    >>> head.class_prior_
    array([0.5, 0.5])
    >>> proba[0]
    array([0.5, 0.5])
    >>> head.failed_rows_
    [0]
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict_proba"])],
    }

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def _check_X(self, X: Any, *, reset: bool) -> np.ndarray:
        """Check X's shape and columns; return the mask of rows holding a NaN."""
        values = validate_data(self, X, reset=reset, ensure_all_finite="allow-nan",
                               dtype="numeric")
        return np.isnan(values).any(axis=1)

    def _fit_accepts(self, name: str) -> bool:
        """Whether ``fit`` passes ``name`` on: when the wrapped head's ``fit`` takes it.

        Read by :func:`skmtl.ensemble._pipeline_parts.fit_with_validation`, so that
        held-out images are featurised for early stopping only when the head uses them.
        """
        return name in ("validation_data", "groups") and _fit_accepts(self.estimator, name)

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X: Any, y: Any, validation_data: tuple | None = None,
            groups: Any = None) -> SkipUnreadable:
        """Fit a clone of ``estimator`` on the rows without NaN.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Features; rows of unreadable images hold NaN.
        y : array-like of shape (n_samples,)
            Class labels.
        validation_data : (X_val, y_val), optional
            Held-out data for the head's early stopping, passed on (without its NaN rows)
            when the head's ``fit`` takes it.
        groups : array-like of shape (n_samples,), optional
            Groups of rows, passed on (without the NaN rows) when the head's ``fit``
            takes it.

        Returns
        -------
        self
        """
        if y is None:
            raise ValueError("SkipUnreadable requires y to be passed, but the target y is "
                             "None.")
        X = _indexable(X)
        bad = self._check_X(X, reset=True)
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        check_classification_targets(y)
        self.dropped_rows_ = [int(i) for i in np.flatnonzero(bad)]
        self.failed_rows_ = []
        if bad.all():
            raise ValueError(f"All {len(bad)} rows of X hold NaN features: no image could "
                             "be read (see the featurizer's warning for the files).")
        if self.dropped_rows_:
            warnings.warn(
                f"SkipUnreadable.fit: {len(self.dropped_rows_)} row(s) hold NaN features "
                f"(unreadable images) and are left out of training: "
                f"{_row_names(X, np.flatnonzero(bad))}. See dropped_rows_.",
                UserWarning, stacklevel=2)
        keep = np.flatnonzero(~bad)
        X_fit, y_fit = _safe_indexing(X, keep), y[keep]
        if groups is not None:
            groups = np.asarray(groups)[keep]
        if validation_data is not None:
            X_val, y_val = validation_data
            ok = np.flatnonzero(~_nan_rows(X_val))
            validation_data = (_safe_indexing(X_val, ok), np.asarray(y_val)[ok])
        self.estimator_ = fit_with_validation(clone(self.estimator), X_fit, y_fit,
                                              validation_data, groups)
        self.classes_ = self.estimator_.classes_
        counts = np.array([np.sum(y_fit == c) for c in self.classes_], dtype=np.float64)
        self.class_prior_ = counts / counts.sum()
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities; rows holding NaN get ``class_prior_``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        check_is_fitted(self, "estimator_")
        X = _indexable(X)
        bad = self._check_X(X, reset=False)
        proba = np.tile(self.class_prior_, (len(bad), 1))
        ok = np.flatnonzero(~bad)
        if len(ok):
            proba[ok] = self.estimator_.predict_proba(_safe_indexing(X, ok))
        self.failed_rows_ = [int(i) for i in np.flatnonzero(bad)]
        if self.failed_rows_:
            warnings.warn(
                f"SkipUnreadable: {len(self.failed_rows_)} row(s) hold NaN features "
                f"(unreadable images) and get the training class prior: "
                f"{_row_names(X, np.flatnonzero(bad))}. See failed_rows_.",
                UserWarning, stacklevel=2)
        return proba

    def predict(self, X: Any) -> np.ndarray:
        """Class with the highest probability (the most frequent class for NaN rows)."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator).input_tags
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = False
        tags.input_tags.string = inner.string
        return tags
