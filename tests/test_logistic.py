"""LogisticHeadClassifier: the C it chooses follows the data; a given C is kept."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import cross_val_predict
from sklearn.preprocessing import StandardScaler

from skmtl.heads import make_head
from skmtl.heads._logistic_cv import DEFAULT_CS, scores_by_C, softmax_proba
from skmtl.heads.logistic import LogisticHeadClassifier, parabola_minimum


def blobs(n_classes: int, per_class: int, n_features: int, spread: float, seed: int = 0):
    """Gaussian classes around random centres; ``spread`` is the noise relative to them."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, n_features))
    y = np.repeat(np.arange(n_classes), per_class)
    X = centres[y] + spread * rng.normal(size=(len(y), n_features))
    return X, y


def test_separable_many_classes_get_a_weak_penalty():
    """50 well-separated classes of 6 rows: the best log loss needs a large C."""
    X, y = blobs(50, 6, 40, spread=0.3)
    head = LogisticHeadClassifier().fit(X, y)
    assert head.C_ >= 0.5
    # the inner folds train on 2/3 of the rows: C keeps the penalty per row on all rows
    assert head.C_ == pytest.approx(parabola_minimum(head.Cs_, head.cv_log_loss_) * 2 / 3)


def test_noisy_labels_get_a_strong_penalty():
    """Two classes whose labels are mostly noise: a small C is best."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 60))
    y = (X[:, 0] + 3 * rng.normal(size=300) > 0).astype(int)
    head = LogisticHeadClassifier().fit(X, y)
    assert head.C_ <= 0.01


def test_chosen_C_beats_a_fixed_one_where_the_fixed_one_is_wrong():
    """On many small classes the adaptive head's held-out log loss is well below C=0.01's."""
    X_all, y_all = blobs(40, 16, 30, spread=0.8, seed=1)
    train = np.arange(len(y_all)) % 2 == 0  # 8 rows a class to fit, 8 to score
    X, y, X_test, y_test = X_all[train], y_all[train], X_all[~train], y_all[~train]
    auto = LogisticHeadClassifier().fit(X, y)
    fixed = LogisticHeadClassifier(C=0.01).fit(X, y)
    auto_loss = log_loss(y_test, auto.predict_proba(X_test), labels=auto.classes_)
    fixed_loss = log_loss(y_test, fixed.predict_proba(X_test), labels=fixed.classes_)
    assert auto.C_ > 0.01
    assert auto_loss < 0.8 * fixed_loss


def test_given_C_is_respected_and_matches_scaler_plus_logistic_regression():
    X, y = blobs(4, 30, 12, spread=1.0)
    head = LogisticHeadClassifier(C=0.37, tol=1e-8).fit(X, y)
    assert head.C_ == 0.37 and head.Cs_ is None and head.cv_log_loss_ is None
    reference = LogisticRegression(C=0.37, max_iter=2000, tol=1e-10).fit(
        StandardScaler().fit_transform(X), y)
    np.testing.assert_allclose(head.coef_, reference.coef_, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(head.predict_proba(X),
                               reference.predict_proba(StandardScaler().fit(X).transform(X)),
                               atol=1e-6)


def test_classes_rarer_than_the_inner_folds():
    """Classes with 1 and 2 rows (fewer than 3 folds) neither break the fit nor drop out of
    the scoring; the probabilities have one column per class."""
    X, y = blobs(6, 10, 8, spread=0.5)
    X = np.vstack([X, [[5.0] * 8], [[-5.0] * 8], [[-5.0] * 7 + [4.0]]])
    y = np.concatenate([y, [6, 7, 7]])
    head = LogisticHeadClassifier().fit(X, y)
    assert list(head.classes_) == list(range(8))
    assert head.predict_proba(X).shape == (len(y), 8)
    assert np.all(np.isfinite(head.cv_log_loss_))


def test_a_fold_without_a_class_is_charged_for_it():
    """Held-out rows of a class that a fold's training rows lack are scored against the
    small probability of an unseen class, so the loss is large, not skipped."""
    X, y = blobs(3, 12, 5, spread=0.3)
    X = np.vstack([X, [[9.0] * 5]])
    y = np.concatenate([y, [3]])  # class 3 has one row: always absent from its training fold
    _, scores, _ = scores_by_C(StandardScaler().fit_transform(X), y, 4, Cs=[1.0], cv=3)
    with_rare = scores[0] * len(y)
    _, scores, _ = scores_by_C(StandardScaler().fit_transform(X[:-1]), y[:-1], 3, Cs=[1.0],
                             cv=3)
    assert with_rare - scores[0] * (len(y) - 1) > 5  # -log(1e-4 / ~1) is about 9


def test_path_starts_at_0_1_walks_to_a_decade_past_the_best_value_then_refines_beside_it():
    """Labels that are mostly noise: C=1 is worse than C=0.1, so the path walks down from 0.1
    a decade a step, stops one decade past the best, then tries the half-decades beside it."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 60))
    y = (X[:, 0] + 3 * rng.normal(size=300) > 0).astype(int)
    Cs, scores, share = scores_by_C(StandardScaler().fit_transform(X), y, 2, cv=3)
    assert share == pytest.approx(2 / 3, abs=0.01)
    decades = [C for C in Cs if C in DEFAULT_CS]
    score = dict(zip(Cs, scores, strict=True))
    assert decades[-1] == 1.0 and score[1.0] > score[0.1]  # up once, worse: turn back
    start = DEFAULT_CS.index(decades[0])
    assert decades == list(DEFAULT_CS[start:DEFAULT_CS.index(1.0) + 1])  # no gaps
    best_decade = min(decades, key=score.get)
    assert best_decade == 0.01 and decades[0] == best_decade / 10  # one decade past, stop
    assert len(decades) < len(DEFAULT_CS)
    halves = sorted(set(Cs) - set(decades))
    assert halves == pytest.approx([best_decade * f for f in (10**-0.5, 10**0.5)])
    assert Cs[int(np.argmin(scores))] in (best_decade, *halves)


