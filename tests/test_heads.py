"""MultiBranchClassifier on small synthetic problems with a known answer."""

from __future__ import annotations

import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_classifier
from sklearn.ensemble import StackingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import (
    GridSearchCV,
    StratifiedKFold,
    check_cv,
    cross_val_predict,
)

from skmtl.heads import make_head
from skmtl.heads._branches import resolve_branches
from skmtl.heads._folds import training_batch_size, validation_splits
from skmtl.heads._logistic_base import logistic_weights
from skmtl.heads._model import MIN_IMPROVEMENT, early_stopping
from skmtl.heads.multibranch import (
    MultiBranchClassifier,
    apply_temperature,
    find_branches,
    fit_temperature,
)

FAST = {"epochs": 15, "patience": 4, "units": 16, "batch_size": 64, "l2": 1e-3, "n_models": 1,
        "learning_rate": 0.01}


@pytest.fixture(scope="module")
def data():
    """Three classes, signal in two 'backbones' a (8 columns) and b (5 columns)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 240)
    a = rng.normal(size=(240, 8)) + 1.5 * np.eye(3)[y] @ rng.normal(size=(3, 8))
    b = rng.normal(size=(240, 5)) + 1.5 * np.eye(3)[y] @ rng.normal(size=(3, 5))
    X = pd.DataFrame(np.hstack([a, b]), columns=[f"a__{i}" for i in range(8)]
                     + [f"b__{i}" for i in range(5)])
    return X, np.array(["cat", "dog", "fox"])[y]


def dense_inputs(model):
    return sorted(int(layer.kernel.shape[0]) for layer in model.model_.layers
                  if layer.name.endswith("_dense"))


def test_is_a_classifier_for_scikit_learn():
    head = MultiBranchClassifier()
    tags = head.__sklearn_tags__()
    assert is_classifier(head) and tags.estimator_type == "classifier"
    assert tags.classifier_tags is not None and tags.target_tags.required
    assert isinstance(check_cv(5, np.array([0, 1] * 5), classifier=is_classifier(head)),
                      StratifiedKFold)


def test_branches_from_names_explicit_sizes_and_dict(data):
    X, y = data
    auto = MultiBranchClassifier(**FAST).fit(X, y)
    assert [(n, len(c)) for n, c, _ in auto.branches_] == [("a", 8), ("b", 5)]
    assert dense_inputs(auto) == [5, 8]
    sizes = MultiBranchClassifier(branches=[8, 5], **FAST).fit(X.to_numpy(), y)
    assert dense_inputs(sizes) == [5, 8]
    named = MultiBranchClassifier(branches={"first": list(X.columns[:8]),
                                            "second": list(X.columns[8:])}, **FAST).fit(X, y)
    assert dense_inputs(named) == [5, 8]
    single = MultiBranchClassifier(**FAST).fit(X.to_numpy(), y)
    assert dense_inputs(single) == [13]
    with pytest.raises(ValueError, match=r"sum to 12, but X has 13"):
        MultiBranchClassifier(branches=[8, 4], **FAST).fit(X, y)


def test_branches_by_column_name_are_checked():
    names = np.array(["a__0", "a__1", "b__0"])
    (first, cols, _), (second, cols2, _) = resolve_branches(
        {"x": ["b__0"], "y": ["a__1", "a__0"]}, names, 3)
    assert (first, cols.tolist(), second, cols2.tolist()) == ("x", [2], "y", [1, 0])
    with pytest.raises(ValueError, match="columns that X does not have: c__0"):
        resolve_branches({"x": ["a__0", "c__0"]}, names, 3)
    with pytest.raises(ValueError, match="need a pandas X"):
        resolve_branches({"x": ["a__0"]}, None, 3)


def test_find_branches_spatial_and_union_prefixes():
    names = [f"feat-1__lite0__h{i}w{j}c{k}" for i in range(2) for j in range(3)
             for k in range(4)] + ["feat-2__lite1__0", "feat-2__lite1__1"]
    branches = find_branches(names, len(names))
    assert [(n, len(c), s) for n, c, s in branches] == [
        ("feat-1__lite0", 24, (2, 3, 4)), ("feat-2__lite1", 2, None)]
    assert find_branches(None, 7)[0][2] is None and len(find_branches(None, 7)[0][1]) == 7


def test_spatial_branch_restores_the_map_and_pools(data):
    rng = np.random.default_rng(1)
    X, y = data
    maps = pd.DataFrame(rng.normal(size=(len(y), 2 * 2 * 3)),
                        columns=[f"m__h{i}w{j}c{k}" for i in range(2) for j in range(2)
                                 for k in range(3)])
    head = MultiBranchClassifier(**FAST).fit(pd.concat([X, maps], axis=1), y)
    reshape = head.model_.get_layer("b2_m_map")
    assert tuple(reshape.output.shape[1:]) == (2, 2, 3)
    assert head.model_.get_layer("b2_m_pool").output.shape[-1] == 3


def test_learns_and_gives_probabilities(data):
    X, y = data
    head = MultiBranchClassifier(**FAST).fit(X, y)
    proba = head.predict_proba(X)
    assert proba.shape == (240, 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=0, atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "The y_prob values do not sum to one"
        assert log_loss(y, proba, labels=head.classes_) < 0.5
    assert list(head.classes_) == ["cat", "dog", "fox"]
    assert (head.predict(X) == y).mean() > 0.9
    assert head.score(X, y) > 0.9


def test_binary_gives_two_columns(data):
    X, y = data
    binary = np.where(y == "cat", "cat", "other")
    proba = MultiBranchClassifier(**FAST).fit(X, binary).predict_proba(X)
    assert proba.shape == (240, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)


def test_deterministic_for_a_random_state(data):
    X, y = data
    a = MultiBranchClassifier(**FAST, random_state=3).fit(X, y).predict_proba(X)
    b = MultiBranchClassifier(**FAST, random_state=3).fit(X, y).predict_proba(X)
    c = MultiBranchClassifier(**FAST, random_state=4).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_early_stopping_restores_the_best_epoch(data):
    X, y = data
    noisy = np.random.default_rng(0).permutation(y)  # nothing to learn: overfits at once
    head = MultiBranchClassifier(units=128, dropout=0.0, l2=0.0, epochs=200, patience=4,
                                 learning_rate=0.01, n_models=1, linear_path=False).fit(X, noisy)
    (history,), (best,) = head.histories_, head.best_epoch_
    assert head.history_ is history  # scikeras' format: a dict of per-epoch lists
    assert all(isinstance(v, list) and len(v) == len(history["loss"]) for v in history.values())
    ran = len(history["loss"])
    assert ran < 200 and "val_loss" in history
    assert best == ran - 4
    # the kept epoch is the last that lowered the best loss by 0.1%: within 0.1% of the min
    assert history["val_loss"][best - 1] <= min(history["val_loss"]) / (1 - MIN_IMPROVEMENT)


def test_early_stopping_ignores_a_loss_creeping_down_in_its_fourth_digit():
    """A held-out loss that keeps falling by 0.01% an epoch (a decaying L2 term on a
    100-class set) stops after patience epochs; a loss falling by 1% an epoch does not."""
    import keras

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(loss="mse")

    def epochs_run(losses):
        callback = early_stopping(patience=5)
        callback.set_model(model)
        callback.on_train_begin()
        for epoch, loss in enumerate(losses):
            callback.on_epoch_end(epoch, {"val_loss": loss})
            if model.stop_training:
                model.stop_training = False
                return epoch + 1, callback.best_epoch + 1
        return len(losses), callback.best_epoch + 1

    assert epochs_run(0.36 * 0.9999 ** np.arange(100)) == (6, 1)
    assert epochs_run(0.36 * 0.99 ** np.arange(100)) == (100, 100)


def test_validation_split_is_stratified_even_for_sorted_data(data, monkeypatch):
    X, y = data
    order = np.argsort(y, kind="stable")
    seen = {}
    original = MultiBranchClassifier._validation_splits

    def spy(self, ys):
        out = original(self, ys)
        seen["val"] = y[order][out[0][1]]
        return out

    monkeypatch.setattr(MultiBranchClassifier, "_validation_splits", spy)
    MultiBranchClassifier(**FAST).fit(X.iloc[order], y[order])
    assert len(seen["val"]) == 48  # 20% of 240
    assert sorted(np.unique(seen["val"])) == ["cat", "dog", "fox"]


@pytest.mark.parametrize("n_models", [1, 5])
def test_groups_are_never_split_between_training_and_early_stopping(n_models):
    labels = np.repeat(np.arange(3), 40)
    groups = np.tile(np.arange(60), 2)  # 60 images and their mirrors
    splits = validation_splits(labels, n_models=n_models, validation_fraction=0.2,
                               patience=5, random_state=0, groups=groups)
    assert len(splits) == n_models
    for train, val in splits:
        assert not set(groups[train]) & set(groups[val])
        assert set(labels[val]) == {0, 1, 2}
    held_out = np.concatenate([val for _, val in splits])
    assert len(held_out) == (120 if n_models == 5 else 24)
    # without groups the mirrors of training images land in the validation rows
    plain = validation_splits(labels, n_models=n_models, validation_fraction=0.2,
                              patience=5, random_state=0)
    assert any(set(groups[train]) & set(groups[val]) for train, val in plain)


def test_fit_uses_groups_for_its_folds(data, monkeypatch):
    X, y = data
    groups = np.arange(len(y)) // 2
    seen = []
    original = MultiBranchClassifier._validation_splits

    def spy(self, y_encoded):
        seen.extend(original(self, y_encoded))
        return seen

    monkeypatch.setattr(MultiBranchClassifier, "_validation_splits", spy)
    head = MultiBranchClassifier(**{**FAST, "n_models": 2}).fit(X, y, groups=groups)
    assert len(seen) == 2 and len(head.histories_) == 2
    for train, val in seen:
        assert not set(groups[train]) & set(groups[val])
    with pytest.raises(ValueError, match=r"groups has shape \(10,\); expected \(240,\)"):
        MultiBranchClassifier(**FAST).fit(X, y, groups=np.arange(10))


def test_validation_data_is_used_instead_of_a_split(data, monkeypatch):
    X, y = data
    monkeypatch.setattr(MultiBranchClassifier, "_validation_splits",
                        lambda *a: pytest.fail("should not split"))
    head = MultiBranchClassifier(**FAST).fit(X[:180], y[:180], validation_data=(X[180:], y[180:]))
    assert "val_loss" in head.histories_[0]


def test_class_weight_balanced_and_no_early_stopping(data):
    X, y = data
    head = MultiBranchClassifier(**{**FAST, "patience": None, "epochs": 3},
                                 class_weight="balanced").fit(X, y)
    assert len(head.histories_[0]["loss"]) == 3 and "val_loss" not in head.histories_[0]
    no_split = MultiBranchClassifier(**{**FAST, "epochs": 3}, validation_fraction=0).fit(X, y)
    assert len(no_split.histories_[0]["loss"]) == 3 and "val_loss" not in no_split.histories_[0]


def test_n_models_early_stop_on_disjoint_folds_and_are_averaged(data, monkeypatch):
    X, y = data
    validation_rows = []
    original = MultiBranchClassifier._fit_member

    def spy(self, model, Xs, ys, sw, validation, *args):
        validation_rows.append(validation[0][0][:, 0])  # column a__0 of the held-out rows
        assert len(ys) + len(validation[1]) == len(y)
        return original(self, model, Xs, ys, sw, validation, *args)

    monkeypatch.setattr(MultiBranchClassifier, "_fit_member", spy)
    head = MultiBranchClassifier(**{**FAST, "n_models": 3}, standardize=False).fit(X, y)
    # three folds of 80 rows: together every training row, each held out once
    assert [len(r) for r in validation_rows] == [80] * 3
    np.testing.assert_array_equal(np.sort(np.concatenate(validation_rows)),
                                  np.sort(X["a__0"].to_numpy(dtype=np.float32)))
    assert len(head.histories_) == len(head.best_epoch_) == 3
    members = [layer for layer in head.model_.layers if layer.name.startswith("head")]
    assert len(members) == 3
    inputs = [X.to_numpy(np.float32)[:, cols] for _, cols, _ in head.branches_]
    mean = np.mean([m.predict(inputs, verbose=0) for m in members], axis=0)
    np.testing.assert_allclose(head.predict_proba(X), mean, rtol=1e-5, atol=1e-6)
    restored = pickle.loads(pickle.dumps(head))
    np.testing.assert_array_equal(restored.predict_proba(X), head.predict_proba(X))


def test_joint_linear_path_feeds_inputs_to_the_softmax(data):
    X, y = data
    head = MultiBranchClassifier(**FAST, linear_path=True, linear_C=None).fit(X, y)
    softmax = head.model_.get_layer("softmax")
    assert softmax.kernel.shape == (2 * FAST["units"] + 13, 3)
    assert head.score(X, y) > 0.9


def standardised(X):
    return (X - X.mean(axis=0)) / X.std(axis=0)


def test_logistic_base_alone_when_the_correction_does_not_help(data, monkeypatch):
    """When the trained correction scores worse on the held-out rows than the start, it is
    dropped: the head then predicts exactly what the logistic head predicts at its C."""
    import skmtl.heads.multibranch

    X, y = data
    measured = []

    def worse_after_training(model, validation):
        loss = held_out_log_loss(model, validation)
        measured.append(loss)
        return loss + 1.0 if len(measured) == 1 else loss  # 1st: the trained model

    held_out_log_loss = skmtl.heads.multibranch.model_log_loss
    monkeypatch.setattr(skmtl.heads.multibranch, "model_log_loss", worse_after_training)
    head = MultiBranchClassifier(**FAST).fit(X[:180], y[:180],
                                             validation_data=(X[180:], y[180:]))
    assert len(measured) == 2 and head.best_epoch_ == [0]
    # The base's C is the logistic head's choice; fitted from the same (cold) start at that
    # C, the two agree (the adaptive head's own final fit starts from its inner folds'
    # solutions, which within the solver's tolerance is another point).
    assert head.linear_C_ == make_head("logistic").fit(X[:180], y[:180]).C_
    logistic = make_head("logistic", C=head.linear_C_).fit(X[:180], y[:180])
    # (to the solver's tolerance: the base may solve in the rows' span, the head over the
    # features)
    np.testing.assert_allclose(head.predict_proba(X), logistic.predict_proba(X), atol=1e-3)
    assert not np.allclose(measured[0], measured[1])  # training had moved the model


@pytest.mark.parametrize("weighted", [False, True])
def test_each_model_penalises_its_base_like_a_regression_on_all_rows(data, weighted,
                                                                    monkeypatch):
    """Three models on 2/3 of the rows each: each base gets C * (all rows / its rows),
    or the ratio of total sample weights, the penalty per row of LogisticRegression(C)
    fitted on every row."""
    import skmtl.heads.multibranch

    X, y = data
    weights = np.random.default_rng(1).uniform(0.5, 2, len(y)) if weighted else None
    calls = []
    real = skmtl.heads.multibranch.set_logistic_base

    def recording(model, X, labels, C, sample_weight=None, **kwargs):
        share = len(labels) if sample_weight is None else float(np.sum(sample_weight))
        calls.append((len(labels), C, share))
        return real(model, X, labels, C, sample_weight, **kwargs)

    monkeypatch.setattr(skmtl.heads.multibranch, "set_logistic_base", recording)
    head = MultiBranchClassifier(**{**FAST, "n_models": 3, "epochs": 2}).fit(
        X, y, sample_weight=weights)
    assert [n for n, _, _ in calls] == [160, 160, 160]  # every row in two training sets
    total = sum(share for _, _, share in calls) / 2
    for _, C, share in calls:
        assert C == pytest.approx(head.linear_C_ * total / share)
        assert C != pytest.approx(head.linear_C_)


def test_logistic_base_takes_the_C_the_logistic_head_chooses(data):
    """linear_C="auto": the base's C is the one LogisticHeadClassifier chooses by inner CV
    on the same rows, and a given linear_C is kept."""
    X, y = data
    head = MultiBranchClassifier(**{**FAST, "epochs": 1}).fit(X, y)
    assert head.linear_C_ == make_head("logistic").fit(X, y).C_
    fixed = MultiBranchClassifier(**{**FAST, "epochs": 1}, linear_C=0.02).fit(X, y)
    assert fixed.linear_C_ == 0.02
    assert MultiBranchClassifier(**FAST, linear_C=None).fit(X, y).linear_C_ is None


def test_logistic_base_is_frozen_and_the_correction_learns_what_it_cannot():
    """A circular boundary: the frozen base stays the logistic regression's coefficients,
    the branch correction lifts held-out accuracy far above the regression's."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 4))
    y = (X[:, 0] ** 2 + X[:, 1] ** 2 > 1.4).astype(int)  # about half of each class
    # small batches: BatchNormalization's moving statistics need steps to settle
    head = MultiBranchClassifier(**{**FAST, "epochs": 20, "patience": 5, "units": 32,
                                    "batch_size": 8, "dropout": 0.1}).fit(
        X[:400], y[:400], validation_data=(X[400:500], y[400:500]))
    assert head.linear_C_ < 0.01  # no linear signal: the inner CV wants a strong penalty
    regression = LogisticRegression(C=head.linear_C_, max_iter=2000).fit(
        standardised(X[:400]), y[:400])
    kernel, bias = head.model_.get_layer("linear").get_weights()
    np.testing.assert_allclose(kernel[:, 1], regression.coef_[0], rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(kernel[:, 0], 0)
    np.testing.assert_allclose(bias, [0, regression.intercept_[0]], rtol=1e-3, atol=1e-5)
    assert head.best_epoch_[0] > 0
    logistic_accuracy = regression.score((X[500:] - X[:400].mean(0)) / X[:400].std(0), y[500:])
    assert logistic_accuracy < 0.65
    assert head.score(X[500:], y[500:]) > logistic_accuracy + 0.2


def softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_logistic_weights_reproduce_the_regression(n_classes):
    rng = np.random.default_rng(n_classes)
    Z = rng.normal(size=(120, 6))
    labels = rng.integers(0, n_classes, 120)
    weights = rng.uniform(0.5, 2, 120)
    kernel, bias = logistic_weights(Z, labels, n_classes, 0.1, weights)
    assert kernel.shape == (6, n_classes) and bias.shape == (n_classes,)
    expected = LogisticRegression(C=0.1, max_iter=2000).fit(Z, labels, sample_weight=weights)
    np.testing.assert_allclose(softmax(Z @ kernel + bias), expected.predict_proba(Z), atol=1e-5)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_warm_started_bases_reach_the_cold_regression(n_classes):
    """A base solved from the previous one's solution (shared ``start``) is the same
    regression as one solved from zero, to the solver's tolerance (1e-4 on the gradient):
    as close to the exact optimum as the cold start is."""
    rng = np.random.default_rng(n_classes)
    Z = rng.normal(size=(90, 150))  # more columns than rows: solved in the row space
    labels = rng.integers(0, n_classes, 90)
    start = {}
    logistic_weights(Z[:60], labels[:60], n_classes, 0.5, start=start)
    assert list(start) == [tuple(range(n_classes))]
    first = start[tuple(range(n_classes))][0].copy()
    kernel, bias = logistic_weights(Z[30:], labels[30:], n_classes, 0.5, start=start)
    assert not np.allclose(start[tuple(range(n_classes))][0], first)  # the new solution
    exact = LogisticRegression(C=0.5, max_iter=5000, tol=1e-10).fit(Z[30:], labels[30:])
    cold = logistic_weights(Z[30:], labels[30:], n_classes, 0.5)
    warm_error, cold_error = (np.abs(softmax(Z @ k + b) - exact.predict_proba(Z)).max()
                              for k, b in ((kernel, bias), cold))
    assert warm_error < 0.01 and cold_error < 0.01 and warm_error < 3 * cold_error


def test_logistic_weights_of_absent_classes():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(40, 3))
    labels = np.repeat([0, 2], 20)  # class 1 of 3 absent from this fold
    kernel, bias = logistic_weights(Z, labels, 3, 1.0)
    np.testing.assert_array_equal(kernel[:, 1], 0)
    proba = softmax(Z @ kernel + bias)
    assert proba[:, 1].max() < 0.5 / 41 * 1.01  # half a row's share at most
    one = softmax(Z @ (k := logistic_weights(Z, np.zeros(40, int), 2, 1.0))[0] + k[1])
    np.testing.assert_allclose(one[:, 0], 1 / (1 + 0.5 / 41))  # one class: a constant


