"""The private scikit-learn APIs skmtl uses, imported in one place.

``_fit_context``, the ``_param_validation`` constraints and ``_safe_indexing`` are what
scikit-learn's own estimators use, but they are not public and may change in any release.
``pyproject.toml`` therefore pins scikit-learn to the range they were tested on
(``tests/test_layout.py`` checks the installed version against it), and an incompatible
release fails here, at import, with a message saying so rather than deep inside ``fit``.
"""

from __future__ import annotations

try:
    from sklearn.base import _fit_context
    from sklearn.utils import _safe_indexing
    from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
except ImportError as exc:  # pragma: no cover - depends on the installed release
    import sklearn

    raise ImportError(
        f"skmtl needs private scikit-learn APIs that scikit-learn {sklearn.__version__} "
        f"does not have ({exc}); install the range pyproject.toml declares."
    ) from exc

__all__ = ["HasMethods", "Interval", "StrOptions", "_fit_context", "_safe_indexing"]