def test_path_with_a_weak_best_penalty_never_visits_the_strong_end():
    """Separable classes: the path goes up from C=0.1 and stops a decade past the best, so
    the slow strong-penalty end (1e-4 .. 1e-2) is never fitted."""
    X, y = blobs(50, 6, 40, spread=0.3)
    Cs, scores, _ = scores_by_C(StandardScaler().fit_transform(X), y, 50, cv=3)
    assert Cs.min() >= 0.1 and Cs[int(np.argmin(scores))] >= 1.0


def test_row_space_basis_matches_qr_and_gram_blocks():
    """The Cholesky basis of the rows' Gram matrix spans the rows like QR's (the same
    coordinates up to the sign of each column), a given Gram matrix gives the same result,
    and coefficients map to the features and back."""
    from skmtl.heads._logistic_cv import row_space

    rng = np.random.default_rng(0)
    X, T, coef = rng.normal(size=(30, 80)), rng.normal(size=(5, 80)), rng.normal(size=(3, 80))
    basis, Z = row_space(X)
    _, R = np.linalg.qr(X.T)
    np.testing.assert_allclose(np.abs(Z), np.abs(R.T), atol=1e-7)
    np.testing.assert_allclose(basis.coordinates(X), Z, atol=1e-7)
    Q = X.T @ np.linalg.inv(Z.T)  # the basis over the features: orthonormal
    np.testing.assert_allclose(Q.T @ Q, np.eye(30), atol=1e-7)
    np.testing.assert_allclose(basis.coordinates(T), T @ Q, atol=1e-7)
    np.testing.assert_allclose(basis.to_features(basis.from_features(coef)), coef @ Q @ Q.T,
                               atol=1e-7)
    given, Z_given = row_space(X, X @ X.T)
    np.testing.assert_allclose(Z_given, Z, atol=1e-12)
    np.testing.assert_allclose(given.coordinates(T, X @ T.T), basis.coordinates(T), atol=1e-9)
    assert row_space(X.T)[0] is None  # more rows than columns: the features themselves