def test_fit_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=2.0, size=(4000, 4))
    true = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(4, p=p) for p in true])
    overconfident = apply_temperature(true, 1 / 3)  # softmax(3 * logits)
    assert fit_temperature([(overconfident, labels)]) == pytest.approx(3.0, rel=0.1)
    # exact but for probabilities below the 1e-12 clip
    np.testing.assert_allclose(apply_temperature(overconfident, 3.0), true, atol=1e-3)


def test_calibrate_changes_probabilities_not_classes(data):
    X, y = data
    plain = MultiBranchClassifier(**{**FAST, "n_models": 2}).fit(X, y)
    calibrated = MultiBranchClassifier(**{**FAST, "n_models": 2}, calibrate=True).fit(X, y)
    assert plain.temperature_ == 1.0 and calibrated.temperature_ != 1.0
    np.testing.assert_array_equal(calibrated.predict(X), plain.predict(X))
    np.testing.assert_allclose(calibrated.predict_proba(X),
                               apply_temperature(plain.predict_proba(X),
                                                 calibrated.temperature_), rtol=1e-4,
                               atol=1e-6)


def test_predictions_do_not_depend_on_row_order(data):
    """scikit-learn's check_methods_sample_order_invariance, at float32 precision."""
    X, y = data
    head = MultiBranchClassifier(**{**FAST, "n_models": 2}).fit(X, y)
    order = np.random.default_rng(0).permutation(len(X))
    np.testing.assert_allclose(head.predict_proba(X)[order], head.predict_proba(X.iloc[order]),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(head.predict(X)[order], head.predict(X.iloc[order]))


def test_columns_must_match_at_predict(data):
    X, y = data
    head = MultiBranchClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="feature names should match"):
        head.predict_proba(X.rename(columns={"a__0": "z__0"}))


