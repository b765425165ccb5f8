"""Competition data layouts as DataFrames of image paths.

- ``root/<class>/<image>``: :func:`load_image_folder` (path, label);
- ``labels.csv`` (id -> class) plus an image folder: :func:`load_labels_csv` (id, path, label);
- an unlabeled test folder: :func:`load_test_folder` (id, path);
- a CSV of test ids (``sample_submission.csv``) plus an image folder: :func:`load_test_csv`.

Nothing is decoded here; problems a person must fix (missing files, duplicate ids, labels
without images) raise errors that name them, suspicious leftovers warn.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from skmtl._utils.messages import few

__all__ = [
    "IMAGE_EXTENSIONS",
    "load_image_folder",
    "load_labels_csv",
    "load_test_csv",
    "load_test_folder",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")



def _folder(root: str | os.PathLike) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Image folder '{root}' does not exist.")
    return root.resolve()


def _images_in(folder: Path, extensions: Sequence[str]) -> tuple[list[Path], list[Path]]:
    """(image files, other files) directly in ``folder``, hidden files skipped, sorted."""
    exts = {e.lower() for e in extensions}
    images, others = [], []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        (images if entry.suffix.lower() in exts else others).append(entry)
    return images, others


def _warn_others(others: list[Path], where: Path) -> None:
    if others:
        warnings.warn(f"Ignored {len(others)} non-image files in '{where}': "
                      f"{few([o.name for o in others])}.", UserWarning, stacklevel=3)


def load_image_folder(
    root: str | os.PathLike, *, extensions: Sequence[str] = IMAGE_EXTENSIONS
) -> pd.DataFrame:
    """Images in class sub-folders, ``root/<class>/<image>``.

    Parameters
    ----------
    root : path
        Folder with one sub-folder per class (files directly inside each).
    extensions : sequence of str
        File suffixes counted as images (case-insensitive).

    Returns
    -------
    pandas.DataFrame
        Columns ``path`` (absolute) and ``label`` (sub-folder name), sorted by label
        then path.
    """
    root = _folder(root)
    classes = [d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    if not classes:
        raise ValueError(f"'{root}' has no class sub-folders; for an unlabeled test folder "
                         "use load_test_folder.")
    rows, others = [], []
    for folder in classes:
        images, other = _images_in(folder, extensions)
        others += other
        if not images:
            warnings.warn(f"Class folder '{folder}' holds no images.", UserWarning, stacklevel=2)
        rows += [(str(p), folder.name) for p in images]
    _warn_others(others, root)
    return pd.DataFrame(rows, columns=["path", "label"])


def load_test_folder(
    root: str | os.PathLike, *, extensions: Sequence[str] = IMAGE_EXTENSIONS
) -> pd.DataFrame:
    """Unlabeled images of a test folder, with Kaggle ids (file names without suffix).

    Returns
    -------
    pandas.DataFrame
        Columns ``id`` and ``path``, sorted by id.
    """
    root = _folder(root)
    images, others = _images_in(root, extensions)
    _warn_others(others, root)
    if not images:
        raise ValueError(f"'{root}' holds no images ({', '.join(extensions)}).")
    frame = pd.DataFrame({"id": [p.stem for p in images], "path": [str(p) for p in images]})
    dup = frame.id[frame.id.duplicated()].unique()
    if len(dup):
        raise ValueError(f"Several files share the id {few(dup)} in '{root}' "
                         "(same name, different extension).")
    return frame.sort_values("id", kind="stable").reset_index(drop=True)


def load_test_csv(
    csv_path: str | os.PathLike, image_dir: str | os.PathLike, *, id_col: str | None = None
) -> pd.DataFrame:
    """Test ids from a CSV (its first column, as in ``sample_submission.csv``) and their
    images in ``image_dir``: ``<id>`` itself or ``<id><suffix>``.

    Returns
    -------
    pandas.DataFrame
        Columns ``id`` and ``path``, in CSV order (ids kept as strings).

    Raises
    ------
    ValueError
        An unknown column, duplicate ids, or ids without an image (the message names them).
    """
    csv_path, folder, table = _read_ids_csv(csv_path, image_dir, "Test ids file")
    id_col = table.columns[0] if id_col is None else id_col
    _check_columns(table, csv_path, id_col=id_col)
    ids = table[id_col].str.strip()
    if ids.duplicated().any():
        raise ValueError(f"Duplicate ids in '{csv_path.name}': {few(ids[ids.duplicated()])}.")
    paths = _image_of_each_id(ids, _images_by_name(folder), None, csv_path, folder)
    return pd.DataFrame({"id": list(ids), "path": [str(p) for p in paths]})


def load_labels_csv(
    csv_path: str | os.PathLike,
    image_dir: str | os.PathLike,
    *,
    id_col: str | None = None,
    label_col: str | None = None,
    ext: str | None = None,
) -> pd.DataFrame:
    """Labels from a CSV (id -> class) joined with the image files of ``image_dir``.

    Parameters
    ----------
    csv_path : path
        ``labels.csv``, as in Kaggle's dog-breed competition (``id,breed``).
    image_dir : path
        Folder holding the images.
    id_col, label_col : str, optional
        Columns of the CSV; the first and second column by default.
    ext : str, optional
        Image suffix such as ``".jpg"``. By default it is found per id: the id may already
        end in a suffix, or ``<id><suffix>`` is looked up among the folder's images.

    Returns
    -------
    pandas.DataFrame
        Columns ``id``, ``path``, ``label``, in CSV order (ids kept as strings).

    Raises
    ------
    ValueError
        Unknown columns, empty labels, an id given two labels, or ids without an image
        (the message names them).
    """
    csv_path, folder, table = _read_ids_csv(csv_path, image_dir, "Labels file")
    id_col = table.columns[0] if id_col is None else id_col
    label_col = table.columns[1] if label_col is None and len(table.columns) > 1 else label_col
    _check_columns(table, csv_path, id_col=id_col, label_col=label_col)
    frame = pd.DataFrame({"id": table[id_col].str.strip(), "label": table[label_col].str.strip()})
    empty = frame.id[frame.label == ""]
    if len(empty):
        raise ValueError(f"{len(empty)} ids in '{csv_path.name}' have an empty label: "
                         f"{few(empty)}.")
    frame = _deduplicate(frame, csv_path.name)

    images = _images_by_name(folder)
    paths = _image_of_each_id(frame.id, images, ext, csv_path, folder)
    frame.insert(1, "path", [str(p) for p in paths])
    used = {Path(p).name for p in frame.path}
    unlabeled = sorted(set(images[0]) - used)
    if unlabeled:
        warnings.warn(f"{len(unlabeled)} images in '{folder}' have no label in "
                      f"'{csv_path.name}': {few(unlabeled)}.", UserWarning, stacklevel=2)
    return frame.reset_index(drop=True)


def _read_ids_csv(csv_path: Any, image_dir: Any, what: str) -> tuple[Path, Path, pd.DataFrame]:
    """(CSV path, image folder, the CSV as strings), each checked to exist."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"{what} '{csv_path}' does not exist.")
    folder = _folder(image_dir)
    return csv_path, folder, pd.read_csv(csv_path, dtype=str, keep_default_na=False)


