"""Unreadable images (on_error="warn" + SkipUnreadable) and untrusted model files."""

from __future__ import annotations

import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.utils.estimator_checks import parametrize_with_checks

from skmtl import (
    FlipTTAClassifier,
    KFoldEnsembleClassifier,
    SkipUnreadable,
    make_transfer_pipeline,
    write_submission,
)
from skmtl.cli import main
from skmtl.io.datasets import load_image_folder, load_test_folder

TINY = {"weights": None, "input_size": 32, "batch_size": 16}


# ---------------------------------------------------------------------- the wrapper alone
@parametrize_with_checks([SkipUnreadable(LogisticRegression())])
def test_scikit_learn_checks(estimator, check):
    check(estimator)


def test_nan_rows_are_dropped_at_fit_and_get_the_prior_at_predict():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 3))
    y = np.array(["a"] * 8 + ["b"] * 4)
    X[[1, 9]] = np.nan  # one "a", one "b": 7 a, 3 b remain
    X = pd.DataFrame(X, index=[f"img{i}" for i in range(12)])
    with pytest.warns(UserWarning, match=r"2 row\(s\).*#1 \(index 'img1'\), #9"):
        head = SkipUnreadable(LogisticRegression()).fit(X, y)
    assert head.dropped_rows_ == [1, 9] and head.estimator_.n_features_in_ == 3
    np.testing.assert_allclose(head.class_prior_, [0.7, 0.3])
    with pytest.warns(UserWarning, match="training class prior"):
        proba = head.predict_proba(X)
    assert head.failed_rows_ == [1, 9]
    np.testing.assert_allclose(proba[[1, 9]], [[0.7, 0.3]] * 2)
    np.testing.assert_allclose(proba[0], head.estimator_.predict_proba(X.iloc[[0]])[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        head.predict_proba(X.iloc[[0, 2]])
    assert head.failed_rows_ == []
    with pytest.raises(ValueError, match="All 2 rows"):
        SkipUnreadable(LogisticRegression()).fit(X.iloc[[1, 9]], y[[1, 9]])


class _Recorder(LogisticRegression):
    """Logistic regression that remembers the validation rows and groups it got."""

    def fit(self, X, y, validation_data=None, groups=None):
        self.validation_rows_ = None if validation_data is None else len(validation_data[0])
        self.groups_ = groups
        return super().fit(X, y)


def test_validation_data_and_groups_reach_the_head_without_nan_rows():
    from skmtl.ensemble._pipeline_parts import _fit_accepts, fit_with_validation

    X = np.arange(20, dtype=float).reshape(10, 2)
    X[3] = np.nan
    y = np.repeat(["a", "b"], 5)
    assert not _fit_accepts(SkipUnreadable(LogisticRegression()), "validation_data")
    assert _fit_accepts(SkipUnreadable(_Recorder()), "validation_data")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        head = fit_with_validation(SkipUnreadable(_Recorder()), X, y, (X[:4], y[:4]))
        assert head.estimator_.validation_rows_ == 3
        head = fit_with_validation(SkipUnreadable(_Recorder()), X, y, None, np.arange(10))
    assert list(head.estimator_.groups_) == [0, 1, 2, 4, 5, 6, 7, 8, 9]


# ---------------------------------------------------------------------- image pipelines
@pytest.fixture(scope="module")
def folders(tmp_path_factory, sample_photos):
    """train/<class>/ (6 temple, 3 flower, one garbage .jpg among the temples) and test/
    (2 of each class and one garbage .jpg)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("unreadable")
    rng = np.random.default_rng(0)
    for label, photo, n in [("temple", sample_photos[0], 6), ("flower", sample_photos[1], 3)]:
        h, w = photo.shape[:2]
        for k in range(n + 2):
            top, left = rng.integers(0, h // 3), rng.integers(0, w // 3)
            crop = Image.fromarray(photo[top : top + h // 2, left : left + w // 2])
            folder = root / "train" / label if k < n else root / "test"
            folder.mkdir(parents=True, exist_ok=True)
            crop.save(folder / f"{label}{k}.jpg")
    (root / "train" / "temple" / "temple_bad.jpg").write_bytes(b"not a JPEG at all")
    (root / "test" / "x_bad.jpg").write_bytes(b"garbage")
    return root


def test_pipeline_drops_a_bad_train_image_and_submits_the_prior_for_a_bad_test_image(
        folders, tmp_path):
    train, test = load_image_folder(folders / "train"), load_test_folder(folders / "test")
    pipe = make_transfer_pipeline("mobilenet_v3_small", head="logistic", on_error="warn",
                                  **TINY)
    assert isinstance(pipe["head"], SkipUnreadable)
    with pytest.warns(RuntimeWarning, match="temple_bad.jpg"), \
            pytest.warns(UserWarning, match="left out of training"):
        pipe.fit(train.path, train.label)
    bad_train = int(np.flatnonzero(train.path.str.endswith("temple_bad.jpg"))[0])
    assert pipe["head"].dropped_rows_ == [bad_train]
    np.testing.assert_allclose(pipe["head"].class_prior_, [3 / 9, 6 / 9])  # flower, temple
    with pytest.warns(RuntimeWarning, match="x_bad.jpg"), \
            pytest.warns(UserWarning, match="training class prior"):
        proba = pipe.predict_proba(test.path)
    out = tmp_path / "submission.csv"
    frame = write_submission(test.id, proba, pipe.classes_, out)
    frame = pd.read_csv(out)
    assert list(frame.id) == list(test.id) and frame.notna().all().all()
    bad = frame.set_index("id").loc["x_bad", ["flower", "temple"]].to_numpy(float)
    np.testing.assert_allclose(bad, [3 / 9, 6 / 9], atol=1e-9)
    assert pipe["head"].failed_rows_ == [list(test.id).index("x_bad")]
    good = frame.set_index("id").drop(index="x_bad")
    assert (good.idxmax(axis=1) == good.index.str.rstrip("0123456789")).all()


def test_the_policy_works_inside_the_ensembles_and_cross_val_predict(folders):
    train, test = load_image_folder(folders / "train"), load_test_folder(folders / "test")
    pipe = make_transfer_pipeline("mobilenet_v3_small", head="logistic", on_error="warn",
                                  **TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oof = cross_val_predict(clone(pipe), train.path, train.label, cv=3,
                                method="predict_proba")
        model = KFoldEnsembleClassifier(FlipTTAClassifier(pipe), cv=3).fit(train.path,
                                                                           train.label)
        proba = model.predict_proba(test.path)
    assert np.isfinite(oof).all() and np.isfinite(proba).all()
    priors = [m.head_.class_prior_ for m in model.estimators_]
    np.testing.assert_allclose(proba[list(test.id).index("x_bad")], np.mean(priors, axis=0))


def test_cli_fit_and_predict_with_on_error_warn(folders, tmp_path, capsys):
    model = tmp_path / "model.joblib"
    assert main(["fit", "--train", str(folders / "train"), "--cv", "3", "--on-error", "warn",
                 "--cache", str(tmp_path / "c"), "--out", str(model), "--quiet"]) == 0
    assert model.with_name("model.joblib.sha256").is_file()
    out = tmp_path / "sub.csv"
    with pytest.warns(UserWarning, match="training class prior"):
        assert main(["predict", "--model", str(model), "--test", str(folders / "test"),
                     "--out", str(out), "--quiet"]) == 0
    assert "x_bad (" in capsys.readouterr().err
    frame = pd.read_csv(out).set_index("id")
    assert sorted(frame.index) == sorted(load_test_folder(folders / "test").id)
    fitted = joblib.load(model)
    prior = np.mean([m["head"].class_prior_ for m in fitted.estimators_], axis=0)
    np.testing.assert_allclose(frame.loc["x_bad", ["flower", "temple"]], prior, atol=1e-9)
    np.testing.assert_allclose(prior, [3 / 9, 6 / 9], atol=0.07)


def test_cli_predict_on_error_overrides_the_saved_setting(folders, tmp_path, capsys):
    clean = tmp_path / "train"
    for path in (folders / "train").rglob("*.jpg"):
        if "bad" not in path.name:
            (clean / path.parent.name).mkdir(parents=True, exist_ok=True)
            (clean / path.parent.name / path.name).write_bytes(path.read_bytes())
    model = tmp_path / "model.joblib"
    assert main(["fit", "--train", str(clean), "--cv", "2", "--out", str(model),
                 "--quiet"]) == 0
    args = ["predict", "--model", str(model), "--test", str(folders / "test"), "--out",
            str(tmp_path / "s.csv"), "--quiet"]
    capsys.readouterr()
    assert main(args) == 2
    assert "x_bad.jpg" in capsys.readouterr().err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main([*args, "--on-error", "warn"]) == 0
    assert pd.read_csv(tmp_path / "s.csv").id.eq("x_bad").sum() == 1


# ---------------------------------------------------------------------- bad model files
@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A small fitted model saved through skmtl's own writer, with its checksum."""
    from skmtl.cli._model_file import save_model

    path = tmp_path_factory.mktemp("model") / "model.joblib"
    X, y = np.random.default_rng(0).normal(size=(20, 2)), np.repeat(["a", "b"], 10)
    save_model(KFoldEnsembleClassifier(LogisticRegression(), cv=2).fit(X, y), path)
    return path


def _predict_error(model, folders, capsys):
    capsys.readouterr()
    code = main(["predict", "--model", str(model), "--test", str(folders / "test"),
                 "--out", str(model.parent / "never.csv")])
    captured = capsys.readouterr()
    assert code == 2 and not (model.parent / "never.csv").exists()
    assert "Traceback" not in captured.err
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith(f"skmtl predict: error: Model file '{model}'")
    return captured.err


@pytest.mark.parametrize("content, expected", [
    (b"hello, I am a text file\n", "could not be loaded"),
    (b"", "is empty"),
    ({"classes_": ["a", "b"]}, "holds a dict, not a fitted classifier"),
])
def test_a_file_that_is_not_a_model_is_one_line_exit_2(content, expected, folders, tmp_path,
                                                       capsys):
    model = tmp_path / "model.joblib"
    if isinstance(content, bytes):
        model.write_bytes(content)
    else:
        joblib.dump(content, model)
    err = _predict_error(model, folders, capsys)
    assert expected in err and "expected a model saved by 'skmtl fit'" in err


def test_a_model_changed_after_fit_is_refused_before_unpickling(saved_model, folders,
                                                                tmp_path, capsys,
                                                                monkeypatch):
    model = tmp_path / "model.joblib"
    model.write_bytes(saved_model.read_bytes() + b"\x00")
    sums = tmp_path / "model.joblib.sha256"
    sums.write_bytes(saved_model.with_name("model.joblib.sha256").read_bytes())
    monkeypatch.setattr(joblib, "load", lambda *a, **k: pytest.fail("unpickled"))
    err = _predict_error(model, folders, capsys)
    assert "does not match its checksum file" in err and "changed since" in err


def test_a_model_without_checksum_loads_with_a_warning(saved_model, tmp_path):
    from skmtl.cli._model_file import load_model

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(saved_model)  # checksum present: no warning
    copy = tmp_path / "copy.joblib"
    copy.write_bytes(saved_model.read_bytes())
    with pytest.warns(UserWarning, match="origin cannot be checked"):
        assert list(load_model(copy).classes_) == ["a", "b"]