@pytest.mark.slow  # a minute; pipelines in GridSearchCV/stacking: tests/test_ensemble.py
def test_cross_val_predict_grid_search_and_stacking(data):
    X, y = data
    proba = cross_val_predict(MultiBranchClassifier(**FAST), X, y, cv=3, method="predict_proba")
    assert proba.shape == (240, 3) and (np.array(["cat", "dog", "fox"])[proba.argmax(1)]
                                        == y).mean() > 0.85
    search = GridSearchCV(MultiBranchClassifier(**FAST), {"units": [4, 16]}, cv=3).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_ == search.cv_results_["params"][int(np.argmax(scores))]
    assert search.best_score_ == scores.max() > 0.85
    dense = [layer for layer in search.best_estimator_.model_.layers
             if layer.name.endswith("_dense")]  # the refit model has the chosen width
    assert dense and {layer.units for layer in dense} == {search.best_params_["units"]}
    stack = StackingClassifier(
        [("mb", MultiBranchClassifier(**FAST)), ("lr", LogisticRegression(max_iter=500))],
        final_estimator=MultiBranchClassifier(**FAST), cv=3,
    ).fit(X, y)
    assert stack.predict_proba(X).shape == (240, 3) and stack.score(X, y) > 0.85


def test_clone_pickle_and_joblib_round_trip(data, tmp_path):
    X, y = data
    head = MultiBranchClassifier(**FAST).fit(X, y)
    assert clone(head).get_params()["units"] == 16
    expected = head.predict_proba(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(head)).predict_proba(X), expected)
    joblib.dump(head, tmp_path / "head.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "head.joblib").predict_proba(X),
                                  expected)


