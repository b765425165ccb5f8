"""What pyproject.toml promises holds in the installed environment."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())


def _requirement(name: str) -> Requirement:
    found = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    return next(r for r in found if r.name == name)


def test_scikit_learn_is_pinned_to_a_tested_range_that_includes_the_installed_release():
    spec = _requirement("scikit-learn").specifier
    assert any(s.operator == "<" for s in spec), "private APIs need an upper bound"
    assert spec.contains(version("scikit-learn")), (
        f"scikit-learn {version('scikit-learn')} is outside {spec}: test skmtl's use of its "
        "private APIs on it, then widen the range"
    )


def test_the_private_scikit_learn_apis_import():
    from skmtl._utils import sklearn_private

    for name in sklearn_private.__all__:
        assert callable(getattr(sklearn_private, name))
