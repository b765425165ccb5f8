"""Saving and loading fitted models, with a checksum file written next to each model.

A joblib model file is a pickle: loading it runs code chosen by whoever wrote it. ``fit``
writes ``<model>.sha256`` (``sha256sum`` format) beside the model; ``load_model`` checks
it *before* unpickling and refuses a model changed since. A model without a checksum file
is loaded with a warning that its origin cannot be checked. A checksum guards against a
file changed or damaged after ``fit``, not against someone who can rewrite both files:
load only model files from a source you trust.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

from skmtl._utils.files import atomic_write

__all__ = ["checksum_path", "file_sha256", "load_model", "save_model"]

#: What a model file is expected to be, for error messages.
EXPECTED = "a model saved by 'skmtl fit' (joblib)"


def checksum_path(model: str | os.PathLike) -> Path:
    """The checksum file of ``model``: the same name with ``.sha256`` appended."""
    model = Path(model)
    return model.with_name(model.name + ".sha256")


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_model(model: Any, path: str | os.PathLike) -> Path:
    """Dump ``model`` with joblib to ``path`` and write its checksum file; return ``path``."""
    import joblib

    path = Path(path)
    with atomic_write(path) as f:
        joblib.dump(model, f)
    with atomic_write(checksum_path(path), "w", encoding="utf-8") as f:
        f.write(f"{file_sha256(path)}  {path.name}\n")
    return path


def _recorded_sha256(sums: Path, model: Path) -> str:
    """The digest that ``sums`` records; a ValueError if it records none."""
    try:
        text = sums.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        text = ""
    words = text.split()
    if not words or len(words[0]) != 64 or any(c not in "0123456789abcdef" for c in words[0]):
        raise ValueError(f"Checksum file '{sums}' of model file '{model}' holds no SHA-256 "
                         "digest; expected the one 'skmtl fit' wrote.")
    return words[0]


def load_model(path: str | os.PathLike) -> Any:
    """Load a fitted classifier saved by :func:`save_model`, checking it first.

    Only load model files from a source you trust: unpickling runs code.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        The checksum file does not match (the model was changed since it was saved), or
        the file is not a joblib file, or holds something other than a fitted classifier.
        The message is one line naming the file and what was expected.
    """
    import joblib

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Model file '{path}' does not exist.")
    sums = checksum_path(path)
    if sums.is_file() and _recorded_sha256(sums, path) != file_sha256(path):
        raise ValueError(
            f"Model file '{path}' does not match its checksum file '{sums}': it was changed "
            "since 'skmtl fit' wrote it, so it is not loaded (model files are pickles, "
            "which run code when loaded)."
        )
    if path.stat().st_size == 0:
        raise ValueError(f"Model file '{path}' is empty; expected {EXPECTED}.")
    try:
        model = joblib.load(path)
    except Exception as exc:  # a pickle can fail in any way: report it as a bad file
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ValueError(f"Model file '{path}' could not be loaded ({type(exc).__name__}: "
                         f"{reason}); expected {EXPECTED}.") from exc
    if not (hasattr(model, "predict_proba") and hasattr(model, "classes_")):
        raise ValueError(f"Model file '{path}' holds a {type(model).__name__}, not a fitted "
                         f"classifier; expected {EXPECTED}.")
    if not sums.is_file():
        warnings.warn(
            f"Model file '{path}' has no checksum file '{sums.name}' beside it, so its origin "
            "cannot be checked; load only model files from a source you trust.",
            UserWarning, stacklevel=2)
    return model