def _check_columns(table: pd.DataFrame, csv_path: Path, **columns: Any) -> None:
    """A ValueError naming the argument and the CSV's columns when one is not there."""
    for name, col in columns.items():
        if col not in table.columns:
            raise ValueError(f"{name}={col!r} is not a column of '{csv_path}'; columns: "
                             f"{list(table.columns)}.")


def _images_by_name(folder: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """The folder's images by file name, and by stem (the first of each stem)."""
    files = {p.name: p for p in _images_in(folder, IMAGE_EXTENSIONS)[0]}
    by_stem: dict[str, Path] = {}
    for p in files.values():
        by_stem.setdefault(p.stem, p)
    return files, by_stem


def _image_of_each_id(ids: Any, images: tuple[dict, dict], ext: str | None, csv_path: Path,
                      folder: Path) -> list[Path]:
    """The image of each id: ``<id><ext>`` when ``ext`` is given, else ``<id>`` itself or
    ``<id><suffix>``; a ValueError lists the ids without one."""
    files, by_stem = images
    if ext is not None:
        suffix = ext if ext.startswith(".") else f".{ext}"
        paths = [files.get(f"{i}{suffix}") for i in ids]
    else:
        paths = [files.get(i) or by_stem.get(i) for i in ids]
    missing = [i for i, p in zip(ids, paths, strict=True) if p is None]
    if missing:
        raise ValueError(f"{len(missing)} ids in '{csv_path.name}' have no image in "
                         f"'{folder}': {few(missing, 10)}.")
    return paths


def _deduplicate(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    dup = frame[frame.id.duplicated(keep=False)]
    if dup.empty:
        return frame
    conflicting = dup.groupby("id").label.nunique()
    conflicting = list(conflicting[conflicting > 1].index)
    if conflicting:
        raise ValueError(f"{len(conflicting)} ids in '{source}' have several different "
                         f"labels: {few(conflicting)}.")
    repeated = list(dup.id.unique())
    warnings.warn(f"{len(repeated)} ids appear more than once in '{source}' (same label); "
                  f"keeping the first: {few(repeated)}.", UserWarning, stacklevel=3)
    return frame.drop_duplicates("id", keep="first")
