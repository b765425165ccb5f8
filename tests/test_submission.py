"""Submission files: every layout, the sample-submission contract, and refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skmtl.submission import validate_submission, write_submission

PROBA = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
CLASSES = ["pug", "husky", "akita"]


def test_proba_layout_round_trip(tmp_path):
    path = tmp_path / "sub" / "s.csv"
    write_submission(["001", "002"], PROBA, CLASSES, path)
    back = pd.read_csv(path, dtype={"id": str})
    assert list(back.columns) == ["id", *CLASSES]
    assert list(back.id) == ["001", "002"]
    np.testing.assert_allclose(back[CLASSES].to_numpy(), PROBA)


def test_follows_sample_submission_order(tmp_path):
    sample = pd.DataFrame({"image_id": ["b", "a"], "akita": 0.0, "pug": 0.0, "husky": 0.0})
    sample.to_csv(tmp_path / "sample.csv", index=False)
    frame = write_submission(["a", "b"], PROBA, CLASSES, tmp_path / "s.csv",
                             sample_submission=tmp_path / "sample.csv")
    assert list(frame.columns) == ["image_id", "akita", "pug", "husky"]
    assert list(frame.image_id) == ["b", "a"]
    np.testing.assert_allclose(frame.iloc[0, 1:].to_numpy(float), [0.8, 0.1, 0.1])
    validate_submission(tmp_path / "s.csv", tmp_path / "sample.csv")


def test_binary_layout(tmp_path):
    proba = np.array([[0.9, 0.1], [0.25, 0.75]])
    frame = write_submission([1, 2], proba, ["cat", "dog"], tmp_path / "s.csv", kind="binary")
    assert list(frame.columns) == ["id", "label"]
    np.testing.assert_allclose(frame.label, [0.1, 0.75])
    frame = write_submission([1, 2], proba, ["cat", "dog"], tmp_path / "s.csv", kind="binary",
                             positive_class="cat")
    np.testing.assert_allclose(frame.label, [0.9, 0.25])
    frame = write_submission([1, 2], [0.1, 0.75], ["cat", "dog"], tmp_path / "s.csv",
                             kind="binary")
    np.testing.assert_allclose(pd.read_csv(tmp_path / "s.csv").label, [0.1, 0.75])


def test_label_layout(tmp_path):
    frame = write_submission(["x", "y"], PROBA, CLASSES, tmp_path / "s.csv", kind="label",
                             label_col="breed")
    assert list(frame.breed) == ["pug", "akita"]


def test_clipping_maths(tmp_path):
    proba = np.array([[1.0, 0.0], [0.5, 0.5]])
    frame = write_submission(["a", "b"], proba, ["n", "p"], tmp_path / "s.csv", clip=0.01)
    np.testing.assert_allclose(frame[["n", "p"]].to_numpy(), [[0.99, 0.01], [0.5, 0.5]])
    three = np.array([[1.0, 0.0, 0.0]])
    frame = write_submission(["a"], three, CLASSES, tmp_path / "s.csv", clip=0.1)
    np.testing.assert_allclose(frame[CLASSES].to_numpy(), [[0.9 / 1.1, 0.1 / 1.1, 0.1 / 1.1]])
    binary = write_submission(["a"], [[0.0, 1.0]], ["n", "p"], tmp_path / "s.csv",
                              kind="binary", clip=0.05)
    np.testing.assert_allclose(binary.label, [0.95])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"proba": PROBA[:, :2]}, r"shape \(2, 2\)"),
        ({"ids": ["a"]}, r"\(1 ids, 3 classes\)"),
        ({"proba": PROBA * np.nan}, "NaN"),
        ({"proba": PROBA * 2}, r"must lie in \[0, 1\]"),
        ({"proba": PROBA * 0.5}, "do not sum to 1"),
        ({"ids": ["a", "a"]}, "Duplicate ids.*a"),
        ({"kind": "probs"}, "kind='probs'"),
        ({"clip": 0.7}, r"\(0, 0.5\)"),
        ({"kind": "binary", "positive_class": "cat"}, "positive_class='cat'"),
    ],
)
def test_invalid_submissions_are_not_written(tmp_path, kwargs, match):
    path = tmp_path / "s.csv"
    path.write_text("previous file\n")
    args = {"ids": ["a", "b"], "proba": PROBA, "classes": CLASSES, "path": path, **kwargs}
    with pytest.raises(ValueError, match=match):
        write_submission(**args)
    assert path.read_text() == "previous file\n"
    assert [p.name for p in tmp_path.iterdir()] == ["s.csv"]


def test_sample_submission_mismatches(tmp_path):
    sample = pd.DataFrame({"id": ["a", "c"], "pug": 0.0, "husky": 0.0, "akita": 0.0})
    with pytest.raises(ValueError, match=r"1 ids of the sample .*: c.*not in the sample.*b"):
        write_submission(["a", "b"], PROBA, CLASSES, tmp_path / "s.csv", sample_submission=sample)
    sample = pd.DataFrame({"id": ["a", "b"], "pug": 0.0, "husky": 0.0, "shiba": 0.0})
    with pytest.raises(ValueError, match="missing shiba; not in the sample akita"):
        write_submission(["a", "b"], PROBA, CLASSES, tmp_path / "s.csv", sample_submission=sample)
    assert not (tmp_path / "s.csv").exists()
    with pytest.raises(FileNotFoundError, match=r"nope.csv"):
        write_submission(["a", "b"], PROBA, CLASSES, tmp_path / "s.csv",
                         sample_submission=tmp_path / "nope.csv")


def test_validate_existing_files(tmp_path):
    pd.DataFrame({"id": ["a", "b"], "x": [0.5, 0.6], "y": [0.5, 0.4]}).to_csv(
        tmp_path / "ok.csv", index=False)
    validate_submission(tmp_path / "ok.csv")
    pd.DataFrame({"id": ["a", "b"], "x": [0.5, 0.6], "y": [0.5, 0.5]}).to_csv(
        tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match=r"row 1 sums to 1.1"):
        validate_submission(tmp_path / "bad.csv")