@pytest.mark.parametrize(("param", "value"), [("units", 0), ("dropout", 1.0),
                                              ("validation_fraction", -0.1)])
def test_bad_parameters(data, param, value):
    X, y = data
    with pytest.raises(ValueError, match=param):
        MultiBranchClassifier(**{**FAST, param: value}).fit(X, y)
    with pytest.raises(ValueError, match=r"'optimizer' parameter.*Got 'lbfgs'"):
        MultiBranchClassifier(**FAST, optimizer="lbfgs").fit(X, y)


def test_auto_batch_keeps_an_epoch_to_sixteen_steps(data, monkeypatch):
    """batch_size="auto": 32 rows up to 16 steps an epoch, then as many rows as keep an
    epoch at 16 steps; a given batch size is kept."""
    import skmtl.heads.multibranch

    assert [training_batch_size("auto", n) for n in (10, 512, 513, 2322)] == [32, 32, 33, 146]
    assert training_batch_size(64, 5000) == 64
    X, y = data
    big = pd.concat([X] * 4, ignore_index=True)  # 960 rows; each of 2 models trains on 480
    used = []
    real = skmtl.heads.multibranch.training_batch_size
    monkeypatch.setattr(skmtl.heads.multibranch, "training_batch_size",
                        lambda b, n: used.append((n, real(b, n))) or used[-1][1])
    head = MultiBranchClassifier(**{**FAST, "batch_size": "auto", "n_models": 2, "epochs": 1}
                                 ).fit(big, np.tile(y, 4))
    assert used == [(480, 32), (480, 32)]
    used.clear()
    clone(head).set_params(n_models=1, validation_fraction=0.1).fit(
        pd.concat([big] * 2, ignore_index=True), np.tile(y, 8))
    assert used == [(1728, 108)]
    assert head.predict_proba(X).shape == (240, 3)


