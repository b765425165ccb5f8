"""Loading competition layouts: folders, labels.csv, test folders."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from skmtl.io.datasets import load_image_folder, load_labels_csv, load_test_folder
from tests.conftest import shared_data


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8 not decoded by the loaders")
    return path


def test_image_folder_rows_sorted_with_absolute_paths(tmp_path):
    for name in ["dogs/b.jpg", "dogs/a.PNG", "cats/z.jpeg", ".hidden/x.jpg", "cats/.x.jpg"]:
        touch(tmp_path / name)
    frame = load_image_folder(tmp_path)
    assert list(frame.columns) == ["path", "label"]
    assert list(frame.label) == ["cats", "dogs", "dogs"]
    assert [Path(p).name for p in frame.path] == ["z.jpeg", "a.PNG", "b.jpg"]
    assert all(Path(p).is_absolute() for p in frame.path)


def test_image_folder_warnings_and_errors(tmp_path):
    touch(tmp_path / "cats/a.jpg")
    touch(tmp_path / "cats/readme.txt")
    (tmp_path / "empty").mkdir()
    with pytest.warns(UserWarning) as record:
        frame = load_image_folder(tmp_path)
    messages = " ".join(str(w.message) for w in record)
    assert "empty' holds no images" in messages and "1 non-image files" in messages
    assert "readme.txt" in messages and len(frame) == 1
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_image_folder(tmp_path / "nowhere")
    flat = tmp_path / "flat"
    touch(flat / "a.jpg")
    with pytest.raises(ValueError, match=r"no class sub-folders.*load_test_folder"):
        load_image_folder(flat)


def test_test_folder_ids(tmp_path):
    for name in ["007.jpg", "10.jpg", "2.png"]:
        touch(tmp_path / name)
    frame = load_test_folder(tmp_path)
    assert list(frame.id) == ["007", "10", "2"]
    touch(tmp_path / "10.png")
    with pytest.raises(ValueError, match="share the id 10"):
        load_test_folder(tmp_path)
    (tmp_path / "sub").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        load_test_folder(tmp_path / "sub")


def write_csv(path: Path, rows: list[tuple[str, str]], header=("id", "breed")) -> Path:
    pd.DataFrame(rows, columns=list(header)).to_csv(path, index=False)
    return path


def test_labels_csv_with_and_without_suffix_keeps_leading_zeros(tmp_path):
    images = tmp_path / "train"
    for name in ["0012.jpg", "0013.png", "x.jpg"]:
        touch(images / name)
    csv = write_csv(tmp_path / "labels.csv", [("0012", "pug"), ("0013.png", "husky"),
                                               ("x", "pug")])
    frame = load_labels_csv(csv, images)
    assert list(frame.columns) == ["id", "path", "label"]
    assert list(frame.id) == ["0012", "0013.png", "x"]
    assert [Path(p).name for p in frame.path] == ["0012.jpg", "0013.png", "x.jpg"]
    assert list(frame.label) == ["pug", "husky", "pug"]
    with pytest.raises(ValueError, match=r"2 ids .* have no image.*0012, x"):
        load_labels_csv(write_csv(tmp_path / "l2.csv", [("0012", "a"), ("x", "b")]), images,
                        ext="png")


def test_labels_csv_checks(tmp_path):
    images = tmp_path / "img"
    for name in ["a.jpg", "b.jpg", "test1.jpg"]:
        touch(images / name)
    with pytest.raises(FileNotFoundError, match=r"nope.csv"):
        load_labels_csv(tmp_path / "nope.csv", images)
    csv = write_csv(tmp_path / "l.csv", [("a", "x"), ("b", "y")])
    with pytest.raises(ValueError, match=r"label_col='kind' .*\['id', 'breed'\]"):
        load_labels_csv(csv, images, label_col="kind")
    with pytest.warns(UserWarning, match=r"1 images .* no label .*test1\.jpg"):
        assert len(load_labels_csv(csv, images)) == 2
    dup_same = write_csv(tmp_path / "d.csv", [("a", "x"), ("a", "x"), ("b", "y")])
    with pytest.warns(UserWarning, match=r"1 ids appear more than once.*: a"):
        assert len(load_labels_csv(dup_same, images)) == 2
    dup_diff = write_csv(tmp_path / "e.csv", [("a", "x"), ("a", "y")])
    with pytest.raises(ValueError, match="several different labels: a"):
        load_labels_csv(dup_diff, images)
    empty = write_csv(tmp_path / "f.csv", [("a", ""), ("b", "y")])
    with pytest.raises(ValueError, match="empty label: a"):
        load_labels_csv(empty, images)


@pytest.mark.shared_data
def test_shared_layouts():
    hymenoptera = load_image_folder(shared_data("hymenoptera") / "train")
    assert hymenoptera.label.value_counts().to_dict() == {"ants": 124, "bees": 121}
    assert len(load_image_folder(shared_data("cats_dogs") / "val")) == 400
    breeds = shared_data("cat_breeds")
    frame = load_labels_csv(breeds / "labels.csv", breeds / "images")
    assert len(frame) == 995 and frame.label.nunique() == 5
