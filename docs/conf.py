"""Sphinx configuration of the skmtl documentation.

Build (CI does, with warnings as errors)::

    sphinx-build -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # document this checkout, not another installed copy
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter

import skmtl  # noqa: E402

project = "skmtl"
author = "the skmtl authors"
copyright = "the skmtl authors"
version = release = skmtl.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinxarg.ext",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "README.md"]
templates_path = ["_templates"]
html_static_path = ["_static"]
html_theme = "alabaster"
html_theme_options = {"description": "Kaggle transfer learning as scikit-learn estimators"}

# API reference: one page per public object and module, generated at build time
# (docs/generated/ is not committed).
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_typehints = "none"  # numpydoc's "Parameters" sections carry the types
autodoc_member_order = "bysource"
autosummary_context = {"skmtl_public": sorted(set(skmtl.__all__) - {"__version__"})}

numpydoc_show_class_members = False  # members are listed by the autosummary templates
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

myst_heading_anchors = 3

# Offline builds: no intersphinx inventories are fetched unless asked for.
intersphinx_mapping = {}
if os.environ.get("SKMTL_DOCS_INTERSPHINX"):
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
    }


def _skip_member(app, what, name, obj, skip, options):
    """Leave out the ``set_*_request`` methods scikit-learn generates on every estimator
    (metadata routing): they are scikit-learn's, documented there, and their docstrings
    link to scikit-learn's own glossary."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