def test_final_fit_starts_from_the_inner_folds_mean_solution():
    """With C="auto" the fit on all rows starts where the inner folds' models at the best C
    average out: fewer L-BFGS iterations than a fit from zero at the same C, and the same
    model to the solver's tolerance."""
    X, y = blobs(10, 30, 60, spread=3.0, seed=2)
    auto = LogisticHeadClassifier().fit(X, y)
    fixed = LogisticHeadClassifier(C=auto.C_).fit(X, y)
    assert auto.n_iter_ < fixed.n_iter_
    np.testing.assert_allclose(auto.predict_proba(X), fixed.predict_proba(X), atol=0.005)
    np.testing.assert_array_equal(auto.predict(X), fixed.predict(X))


def test_regression_in_the_row_space_equals_scikit_learns():
    """More features than rows: the fit on the rows' span has scikit-learn's solution."""
    from skmtl.heads._logistic_cv import fit_logistic

    X, y = blobs(5, 8, 100, spread=1.0)  # 40 rows, 100 features
    X = StandardScaler().fit_transform(X)
    for labels in (y, (y > 1).astype(int)):
        coef, intercept, _ = fit_logistic(X, labels, 0.3, tol=1e-8, max_iter=10000)
        reference = LogisticRegression(C=0.3, tol=1e-8, max_iter=10000).fit(X, labels)
        np.testing.assert_allclose(coef, reference.coef_, atol=1e-5)
        np.testing.assert_allclose(intercept, reference.intercept_, atol=1e-5)


