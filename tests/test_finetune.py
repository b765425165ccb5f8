"""FineTunedClassifier: both phases, frozen batch norm, the input pipeline, early stopping,
persistence, and its scikit-learn face (clone, grid search, stacking, K folds, flip TTA),
on a tiny random-weight convolutional backbone and 16 x 16 images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_classifier
from sklearn.ensemble import StackingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import GridSearchCV

from skmtl import (
    FineTunedClassifier,
    FlipTTAClassifier,
    KFoldEnsembleClassifier,
    LogisticHeadClassifier,
    PretrainedFeaturizer,
)
from skmtl.features.sources import as_image_sources
from skmtl.finetune._pipeline import augmentation_draws, load_one, make_dataset
from skmtl.finetune._schedule import lr_multiplier
from skmtl.io.images import prepare_image

PRE = "efficientnet_lite0"  # (x - 127) / 128, by registry name: picklable


@pytest.fixture(scope="module")
def backbone():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv2")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.ReLU()(x)
    return keras.Model(inputs, x, name="tiny")


@pytest.fixture(scope="module")
def images():
    """Dark and light noisy squares with a bright left edge (so mirroring shows)."""
    rng = np.random.default_rng(0)
    y = np.repeat(["dark", "light"], 12)
    X = np.clip(rng.normal(0, 30, (24, 16, 16, 3)) + np.where(y == "dark", 70, 180)[:, None,
                None, None], 0, 255)
    X[:, :, :3] += 60
    return np.clip(X, 0, 255).astype(np.uint8), y


def tiny(backbone, **params):
    settings = {"preprocess": PRE, "batch_size": 8, "epochs": 2, "verbose": 0,
                "validation_fraction": 0.25}
    return FineTunedClassifier(backbone, **{**settings, **params})


def weights_of(model, name):
    return [np.array(w) for w in model.get_layer(name).get_weights()]


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_phase_one_is_the_logistic_head_on_the_featurizer_pixels(backbone, images):
    X, y = images
    model = tiny(backbone, epochs=0, validation_fraction=None).fit(X, y)
    for name in ("conv1", "bn1", "conv2", "bn2"):
        assert same(weights_of(model.model_, name), weights_of(backbone, name))
    features = PretrainedFeaturizer(backbone, preprocess=PRE).fit_transform(X)
    head = LogisticHeadClassifier().fit(features, y)
    np.testing.assert_allclose(model.predict_proba(X), head.predict_proba(features),
                               atol=2e-5)
    assert model.history_["phase"] == ["head"] and model.best_epoch_ is None


def test_trained_head_phase_leaves_the_backbone_and_its_statistics(backbone, images):
    X, y = images
    model = tiny(backbone, head_init="train", head_epochs=3, epochs=0, learning_rate=0.05,
                 validation_fraction=None).fit(X, y)
    for name in ("conv1", "bn1", "conv2", "bn2"):  # bn: gamma, beta, moving mean/variance
        assert same(weights_of(model.model_, name), weights_of(backbone, name))
    assert not same(weights_of(model.model_, "skmtl_softmax"),
                    weights_of(tiny(backbone, epochs=0, head_init="train", head_epochs=0,
                                    validation_fraction=None).fit(X, y).model_,
                               "skmtl_softmax"))
    assert model.history_["phase"] == ["head"] * 3


def test_phase_two_trains_the_unfrozen_layers_only(backbone, images):
    X, y = images
    model = tiny(backbone, trainable_layers=2, fine_tune_learning_rate=0.01,
                 validation_fraction=None).fit(X, y)
    assert not same(weights_of(model.model_, "conv2"), weights_of(backbone, "conv2"))
    for name in ("conv1", "bn1", "bn2"):  # bn2 is unfrozen but train_batchnorm=False
        assert same(weights_of(model.model_, name), weights_of(backbone, name))
    # head, then the unfrozen layers (conv2; bn2 stays frozen) at half the rate
    assert model.layer_learning_rates_ == [(1, 0.01), (1, 0.005)]
    assert model.history_["phase"] == ["head", "fine-tune", "fine-tune"]


def test_frozen_batchnorm_statistics_stay_put_when_unfrozen_ones_train(backbone, images):
    X, y = images
    model = tiny(backbone, trainable_layers=2, train_batchnorm=True,
                 fine_tune_learning_rate=0.01, validation_fraction=None).fit(X, y)
    bn2, bn1 = weights_of(model.model_, "bn2"), weights_of(model.model_, "bn1")
    assert not np.array_equal(bn2[2], weights_of(backbone, "bn2")[2])  # moving mean
    assert same(bn1, weights_of(backbone, "bn1"))
    assert same(weights_of(model.model_, "conv1"), weights_of(backbone, "conv1"))
    all_layers = tiny(backbone, trainable_layers="all", fine_tune_learning_rate=0.01,
                      layer_groups=2, validation_fraction=None).fit(X, y)
    assert not same(weights_of(all_layers.model_, "conv1"), weights_of(backbone, "conv1"))
    assert same(weights_of(all_layers.model_, "bn1"), weights_of(backbone, "bn1"))
    assert all_layers.layer_learning_rates_ == [(1, 0.01), (1, 0.005), (1, 0.0025)]


def test_pipeline_pixels_equal_the_featurizers_and_flips_mirror_them(images):
    from skmtl.backbones import get_backbone_spec

    X, _ = images
    sources = as_image_sources(list(X[:5]))
    pre = get_backbone_spec(PRE).preprocess_fn()
    flips = np.array([False, True, False, True, True])
    batch = next(iter(make_dataset(sources, size=(12, 12), resize="squash", preprocess=pre,
                                   batch_size=5, flips=flips)))
    for i in range(5):
        expected = pre(prepare_image(X[i], (12, 12), flip=bool(flips[i])))
        np.testing.assert_array_equal(np.asarray(batch[i]), expected.astype(np.float32))
    assert np.abs(np.asarray(batch[1]) - pre(prepare_image(X[1], (12, 12)))).max() > 0.1


def test_augmentation_draws_and_crops(images):
    X, _ = images
    rng = np.random.default_rng(0)
    flips, boxes = augmentation_draws(4000, "flip", rng)
    assert 0.47 < flips.mean() < 0.53 and (boxes == [0, 0, 1, 1]).all()
    flips, boxes = augmentation_draws(500, "crop", rng)
    assert not flips.any()
    area = boxes[:, 2] * boxes[:, 3]
    assert area.min() >= 0.35 - 1e-6 and area.max() <= 1 and area.std() > 0.1
    assert (boxes[:, 0] + boxes[:, 2] <= 1 + 1e-6).all()
    sources = as_image_sources(list(X[:1]))
    crop = load_one(sources, 0, (16, 16), "squash", lambda b: b, box=(0.0, 0.5, 1.0, 0.5))
    from skmtl.io.transforms import resize_image

    np.testing.assert_allclose(crop, resize_image(X[0][:, 8:].astype(np.float32), (16, 16)),
                               atol=1e-4)


def test_an_unreadable_image_raises_naming_the_file(backbone, images, tmp_path):
    from PIL import Image

    from skmtl import ImageDecodeError

    X, y = images
    paths = []
    for i, image in enumerate(X):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    (tmp_path / "5.png").write_bytes(b"<html>not found</html>")
    with pytest.raises(ImageDecodeError, match=r"#5 '.*5\.png': an HTML page"):
        tiny(backbone, epochs=0, validation_fraction=None).fit(paths, y)


def test_schedules():
    assert lr_multiplier("cosine", 0, 100, 0.1) == pytest.approx(0.1)
    assert lr_multiplier("cosine", 10, 100, 0.1) == pytest.approx(1.0)
    assert lr_multiplier("cosine", 55, 100, 0.1) == pytest.approx(0.5)
    assert lr_multiplier("cosine", 99, 100, 0.1) < 0.001
    assert lr_multiplier("one_cycle", 0, 100, 0.0) == pytest.approx(1 / 25)
    assert lr_multiplier("one_cycle", 25, 100, 0.0) == pytest.approx(1.0)
    assert lr_multiplier("constant", 7, 100, 0.1) == 1.0


def test_early_stopping_stops_and_restores_the_best_epoch(backbone, images):
    X, _ = images
    y = np.random.default_rng(1).permutation(np.repeat(["a", "b"], 12))  # nothing to learn
    model = tiny(backbone, epochs=6, patience=1, fine_tune_learning_rate=0.3,
                 trainable_layers="all", schedule="constant")
    model.fit(X[::2], y[::2], validation_data=(X[1::2], y[1::2]))
    losses = model.history_["val_loss"]
    assert model.n_epochs_ == len(losses) < 7  # stopped early
    assert model.best_epoch_ == int(np.argmin(losses)) + 1
    assert losses[-1] > min(losses)
    kept = log_loss(y[1::2], model.predict_proba(X[1::2]), labels=model.classes_)
    assert kept == pytest.approx(min(losses), abs=1e-5)


def test_verbose_prints_each_epoch_and_zero_is_silent(backbone, images, capsys):
    X, y = images
    tiny(backbone, epochs=1, verbose=1).fit(X, y)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    assert len(lines) == 2 and "val_loss" in lines[1] and "(fine-tune)" in lines[1]
    tiny(backbone, epochs=1, verbose=0).fit(X, y)
    assert capsys.readouterr().out == ""


def test_joblib_round_trip_predicts_identically(backbone, images, tmp_path):
    import joblib

    X, y = images
    model = tiny(backbone, epochs=1).fit(X, y)
    joblib.dump(model, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.history_ == model.history_ and list(loaded.classes_) == ["dark", "light"]


def test_clone_tags_and_fitted_state(backbone, images):
    from sklearn.exceptions import NotFittedError

    X, y = images
    model = tiny(backbone, dropout=0.3)
    with pytest.raises(NotFittedError):
        model.predict_proba(X)
    copy = clone(model)
    assert copy.get_params()["dropout"] == 0.3 and copy.backbone is not model.backbone
    assert is_classifier(model)
    tags = model.__sklearn_tags__()
    assert tags.input_tags.string and not tags.input_tags.two_d_array
    fitted = model.fit(pd.DataFrame({"path": list(X)}).path.tolist(), y)
    assert not hasattr(clone(fitted), "model_")


def test_grid_search_over_its_parameters(backbone, images):
    X, y = images
    search = GridSearchCV(tiny(backbone, validation_fraction=None),
                          {"epochs": [0, 1]}, cv=2, scoring="neg_log_loss")
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 2
    assert search.best_estimator_.n_epochs_ == 1 + search.best_params_["epochs"]
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.predict_proba(X).shape == (24, 2)


def test_stacking_fine_tuned_models(backbone, images):
    X, y = images
    stack = StackingClassifier(
        [("a", tiny(backbone, epochs=0, validation_fraction=None)),
         ("b", tiny(backbone, epochs=0, head_init="train", head_epochs=2, learning_rate=0.1,
                    validation_fraction=None))],
        final_estimator=LogisticRegression(), cv=2, stack_method="predict_proba")
    stack.fit(X, y)
    proba = stack.predict_proba(X)
    assert proba.shape == (24, 2) and np.allclose(proba.sum(1), 1)
    assert stack.transform(X).shape == (24, 2)  # one column per base model (binary)
    assert stack.score(X, y) >= 0.9


def test_kfold_early_stops_each_fold_on_its_held_out_fold(backbone, images, capsys):
    X, y = images
    from sklearn.model_selection import StratifiedKFold

    ensemble = KFoldEnsembleClassifier(tiny(backbone, epochs=1), cv=2, verbose=True).fit(X, y)
    folds = StratifiedKFold(2, shuffle=True, random_state=0).split(X, y)
    for model, (_, held_out) in zip(ensemble.estimators_, folds, strict=True):
        # validated on its 12 held-out images, not on a split of its training images
        kept = model.history_["val_loss"][model.best_epoch_ - 1]
        proba = model.predict_proba(X[held_out])
        assert log_loss(y[held_out], proba, labels=model.classes_) == pytest.approx(
            kept, abs=1e-5)
        np.testing.assert_allclose(ensemble.oof_proba_[held_out], proba, atol=1e-6)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("fold")]
    assert [line.split("(")[-1] for line in lines] == [
        f"epoch kept {m.best_epoch_})" for m in ensemble.estimators_]
    np.testing.assert_allclose(
        ensemble.predict_proba(X),
        np.mean([m.predict_proba(X) for m in ensemble.estimators_], axis=0))


def test_flip_tta_averages_the_mirrored_images(backbone, images):
    X, y = images
    tta = FlipTTAClassifier(tiny(backbone, epochs=1, augment=None)).fit(X, y)
    model = tta.head_
    assert model.tta == "flip" and model.augment == "flip"
    plain = clone(model).set_params(tta=None)
    plain.model_, plain.classes_, plain.input_size_ = model.model_, model.classes_, (16, 16)
    expected = (plain.predict_proba(X) + plain.predict_proba(X[:, :, ::-1])) / 2
    np.testing.assert_allclose(tta.predict_proba(X), expected, atol=1e-6)
    assert np.abs(plain.predict_proba(X) - expected).max() > 1e-6


def test_cli_finetune_then_predict(tmp_path, images, capsys):
    from PIL import Image

    from skmtl.cli import main
    from skmtl.cli._model_file import load_model

    X, y = images
    for i, (image, label) in enumerate(zip(X, y, strict=True)):
        (tmp_path / "train" / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(tmp_path / "train" / label / f"{i}.png")
    (tmp_path / "test").mkdir()
    for i in range(6):
        Image.fromarray(X[i * 4]).save(tmp_path / "test" / f"t{i}.png")
    out = tmp_path / "model.joblib"
    assert main(["finetune", "--train", str(tmp_path / "train"), "--out", str(out),
                 "--weights", "none", "--input-size", "32", "--epochs", "0",
                 "--trainable-layers", "10", "--batch-size", "8", "--validation-fraction",
                 "0.25", "--quiet"]) == 0
    assert "validation log loss" in capsys.readouterr().out
    assert (tmp_path / "model.joblib.sha256").is_file()
    assert main(["predict", "--model", str(out), "--test", str(tmp_path / "test"),
                 "--out", str(tmp_path / "sub.csv"), "--quiet"]) == 0
    submission = pd.read_csv(tmp_path / "sub.csv")
    model = load_model(out)
    assert model.backbone_name_ == "efficientnet_lite0" and model.input_size_ == (32, 32)
    assert list(submission.columns) == ["id", "dark", "light"] and len(submission) == 6
    paths = [str(tmp_path / "test" / f"{i}.png") for i in submission.id]
    np.testing.assert_allclose(submission[["dark", "light"]].to_numpy(),
                               model.predict_proba(paths), atol=1e-6)