@pytest.mark.parametrize("scale", [1e-10, 1.0, 1e6])
def test_standardize_learns_at_any_feature_scale(data, scale):
    """Random-weight backbones give features of 1e-10: still standardised to unit scale."""
    X, y = data
    head = MultiBranchClassifier(**FAST).fit(X * scale, y)
    _, std = head.standardizers_[0]
    np.testing.assert_allclose(std, X.iloc[:, :8].std(ddof=0) * scale, rtol=1e-5)
    assert head.score(X * scale, y) > 0.9


def test_standardizer_of_a_spatial_map_is_per_channel():
    from skmtl.heads._branches import standardizer

    rng = np.random.default_rng(0)
    maps = rng.normal(size=(10, 2, 3, 4)) * np.array([1.0, 2.0, 3.0, 0.0])
    offset, scale = standardizer(maps.reshape(10, -1), (2, 3, 4))
    assert offset.shape == scale.shape == (24,)
    np.testing.assert_allclose(scale[:4], [*maps.reshape(-1, 4).std(axis=0)[:3], 1.0])
    np.testing.assert_array_equal(scale.reshape(6, 4), np.tile(scale[:4], (6, 1)))


def test_models_that_share_their_rows_fit_the_logistic_base_once(data, monkeypatch):
    """With validation data every model trains on the same rows: one regression serves
    all of them (it was fitted once per model), and each model starts from it."""
    import skmtl.heads.multibranch

    X, y = data
    calls = []
    real = skmtl.heads.multibranch.set_logistic_base

    def counting(model, *args, **kwargs):
        calls.append(1)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(skmtl.heads.multibranch, "set_logistic_base", counting)
    head = MultiBranchClassifier(**{**FAST, "n_models": 3, "epochs": 2}).fit(
        X[:180], y[:180], validation_data=(X[180:], y[180:]))
    assert len(calls) == 1 and len(head.histories_) == 3