def test_string_labels_sample_weights_and_cross_val_predict():
    X, y = blobs(3, 20, 6, spread=1.0)
    labels = np.array(["ant", "bee", "wasp"])[y]
    head = LogisticHeadClassifier().fit(X, labels, sample_weight=np.ones(len(y)))
    assert set(head.predict(X)) <= set(labels)
    proba = cross_val_predict(LogisticHeadClassifier(), X, labels, cv=3, method="predict_proba")
    assert proba.shape == (60, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_sample_weight_is_used():
    X, y = blobs(2, 40, 5, spread=2.0)
    weights = np.where(y == 0, 5.0, 0.2)
    plain = LogisticHeadClassifier(C=1.0).fit(X, y)
    weighted = LogisticHeadClassifier(C=1.0).fit(X, y, sample_weight=weights)
    assert weighted.predict_proba(X)[:, 0].mean() > plain.predict_proba(X)[:, 0].mean() + 0.05


def test_one_class_is_refused():
    with pytest.raises(ValueError, match="at least 2 classes"):
        LogisticHeadClassifier().fit(np.zeros((4, 2)), [1, 1, 1, 1])


def test_make_head_logistic_is_the_adaptive_head_and_clones_estimators():
    head = make_head("logistic")
    assert isinstance(head, LogisticHeadClassifier) and head.C == "auto"
    assert make_head("logistic", C=0.01).C == 0.01
    mine = LogisticHeadClassifier()
    tuned = make_head(mine, C=2.0)
    assert tuned.C == 2.0 and mine.C == "auto"  # the caller's estimator is not changed
    untouched = make_head(mine)  # no parameters: still a copy, so fitting it leaves mine
    assert untouched is not mine and untouched.get_params() == mine.get_params()


def test_groups_keep_near_duplicates_on_one_side_of_the_inner_folds():
    """Each row duplicated (an image and its mirror): without groups a held-out row's twin
    is in the training rows and a weak penalty looks best; with groups every inner fold
    holds out whole pairs, and the C chosen is no larger than on the rows without twins
    (duplicated rows double the summed loss, so the same fit needs half the C)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 40))
    y = (X[:, 0] + 2 * rng.normal(size=120) > 0).astype(int)  # mostly noise
    X2 = np.vstack([X, X + 1e-3 * rng.normal(size=X.shape)])
    y2 = np.concatenate([y, y])
    groups = np.tile(np.arange(120), 2)
    leaky = LogisticHeadClassifier().fit(X2, y2)
    grouped = LogisticHeadClassifier().fit(X2, y2, groups=groups)
    alone = LogisticHeadClassifier().fit(X, y)
    assert grouped.C_ <= leaky.C_ / 10
    assert grouped.C_ <= alone.C_ <= 0.1
    with pytest.raises(ValueError, match="groups has shape"):
        LogisticHeadClassifier().fit(X2, y2, groups=groups[:10])


def test_k_fold_progress_names_the_C_each_fold_chose(capsys):
    from skmtl import KFoldEnsembleClassifier
    from skmtl.heads._summary import describe_head

    X, y = blobs(3, 20, 6, spread=1.0)
    model = KFoldEnsembleClassifier(LogisticHeadClassifier(), cv=3, verbose=True).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for line, fold in zip(lines, model.estimators_, strict=True):
        assert line.endswith(f"(C={fold.C_:.3g})")
    assert describe_head(LogisticRegression()) == ""


def test_row_space_copes_with_float32_repeated_rows():
    """float32 features with repeated rows (an image and its mirror, a tiny random model):
    the Gram matrix is singular and, in float32, indefinite; the fit still equals
    scikit-learn's on the same rows."""
    from sklearn.linear_model import LogisticRegression

    from skmtl.heads._logistic_cv import fit_logistic

    rng = np.random.default_rng(0)
    base = rng.normal(size=(12, 576)).astype(np.float32) * 30 + 5
    X = np.concatenate([base, base])  # every row twice
    y = np.tile(np.arange(3), 8)
    coef, intercept, _ = fit_logistic(X, y, 0.1)
    reference = LogisticRegression(C=0.1, max_iter=2000).fit(X.astype(np.float64), y)
    proba = softmax_proba(X @ coef.T + intercept)
    np.testing.assert_allclose(proba, reference.predict_proba(X), atol=2e-3)


def test_parabola_minimum_places_the_best_C_between_the_decades():
    decades = np.array([0.01, 0.1, 1.0, 10.0])
    # a parabola in log10(C) with its vertex at C=10**-0.7: found exactly
    scores = (np.log10(decades) + 0.7) ** 2 + 0.3
    assert parabola_minimum(decades, scores) == pytest.approx(10**-0.7)
    # symmetric neighbours: the middle; lowest score at an end: that end
    assert parabola_minimum(decades, np.array([3.0, 1.0, 2.0, 3.0])) > 0.1
    assert parabola_minimum(decades, np.array([2.0, 1.0, 2.0, 3.0])) == pytest.approx(0.1)
    assert parabola_minimum(decades, np.array([4.0, 3.0, 2.0, 1.0])) == 10.0
    # a kink: within half a decade of the lowest score
    kinked = parabola_minimum(decades, np.array([9.0, 1.0, 1.0001, 9.0]))
    assert 0.1 < kinked <= 10**-0.5
    assert parabola_minimum(decades[:2], np.array([2.0, 1.0])) == 0.1
    assert parabola_minimum(decades[:3], np.array([1.0, 1.0, 1.0])) == 0.01


def test_weak_penalties_are_solved_to_the_same_precision_as_strong_ones():
    """Many separable classes, more columns than rows: the best C is large. The final fit
    starts from the inner folds' solutions; stopped at a gradient tolerance that does not
    shrink with the penalty, it used to stop within a few iterations of that start, far from
    the optimum that a cold fit at the same C reaches. Now both land on the same model, and
    the inner-CV score at each C is the one of a converged fit."""
    X, y = blobs(30, 8, 300, spread=0.8, seed=2)
    X_test, y_test = blobs(30, 8, 300, spread=0.8, seed=2)[0] + 0.8 * np.random.default_rng(
        5).normal(size=X.shape), y
    auto = LogisticHeadClassifier().fit(X, y)
    assert auto.C_ >= 1.0
    cold = LogisticHeadClassifier(C=auto.C_).fit(X, y)
    tight = LogisticHeadClassifier(C=auto.C_, tol=1e-9).fit(X, y)
    loss = {name: log_loss(y_test, model.predict_proba(X_test), labels=model.classes_)
            for name, model in [("auto", auto), ("cold", cold), ("tight", tight)]}
    assert loss["auto"] == pytest.approx(loss["tight"], rel=0.01)
    assert loss["cold"] == pytest.approx(loss["tight"], rel=0.01)
    Cs, scores, _ = scores_by_C(StandardScaler().fit_transform(X), y, 30, cv=3)
    tight_scores = scores_by_C(StandardScaler().fit_transform(X), y, 30, cv=3, Cs=Cs,
                               patience=None, refine=False, tol=1e-9)[1]
    np.testing.assert_allclose(scores, tight_scores, rtol=0.01)
