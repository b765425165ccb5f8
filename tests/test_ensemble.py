"""Flip TTA, K-fold averaging, make_transfer_pipeline and stacking, on tiny models."""

from __future__ import annotations

import pickle
import subprocess
import sys

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone, is_classifier
from sklearn.ensemble import StackingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmtl import (
    FlipTTAClassifier,
    KFoldEnsembleClassifier,
    MultiBranchClassifier,
    PretrainedFeaturizer,
    make_transfer_pipeline,
)
from skmtl.ensemble import featurizers_in, split_features_and_head

TINY = {"weights": None, "input_size": 32, "batch_size": 16}


@pytest.fixture(scope="module")
def images():
    """48 images, 3 classes told apart by brightness; each image asymmetric left/right."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.array(["dark", "mid", "light"]), 16)
    level = {"dark": 40, "mid": 120, "light": 200}
    X = np.stack([np.clip(rng.normal(level[c], 20, (32, 32, 3)), 0, 255) for c in y])
    X[:, :, :8] = 0  # a black band on the left: mirrored images differ
    return X.astype(np.uint8), y


class Recorder(ClassifierMixin, BaseEstimator):
    """Logistic regression that remembers the rows, validation data and groups it got."""

    def fit(self, X, y, validation_data=None, groups=None):
        self.n_fit_ = len(X)
        self.groups_ = groups
        self.validation_rows_ = None if validation_data is None else len(validation_data[0])
        self.model_ = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X)


def tiny_pipe(head=None, cache=None):
    return make_pipeline(PretrainedFeaturizer("mobilenet_v3_small", cache=cache, **TINY),
                         head if head is not None else Recorder())


def test_split_features_and_head(images):
    pipe = make_transfer_pipeline(["mobilenet_v3_small", "mobilenet"], head="logistic", **TINY)
    features, head = split_features_and_head(pipe)
    assert len(featurizers_in(features)) == 2 and not featurizers_in(head)
    with pytest.raises(ValueError, match="no PretrainedFeaturizer"):
        split_features_and_head(make_pipeline(LogisticRegression()))
    with pytest.raises(TypeError, match="Pipeline"):
        split_features_and_head(LogisticRegression())


def cached_images(location) -> int:
    """Images stored in a feature cache, over all its settings folders."""
    from skmtl.cli.cache import cache_info

    return sum(folder.images for folder in cache_info(location))


def test_flip_tta_averages_original_and_mirrored(images, tmp_path):
    X, y = images
    tta = FlipTTAClassifier(tiny_pipe(cache=tmp_path)).fit(X, y)
    assert tta.head_.n_fit_ == 2 * len(X)  # trained on both views
    # an image and its mirror form one group, so a head never early-stops on the mirror
    # of a training image
    np.testing.assert_array_equal(tta.head_.groups_, np.tile(np.arange(len(X)), 2))
    feats = PretrainedFeaturizer("mobilenet_v3_small", **TINY).fit(X)
    plain, mirrored = feats.transform(X), feats.transform(X[:, :, ::-1])
    expected = (tta.head_.predict_proba(plain) + tta.head_.predict_proba(mirrored)) / 2
    np.testing.assert_allclose(tta.predict_proba(X), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(tta.head_.predict_proba(plain), expected)
    assert [f.flip for f in featurizers_in(tta.features_)] == [False]  # restored
    assert cached_images(tmp_path) == 2 * len(X)  # mirrored features are cached too
    assert list(tta.classes_) == ["dark", "light", "mid"] and is_classifier(tta)
    np.testing.assert_allclose(tta.predict_proba(X).sum(axis=1), 1, atol=1e-6)
    assert (tta.predict(X) == y).mean() > 0.9
    without = FlipTTAClassifier(tiny_pipe(), augment=False).fit(X, y)
    assert without.head_.n_fit_ == len(X) and without.head_.groups_ is None


def test_kfold_ensemble_out_of_fold_and_averaging(images):
    X, y = images
    ens = KFoldEnsembleClassifier(tiny_pipe(), cv=4).fit(X, y)
    assert len(ens.estimators_) == 4 and ens.oof_proba_.shape == (48, 3)
    np.testing.assert_allclose(ens.oof_proba_.sum(axis=1), 1, atol=1e-6)
    from sklearn.metrics import log_loss

    assert ens.cv_log_loss_ == pytest.approx(log_loss(y, ens.oof_proba_, labels=ens.classes_))
    assert ens.cv_accuracy_ > 0.9
    # every fold model saw its held-out fold as validation data (12 rows)
    assert [m[-1].validation_rows_ for m in ens.estimators_] == [12] * 4
    assert [m[-1].n_fit_ for m in ens.estimators_] == [36] * 4
    mean = np.mean([m.predict_proba(X[:5]) for m in ens.estimators_], axis=0)
    np.testing.assert_allclose(ens.predict_proba(X[:5]), mean, rtol=1e-6)
    no_es = KFoldEnsembleClassifier(tiny_pipe(), cv=3, early_stopping=False).fit(X, y)
    assert no_es.estimators_[0][-1].validation_rows_ is None


def test_ten_models_recipe_folds_times_flips(images, tmp_path):
    X, y = images
    recipe = KFoldEnsembleClassifier(FlipTTAClassifier(tiny_pipe(cache=tmp_path)), cv=3)
    recipe.fit(X, y)
    heads = [m.head_ for m in recipe.estimators_]
    assert [h.n_fit_ for h in heads] == [64] * 3  # 32 training images x 2 views
    assert [h.validation_rows_ for h in heads] == [32] * 3  # 16 held out x 2 views
    assert all(h.groups_ is None for h in heads)  # the held-out fold replaces groups
    assert recipe.predict_proba(X).shape == (48, 3) and recipe.cv_accuracy_ > 0.9


def test_multibranch_early_stops_on_each_held_out_fold(images, monkeypatch):
    X, y = images
    monkeypatch.setattr(MultiBranchClassifier, "_validation_splits",
                        lambda *a: pytest.fail("the held-out fold should be used"))
    head = MultiBranchClassifier(units=8, epochs=5, patience=2, n_models=1)
    ens = KFoldEnsembleClassifier(tiny_pipe(head), cv=2).fit(X, y)
    assert all("val_loss" in m[-1].histories_[0] for m in ens.estimators_)


def test_meta_estimators_clone_and_pickle(images):
    X, y = images
    for meta in (FlipTTAClassifier(tiny_pipe()), KFoldEnsembleClassifier(tiny_pipe(), cv=2)):
        assert clone(meta).get_params()["estimator"] is not meta.estimator
        fitted = clone(meta).fit(X, y)
        restored = pickle.loads(pickle.dumps(fitted))
        np.testing.assert_allclose(restored.predict_proba(X), fitted.predict_proba(X),
                                   rtol=1e-6)


def test_make_transfer_pipeline_names_and_branches(images):
    X, y = images
    pipe = make_transfer_pipeline(["mobilenet_v3_small", "mobilenet"],
                                  head_params={"units": 8, "epochs": 3, "n_models": 1}, **TINY)
    assert [n for n, _ in pipe.named_steps["features"].transformer_list] == [
        "mobilenet_v3_small", "mobilenet"]
    features = pipe[:-1].fit_transform(X)
    assert isinstance(features, pd.DataFrame) and features.shape == (48, 576 + 1024)
    assert features.columns[0] == "mobilenet_v3_small__0"
    pipe.fit(X, y)
    assert [(n, len(c)) for n, c, _ in pipe[-1].branches_] == [
        ("mobilenet_v3_small", 576), ("mobilenet", 1024)]
    with pytest.raises(ValueError, match="duplicates"):
        make_transfer_pipeline(["mobilenet", "mobilenet"])
    with pytest.raises(ValueError, match="head='svm'"):
        make_transfer_pipeline("mobilenet", head="svm")


def test_fitted_pipeline_predicts_identically_in_a_new_process(images, tmp_path):
    X, y = images
    pipe = make_transfer_pipeline(["mobilenet_v3_small"], head="logistic", **TINY).fit(X, y)
    joblib.dump(pipe, tmp_path / "model.joblib")
    np.save(tmp_path / "X.npy", X[:6])
    code = (f"import joblib, numpy as np; m = joblib.load(r'{tmp_path / 'model.joblib'}'); "
            f"np.save(r'{tmp_path / 'p.npy'}', m.predict_proba(np.load(r'{tmp_path / 'X.npy'}')))")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), pipe.predict_proba(X[:6]))


def test_stacking_per_backbone_pipelines(images, tmp_path):
    X, y = images
    base = [(name, make_transfer_pipeline(name, head="logistic", cache=tmp_path, **TINY))
            for name in ("mobilenet_v3_small", "mobilenet")]
    stack = StackingClassifier(base, final_estimator=LogisticRegression(), cv=3).fit(X, y)
    assert stack.predict_proba(X).shape == (48, 3)
    assert (stack.predict(X) == y).mean() > 0.9
    # 2 backbones x 48 images, each computed once across the 3 folds + the final refit
    assert cached_images(tmp_path) == 96
    # the same base models under a multi-branch final estimator, features from the cache
    head = MultiBranchClassifier(units=8, epochs=20, patience=5, n_models=1)
    stack = StackingClassifier(base, final_estimator=head, cv=3).fit(X, y)
    assert stack.predict_proba(X).shape == (48, 3)
    assert (stack.predict(X) == y).mean() > 0.9
    assert cached_images(tmp_path) == 96


def test_grid_search_over_head_parameters_in_two_processes(images, tmp_path):
    X, y = images
    pipe = make_transfer_pipeline("mobilenet_v3_small", head="multibranch", cache=tmp_path,
                                  head_params={"n_models": 1, "epochs": 20,
                                               "learning_rate": 0.01}, **TINY)
    search = GridSearchCV(pipe, {"head__units": [4, 16]}, cv=2, n_jobs=2).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_ == search.cv_results_["params"][int(np.argmax(scores))]
    assert search.best_score_ == scores.max() > 0.9
    dense = [layer for layer in search.best_estimator_[-1].model_.layers
             if layer.name.endswith("_dense")]
    assert dense and {layer.units for layer in dense} == {search.best_params_["head__units"]}
    # the workers shared one cache: one entry per image, no half-written files
    assert cached_images(tmp_path) == 48
    assert not list(tmp_path.rglob("*.tmp"))
    assert search.best_estimator_[-1].score(search.best_estimator_[0].transform(X), y) > 0.9


def _table(n=90, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], n // 3)
    X = rng.normal(size=(n, 4)) + y[:, None] * 0.8
    return X, y


def test_kfold_takes_groups_for_a_group_splitter():
    """cv=GroupKFold with groups: the out-of-fold probabilities are those of
    cross_val_predict over the same group folds (no group on both sides of a fold)."""
    from sklearn.model_selection import GroupKFold, cross_val_predict

    X, y = _table()
    groups = np.arange(len(y)) // 3  # triples of rows, as photos of one animal
    model = KFoldEnsembleClassifier(LogisticRegression(), cv=GroupKFold(3))
    model.fit(X, y, groups=groups)
    expected = cross_val_predict(LogisticRegression(), X, y, cv=GroupKFold(3),
                                 groups=groups, method="predict_proba")
    np.testing.assert_allclose(model.oof_proba_, expected, rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="groups has 3 entries for 90 rows"):
        model.fit(X, y, groups=[0, 1, 2])


def test_kfold_numpy_integer_cv_is_an_int():
    X, y = _table()
    as_int = KFoldEnsembleClassifier(LogisticRegression(), cv=3).fit(X, y)
    as_numpy = KFoldEnsembleClassifier(LogisticRegression(), cv=np.int64(3)).fit(X, y)
    np.testing.assert_array_equal(as_numpy.oof_proba_, as_int.oof_proba_)
